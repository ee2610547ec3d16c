"""Beat features (model format 3) against the Rust side's vectors (docs/spec/vectors.json key
``beats``), a step-by-step reference written after src/codec/beats.rs, and their use in the data."""

import json
import os

import numpy as np
import pytest

from pianoforte_train import vocab as V
from pianoforte_train.data import CropSampler, TokenSplit, augment_beats, crop, validation_crops
from pianoforte_train.features import (
    BEAT_IN_BAR_OFFSET,
    BEAT_SIZE,
    METER_OFFSET,
    NO_BEAT_OFFSET,
    PERIOD_EDGES,
    PERIOD_OFFSET,
    PHASE_BINS,
    PHASE_OFFSET,
    TO_PARTS,
    beat_features,
    no_beat,
)

with open(os.path.join(os.path.dirname(V.SPEC_PATH), "vectors.json")) as f:
    CASES = json.load(f).get("beats", [])


def test_layout_is_the_spec():
    bf = V.SPEC["beat_features"]
    assert BEAT_SIZE == bf["size"] == 251
    assert (NO_BEAT_OFFSET, PHASE_OFFSET, BEAT_IN_BAR_OFFSET, METER_OFFSET, PERIOD_OFFSET) == (0, 1, 25, 33, 41)
    assert TO_PARTS == [(51, 100, 1), (151, 50, 4), (201, 50, 3)]
    assert PERIOD_EDGES.tolist() == bf["period"]["edges_steps"]


def test_vectors_exist():
    assert len(CASES) >= 4, "docs/spec/vectors.json has no beat vectors (rewrite it from the Rust side)"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_matches_rust(case):
    steps = case["first_step"] + np.arange(len(case["on"]))
    f = beat_features(steps, case["beats"])
    assert f.shape == (len(steps), BEAT_SIZE) and f.dtype == np.float32
    assert set(np.unique(f)) <= {0.0, 1.0}
    for k, want in enumerate(case["on"]):
        assert np.flatnonzero(f[k]).tolist() == want, f"step {steps[k]}"
    # the order of the beats and a repeated step change nothing (the grid sorts, keeps the first)
    shuffled = list(reversed(case["beats"])) + [[b[0], not b[1]] for b in case["beats"]]
    assert np.array_equal(beat_features(steps, shuffled), f)


