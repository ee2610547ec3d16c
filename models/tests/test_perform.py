"""The score-to-performance trainer on synthetic `pianoforte align` data: it learns, exports, refuses bad data."""

import json

import numpy as np
import pytest
import torch

from pianoforte_train.__main__ import main
from pianoforte_train.evaluate import model_card, onnx_session
from pianoforte_train.perform import TARGETS, PerformGRU, load_manifest

N_FEATURES = 20
FAST = ["--hidden", "16", "--seq-len", "64", "--batch-size", "8", "--steps", "60", "--eval-every", "20",
        "--warmup-steps", "10", "--lr", "5e-3", "--threads", "1"]


def synthetic_notes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Velocity linear in feature 0, log_tempo in feature 1 (per note, noisy), pedal from feature 2;
    some notes unmatched (velocity, timing, articulation NaN), a few pedals unknown."""
    x = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    y = np.stack([64 + 20 * x[:, 0] + rng.normal(0, 3, n), 0.3 * x[:, 1] + rng.normal(0, 0.05, n),
                  rng.normal(0, 0.1, n), rng.normal(-0.5, 0.5, n), (x[:, 2] > 0.5)], 1).astype(np.float32)
    unmatched = rng.random(n) < 0.1
    y[np.ix_(unmatched, [0, 2, 3])] = np.nan
    y[rng.random(n) < 0.02, 4] = np.nan
    return x, y


def write_split(path, name: str, lengths: list[int], rng: np.random.Generator) -> None:
    notes = [synthetic_notes(rng, n) for n in lengths]
    np.save(path / f"{name}.features.npy", np.concatenate([x for x, _ in notes]))
    np.save(path / f"{name}.targets.npy", np.concatenate([y for _, y in notes]))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    docs = [{"performance": f"{name}{i}.mid", "score": f"{name}{i}.musicxml", "start": int(s), "length": n,
             "coverage": 0.9} for i, (s, n) in enumerate(zip(starts, lengths, strict=True))]
    (path / f"{name}.docs.json").write_text(json.dumps(docs))


def write_manifest(path, **change) -> None:
    manifest = {"kind": "score-performance", "feature_version": 1,
                "features": [f"f{i}" for i in range(N_FEATURES)], "targets": TARGETS} | change
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def align_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("align")
    rng = np.random.default_rng(0)
    write_manifest(path)
    write_split(path, "train", [int(n) for n in rng.integers(100, 300, 6)], rng)
    write_split(path, "validation", [40, 250], rng)  # 40 < --seq-len: a short document whole
    return path


@pytest.fixture(scope="module")
def trained(align_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("perform") / "perform.onnx"
    return main(["perform", "--data", str(align_dir), "--out", str(out), *FAST])


def test_learns_and_exports(trained, align_dir):
    curve = trained["curve"]
    assert curve[0]["step"] == 0 and curve[-1]["step"] == 60
    assert curve[-1]["loss"] < curve[0]["loss"] - 0.5  # velocity and log_tempo are linear in the features
    assert trained["card"]["validation"]["velocity_r"] > 0.5
    sess = onnx_session(trained["onnx"], threads=1)
    x = np.load(align_dir / "validation.features.npy")[None, :250]
    y = sess.run(["outputs"], {"features": x})[0]
    assert y.shape == (1, 250, len(TARGETS)) and np.isfinite(y).all()
    assert ((y[..., 4] >= 0) & (y[..., 4] <= 1)).all()
    assert 20 < y[..., 0].mean() < 110  # velocity in MIDI units, not standardised
    assert trained["parity"] < 1e-3
    with open(trained["log"]) as f:
        assert len(json.load(f)["curve"]) == len(curve)


def test_card(trained):
    card = model_card(trained["onnx"])
    assert card["kind"] == "score-performance" and card["format_version"] == 1 and card["feature_version"] == 1
    assert card["features"] == [f"f{i}" for i in range(N_FEATURES)] and card["targets"] == TARGETS
    assert card["hidden"] == 16 and card["layers"] == 2 and card["training"]["steps"] == 60
    assert card["validation"]["loss"] == min(p["loss"] for p in trained["curve"])


def test_short_documents_are_not_changed_by_padding():
    torch.manual_seed(0)
    stats = {"feature_mean": np.zeros(3), "feature_sd": np.ones(3), "target_mean": np.zeros(4),
             "target_sd": np.ones(4)}
    model = PerformGRU(3, 8, stats).eval()
    x = torch.randn(2, 10, 3)
    with torch.no_grad():
        padded = model(x, torch.tensor([10, 6]))
        alone = model(x[1:, :6])
    assert torch.allclose(padded[1, :6], alone[0], atol=1e-5)


def test_refuses_bad_data(align_dir, tmp_path):
    for name in ("train", "validation"):
        for suffix in ("features.npy", "targets.npy", "docs.json"):
            (tmp_path / f"{name}.{suffix}").write_bytes((align_dir / f"{name}.{suffix}").read_bytes())
    args = ["perform", "--data", str(tmp_path), "--out", str(tmp_path / "m.onnx"), *FAST]
    write_manifest(tmp_path, kind="event-tokens")
    with pytest.raises(SystemExit, match="kind"):
        load_manifest(str(tmp_path))
    write_manifest(tmp_path, features=["f0", "f1"])
    with pytest.raises(SystemExit, match="2 features"):
        main(args)
    write_manifest(tmp_path)
    (tmp_path / "validation.docs.json").write_text("[]")
    with pytest.raises(SystemExit, match="no documents"):
        main(args)