def reference(beats, step):
    """Rust's BeatGrid::position + write_beat_features, one step at a time."""
    grid = []
    for s, d in sorted(beats, key=lambda b: b[0]):
        if not grid or grid[-1][0] != s:
            grid.append((s, bool(d)))
    out = np.zeros(BEAT_SIZE, dtype=np.float32)
    i = sum(1 for s, _ in grid if s <= step) - 1
    if i < 0 or i + 1 >= len(grid):
        out[NO_BEAT_OFFSET] = 1
        return out
    period = grid[i + 1][0] - grid[i][0]
    down = [k for k, (_, d) in enumerate(grid) if d]
    prev = max((k for k in down if k <= i), default=None)
    nxt = min((k for k in down if k > i), default=None)
    if prev is not None and nxt is not None:
        beats_per_bar = nxt - prev
    elif prev is not None:
        before = max((k for k in down if k < prev), default=None)
        beats_per_bar = None if before is None else prev - before
    elif nxt is not None:
        after = min((k for k in down if k > nxt), default=None)
        beats_per_bar = None if after is None else after - nxt
    else:
        beats_per_bar = None
    if prev is not None:
        in_bar = i - prev
    elif nxt is not None and beats_per_bar is not None:
        in_bar = (beats_per_bar - (nxt - i)) % beats_per_bar
    else:
        in_bar = None
    out[PHASE_OFFSET + (step - grid[i][0]) * PHASE_BINS // period] = 1
    if in_bar is not None:
        out[BEAT_IN_BAR_OFFSET + min(in_bar, 7)] = 1
    if beats_per_bar:
        out[METER_OFFSET + min(beats_per_bar, 8) - 1] = 1
    out[PERIOD_OFFSET + sum(1 for e in PERIOD_EDGES if e <= period)] = 1
    since = step - grid[i][0]
    for offset, size, parts in TO_PARTS:
        gap = min(j * period // parts - since for j in range(parts + 1) if j * period // parts >= since)
        out[offset + min(gap, size - 1)] = 1
    return out


@pytest.mark.parametrize("seed", range(6))
def test_matches_the_reference_on_random_grids(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 40))
    steps = np.cumsum(rng.integers(0, 160, n)) - 30  # repeated steps and negative ones too
    beats = [[int(s), int(rng.random() < [0.0, 0.3, 0.9][seed % 3])] for s in steps]
    rng.shuffle(beats)
    at = np.arange(-40, (int(steps.max()) if n else 0) + 40)
    f = beat_features(at, beats)
    for k, s in enumerate(at):
        assert np.array_equal(f[k], reference(beats, int(s))), f"step {s}"


def test_no_beats():
    for beats in (None, [], [[10, 1]]):
        f = beat_features(np.arange(-5, 30), beats)
        assert np.array_equal(f, no_beat(35)) and f[:, NO_BEAT_OFFSET].all() and f.sum() == 35


def test_stretch_and_transposition_of_beats():
    beats = np.array([[0, 1], [49, 0], [101, 0], [150, 1]])
    assert augment_beats(beats, 1.0) is beats and augment_beats(None, 1.05) is None
    assert augment_beats(beats, 1.05).tolist() == [[0, 1], [51, 0], [106, 0], [158, 1]]  # 51.45, 106.05, 157.5
    assert augment_beats(beats, 0.95).tolist() == [[0, 1], [47, 0], [96, 0], [143, 1]]  # 46.55, 95.95, 142.5


def doc_with_beats(split):
    i = next(i for i in range(len(split)) if split.beats(i) is not None)
    return i, split.doc(i), split.beats(i)


def test_crop_features_at_the_target_events(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "train")
    i, tokens, beats = doc_with_beats(split)
    assert beats.ndim == 2 and beats.shape[1] == 2 and beats[:, 1].any()
    start = len(tokens) // 2
    *_, b = crop(tokens, start, 64, beats=beats)
    times = V.event_times(tokens)  # a TIME_SHIFT's time is before its own shift
    assert np.array_equal(b, beat_features(times[start : start + 64], beats))
    assert (b[:, NO_BEAT_OFFSET] == 0).any(), "the synthetic beats cover the crop"
    *_, b = crop(tokens[:10], 0, 16, beats=beats)
    assert np.array_equal(b[10:], no_beat(6)) and np.array_equal(b[:10], beat_features(times[:10], beats))
    *_, b = crop(tokens, 30, 64)
    assert np.array_equal(b, no_beat(64))


def test_sampler_beat_dropout_and_determinism(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "train")
    with_beats = [split.beats(i) is not None for i in range(len(split))]
    assert any(with_beats) and not all(with_beats), "the synthetic data mixes documents with and without beats"

    def beat_crops(dropout, seed=0, batch=120):
        s = CropSampler(split, 32, batch, seed=seed, beats=True, beat_dropout=dropout, control_dropout=0.0)
        b = s.next_batch()[-1]
        return (b[:, :, NO_BEAT_OFFSET] == 0).any(0), s

    never, _ = beat_crops(1.0)
    assert not never.any()
    always, _ = beat_crops(0.0)
    some, s = beat_crops(0.5)
    assert 0 < some.sum() < always.sum() and (some <= always).all()
    # the dropout coin is drawn for every crop: the data drawn is the dropout's business only
    a, b = CropSampler(split, 32, 6, seed=4, beats=True, beat_dropout=0.0), CropSampler(split, 32, 6, seed=4,
                                                                                        beats=True, beat_dropout=1.0)
    for _ in range(3):
        xa, xb = a.next_batch(), b.next_batch()
        assert np.array_equal(xa[0], xb[0]) and np.array_equal(xa[-2], xb[-2])
    assert a.state_dict() == b.state_dict()
    # no beats asked for: the stream of format 2 (no coin), every row free time
    off = CropSampler(split, 32, 6, seed=4, beats=False)
    two = off.next_batch()
    assert np.array_equal(two[-1], np.broadcast_to(no_beat(32)[:, None], (32, 6, BEAT_SIZE)))


def test_validation_crops_use_the_beats(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "validation")
    b = np.concatenate([batch[-1] for batch in validation_crops(split, 32, 12, 4)], 1)
    assert (b[:, :, NO_BEAT_OFFSET] == 0).any()


# ------------------------------------------------------------------ the model, its export and training
@pytest.fixture(scope="module")
def format_2_onnx(tmp_path_factory):
    """A format-2 model with random weights, exported as the trainer exports (the shipped model
    was format 2 until issue 19)."""
    import torch

    from pianoforte_train.export import base_card, export_onnx, set_card
    from pianoforte_train.features import KEY_SIZE, STATE_SIZE
    from pianoforte_train.model import ModelConfig, PerformanceGRU

    torch.manual_seed(2)
    model = PerformanceGRU(ModelConfig(2, 48, 24, 0.0, KEY_SIZE, STATE_SIZE)).eval()
    path = str(tmp_path_factory.mktemp("format2") / "m.onnx")
    export_onnx(model, path)
    set_card(path, base_card(model.cfg, model.n_params))
    return path


def test_warm_start_from_a_format_2_model_reproduces_it(synthetic_dir, format_2_onnx):
    """A format-3 model warm-started from a format-2 model computes its logits, beats or not (the
    beat columns start at zero)."""
    import torch

    from pianoforte_train.evaluate import model_card, onnx_session
    from pianoforte_train.features import KEY_SIZE, STATE_SIZE
    from pianoforte_train.model import ModelConfig, PerformanceGRU, load_onnx_weights

    card = model_card(format_2_onnx)
    assert card["format_version"] == 2
    cfg = ModelConfig(card["layers"], card["hidden"], card["embedding"], 0.0, KEY_SIZE, STATE_SIZE, BEAT_SIZE)
    model = PerformanceGRU(cfg).eval()
    info = load_onnx_weights(model, format_2_onnx)
    assert info["columns_copied"] == card["embedding"] + V.CONTROL_SIZE + KEY_SIZE + STATE_SIZE
    split = TokenSplit.load(synthetic_dir, "validation")
    i = next(i for i in range(len(split)) if split.beats(i) is not None)
    tokens = split.doc(i)
    x, c, k, st, _, _, b = (np.stack(v, 1) for v in zip(crop(tokens, len(tokens) // 3, 40, beats=split.beats(i)),
                                                        crop(tokens, 0, 40), strict=True))
    assert (b[:, 0, NO_BEAT_OFFSET] == 0).any()
    h = np.zeros((card["layers"], 2, card["hidden"]), dtype=np.float32)
    want, want_h = onnx_session(format_2_onnx, 1).run(None, {"events": x, "control": V.control_one_hot(c), "key": k,
                                                       "state": st, "hidden": h})
    t = torch.from_numpy
    with torch.no_grad():
        for beat in (t(b), None):
            got, got_h = model(t(x), t(V.control_one_hot(c)), t(h), t(k), t(st), beat)
            assert np.abs(got.numpy() - want).max() < 1e-4 and np.abs(got_h.numpy() - want_h).max() < 1e-4


@pytest.fixture(scope="module")
def format_3(tmp_path_factory):
    import torch

    from pianoforte_train.export import base_card, export_onnx, set_card
    from pianoforte_train.features import KEY_SIZE, STATE_SIZE
    from pianoforte_train.model import ModelConfig, PerformanceGRU

    torch.manual_seed(0)
    model = PerformanceGRU(ModelConfig(2, 24, 16, 0.0, KEY_SIZE, STATE_SIZE, BEAT_SIZE)).eval()
    with torch.no_grad():  # beat columns that matter
        model.gru.weight_ih_l0[:, -BEAT_SIZE:] = torch.randn(3 * 24, BEAT_SIZE)
    path = str(tmp_path_factory.mktemp("onnx3") / "m.onnx")
    export_onnx(model, path)
    set_card(path, base_card(model.cfg, model.n_params))
    return model, path


def test_format_3_export_contract_and_parity(format_3):
    import onnx

    from pianoforte_train.evaluate import model_card
    from pianoforte_train.export import example_inputs, parity

    model, path = format_3
    m = onnx.load(path)
    ins = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    assert list(ins) == ["events", "control", "key", "state", "beat", "hidden"]
    assert ins["beat"] == ["T", "B", BEAT_SIZE]
    card = model_card(path)
    assert card["format_version"] == 3 and card["beat_features"] == V.SPEC["beat_features"]
    assert "state_features" in card and "key_control" in card and card["grammar"]["masked"]
    beat = example_inputs(model.cfg, 16, 3, np.random.default_rng(0))["beat"]
    assert beat[..., NO_BEAT_OFFSET].any() and not beat[..., NO_BEAT_OFFSET].all(), "the checks see beats"
    res = parity(model, path)
    assert res["max_abs_diff_torch"] <= 1e-4 and res["max_abs_diff_steps"] <= 1e-4


def test_beat_none_is_free_time(format_3):
    import torch

    model, _ = format_3
    x = torch.randint(0, V.EMBED_SIZE, (5, 2))
    c = torch.from_numpy(V.control_one_hot(np.full((5, 2), V.NO_CONTROL)))
    free = torch.from_numpy(no_beat(10).reshape(5, 2, BEAT_SIZE))
    with torch.no_grad():
        a, _ = model(x, c, None, None, None, None)
        b, _ = model(x, c, None, None, None, free)
        z, _ = model(x, c, None, None, None, torch.zeros_like(free))
    assert torch.equal(a, b) and not torch.allclose(a, z)


def test_train_export_evaluate_format_3(synthetic_dir, tmp_path, capsys):
    """Format 3 end to end: training with beats, resume exact, export, evaluation with and without beats."""
    import torch

    from conftest import TINY
    from pianoforte_train.__main__ import main

    common = ["train", "--data", synthetic_dir, *TINY, "--format", "3", "--beat-dropout", "0.3", "--max-steps", "4",
              "--eval-every", "2", "--seed", "5"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    main([*common, "--out", straight])
    main([*common, "--out", split, "--stop-at", "2"])
    main(["train", "--out", split, "--resume", "--no-progress"])
    a, b = (torch.load(os.path.join(r, "last.pt"), weights_only=False) for r in (straight, split))
    assert a["model_config"]["beat_size"] == BEAT_SIZE and a["args"]["beat_dropout"] == 0.3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["ranks"][0]["sampler"] == b["ranks"][0]["sampler"]

    res = main(["export", straight, "--eval-max-docs", "3", "--bench-steps", "20"])
    card = res["card"]
    assert card["format_version"] == 3 and card["training"]["beat_dropout"] == 0.3
    assert card["training"]["documents_with_beats"] == 3
    val = card["validation"]
    beats = val["beats"]
    assert beats["docs"] == 2 and beats["events"] < val["events"]
    assert beats["nll_nats_per_event"] != beats["nll_without_beats_nats_per_event"]
    capsys.readouterr()
    on_onnx = main(["evaluate", res["onnx"], "--max-docs", "3", "--json", "--no-control"])
    on_ckpt = main(["evaluate", straight, "--max-docs", "3", "--json", "--no-control", "--device", "cpu"])
    capsys.readouterr()
    assert on_onnx["nll_nats_per_event"] == pytest.approx(val["nll_nats_per_event"], rel=1e-6)
    assert not on_onnx["with_beats"]
    for k in ("nll_nats_per_event", "nll_without_beats_nats_per_event"):
        assert on_onnx["beats"][k] == pytest.approx(beats[k], rel=1e-6)
        assert on_ckpt["beats"][k] == pytest.approx(beats[k], rel=1e-4)


def test_evaluation_feeds_the_beats_of_each_document(synthetic_dir):
    """Packed whole-document evaluation with beats is each document run alone with its own beats."""
    import torch

    from pianoforte_train.evaluate import evaluate_split, torch_step_fn
    from pianoforte_train.features import KEY_SIZE, STATE_SIZE
    from pianoforte_train.model import ModelConfig, PerformanceGRU

    torch.manual_seed(1)
    model = PerformanceGRU(ModelConfig(1, 12, 8, 0.0, KEY_SIZE, STATE_SIZE, BEAT_SIZE)).eval()
    split = TokenSplit.load(synthetic_dir, "validation")
    step = torch_step_fn(model, "cpu")
    kw = dict(layers_hidden=(1, 12), grammar=True, key_size=KEY_SIZE, state_size=STATE_SIZE, beat_size=BEAT_SIZE)
    packed = evaluate_split(step, split, batch_docs=2, chunk=64, **kw)
    nll = 0.0
    for i in range(len(split)):
        tokens = split.doc(i)
        x, c, k, st, a, y, b = crop(tokens, 0, len(tokens), beats=split.beats(i))
        t = lambda v: torch.from_numpy(v[:, None])  # noqa: E731
        with torch.no_grad():
            logits, _ = model(t(x), t(V.control_one_hot(c)), None, t(k), t(st), t(b))
        logits = logits[:, 0].masked_fill(~torch.from_numpy(a), float("-inf"))
        nll += torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="sum").item()
    assert packed["nll_nats_per_event"] == pytest.approx(nll / packed["events"], rel=1e-5)
    off = evaluate_split(step, split, batch_docs=2, chunk=64, beats=False, **kw)
    assert off["nll_nats_per_event"] != packed["nll_nats_per_event"]


def test_sampler_beat_share(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "train")
    has = np.array([split.beats(i) is not None for i in range(len(split))])

    def drawn(share, n=4000):
        s = CropSampler(split, 32, 1, seed=3, beats=True, beat_share=share)
        return np.array([has[s.draw_document()] for _ in range(n)])

    # by length (the default) the annotated documents get their share of the events, no more
    lengths = np.array([d["length"] for d in split.docs], dtype=np.float64)
    assert abs(drawn(None).mean() - lengths[has].sum() / lengths.sum()) < 0.03
    assert abs(drawn(0.7).mean() - 0.7) < 0.03
    assert drawn(1.0).all() and not drawn(0.0).any()
    # the default keeps the stream of earlier runs: one uniform draw a document, by length
    s = CropSampler(split, 32, 1, seed=5, beats=True)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([5, 0])))
    cdf = np.cumsum(lengths) / lengths.sum()
    for _ in range(20):
        assert s.draw_document() == int(np.searchsorted(cdf, rng.random(), side="right"))
    with pytest.raises(ValueError, match="between 0 and 1"):
        CropSampler(split, 32, 1, beats=True, beat_share=1.5)


def test_beat_skip_starts_as_the_model_it_warm_starts_from_and_exports(synthetic_dir, tmp_path, capsys):
    """--beat-skip: zero at first (a warm start computes what the checkpoint did), trained by the
    run, and in the ONNX graph (the exported model scores as the checkpoint does)."""
    import torch

    from conftest import TINY
    from pianoforte_train.__main__ import main
    from pianoforte_train.model import PerformanceGRU, load_onnx_weights
    from pianoforte_train.train import forward_batch, load_checkpoint

    common = ["train", "--data", synthetic_dir, *TINY, "--format", "3", "--seed", "2", "--eval-every", "2"]
    plain, skip = str(tmp_path / "plain"), str(tmp_path / "skip")
    main([*common, "--out", plain, "--max-steps", "2"])
    start, _ = load_checkpoint(os.path.join(plain, "last.pt"))
    main([*common, "--out", skip, "--max-steps", "2", "--beat-skip", "--init-onnx", os.path.join(plain, "last.pt"),
          "--stop-at", "0"])
    warm, ckpt = load_checkpoint(os.path.join(skip, "last.pt"))
    assert ckpt["model_config"]["beat_skip"] and not warm.beat_head.weight.any()
    batch = validation_crops(TokenSplit.load(synthetic_dir, "validation"), 32, 2, 2)[0]
    with torch.no_grad():
        assert torch.equal(forward_batch(start.eval(), batch, "cpu")[0], forward_batch(warm.eval(), batch, "cpu")[0])
    main(["train", "--out", skip, "--resume", "--no-progress"])
    trained, _ = load_checkpoint(os.path.join(skip, "last.pt"))
    assert trained.beat_head.weight.abs().sum() > 0
    res = main(["export", skip, "--eval-max-docs", "3", "--bench-steps", "0"])
    assert res["card"]["beat_skip"]
    capsys.readouterr()
    on_onnx = main(["evaluate", res["onnx"], "--max-docs", "3", "--json", "--no-control"])
    on_ckpt = main(["evaluate", skip, "--max-docs", "3", "--json", "--no-control", "--device", "cpu"])
    assert on_onnx["beats"]["nll_nats_per_event"] == pytest.approx(on_ckpt["beats"]["nll_nats_per_event"], rel=1e-4)
    # a warm start from the exported graph takes the skip back; a model without one refuses it
    exported, _ = load_checkpoint(os.path.join(skip, "best.pt"))
    again = PerformanceGRU(exported.cfg)
    load_onnx_weights(again, res["onnx"])
    assert torch.allclose(again.beat_head.weight, exported.beat_head.weight)
    with pytest.raises(ValueError, match="beat skip"):
        load_onnx_weights(PerformanceGRU(start.cfg), res["onnx"])
