"""State features, key control and grammar: the reference and the vectorised implementation
against the Rust side's vectors (docs/spec/vectors.json), on real-looking data, and the warm start."""

import json
import os

import numpy as np
import pytest
import torch

from pianoforte_train import vocab as V
from pianoforte_train.data import CropSampler, TokenSplit, augment, load_manifest, synthetic_doc
from pianoforte_train.features import (
    STATE_SIZE,
    Grammar,
    crop_inputs,
    key_correlations,
    key_histograms,
    key_names,
    parse_key,
)
from pianoforte_train.model import ModelConfig, PerformanceGRU, load_onnx_weights

VECTORS = os.path.join(os.path.dirname(V.SPEC_PATH), "vectors.json")
with open(VECTORS) as f:
    VEC = json.load(f)
CASES = VEC.get("features", [])


def runs(allowed: np.ndarray) -> list[list[int]]:
    out = []
    for i in np.flatnonzero(~allowed):
        if out and out[-1][1] + 1 == i:
            out[-1][1] = int(i)
        else:
            out.append([int(i), int(i)])
    return out


def test_vectors_exist_and_cover_the_guard():
    assert CASES, "docs/spec/vectors.json has no feature vectors (rewrite it from the Rust side)"
    names = [c["name"] for c in CASES]
    assert "due note-off after the guard" in names


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_reference_matches_rust(case):
    g = Grammar()
    want = case["before_each"]
    for i, token in enumerate(case["tokens"]):
        f = g.features()
        assert np.flatnonzero(f).tolist() == want["state_on"][i], f"state before token {i}"
        assert set(np.unique(f)) <= {0.0, 1.0}
        assert runs(g.allowed()) == want["forbidden"][i], f"grammar before token {i}"
        g.apply(token)
    keys = key_histograms(np.array(case["tokens"]))
    assert keys.tolist() == np.asarray(want["key"], dtype=np.float32).tolist()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_vectorised_matches_rust(case):
    tokens = np.array(case["tokens"], dtype=np.int64)
    want = case["before_each"]
    n = len(tokens)
    for start in sorted({0, 1, n // 3, n - 1}):
        state, key, allowed = crop_inputs(tokens, start, n - start)
        for t in range(n - start):
            i = start + t
            assert np.flatnonzero(state[t]).tolist() == want["state_on"][i], f"crop {start}: state before token {i}"
            assert runs(allowed[t]) == want["forbidden"][i], f"crop {start}: grammar before token {i}"
        assert key.tolist() == np.asarray(want["key"][start:], dtype=np.float32).tolist()


def test_synthetic_and_augmented_streams_keep_the_grammar():
    rng = np.random.default_rng(3)
    for k in range(6):
        tokens, _ = synthetic_doc(rng, 200)
        for semitones, factor in [(0, 1.0), (4, 1.0), (-4, 0.95), (3, 1.05)]:
            t = augment(tokens, semitones, factor)
            _, _, allowed = crop_inputs(t, 0, len(t))
            bad = np.flatnonzero(~allowed[np.arange(len(t)), t])
            assert not len(bad), f"doc {k}, {semitones:+d}, x{factor}: {t[bad[:3]]} not allowed at {bad[:3]}"


def test_real_tokens_keep_the_grammar(tokens_dir):
    """The first validation performances of a real token directory (PIANOFORTE_TOKENS, from
    `pianoforte dataset`: tests/run-all.sh builds one from MAESTRO) break no rule of the grammar."""
    if not os.environ.get("PIANOFORTE_TOKENS"):
        if os.environ.get("CI"):
            pytest.fail("PIANOFORTE_TOKENS is not set: CI must check real tokens")
        pytest.skip("PIANOFORTE_TOKENS is not set: no real tokens to check (tests/run-all.sh builds them)")
    manifest = load_manifest(tokens_dir)
    assert not manifest.get("synthetic"), f"{tokens_dir} holds synthetic tokens, not real ones"
    split = TokenSplit.load(tokens_dir, "validation")
    assert len(split) > 0, f"{tokens_dir}: the validation split has no performance"
    assert len(split) == manifest["splits"]["validation"]["documents"], "the split is the manifest's"
    for i in range(min(len(split), 3)):
        t = split.doc(i)
        source = split.docs[i]["source"]
        assert source.lower().endswith((".mid", ".midi")), f"document {i} comes from {source!r}, not a MIDI file"
        assert split.docs[i]["notes"] > 0, f"{source}: no notes"
        assert (t < V.NOTE_OFF).sum() == split.docs[i]["notes"], f"{source}: not the notes the builder counted"
        _, _, allowed = crop_inputs(t, 0, len(t))
        bad = np.flatnonzero(~allowed[np.arange(len(t)), t])
        assert not len(bad), f"{source}: tokens {t[bad[:3]]} not allowed at {bad[:3]}"


def test_sampler_batches_have_the_new_inputs(synthetic_dir):
    s = CropSampler(TokenSplit.load(synthetic_dir, "train"), 32, 3, seed=1, key_dropout=0.5, all_off=0.2)
    x, c, k, st, a, y, b = s.next_batch()
    assert k.shape == (32, 3, 12) and st.shape == (32, 3, STATE_SIZE) and a.shape == (32, 3, V.VOCAB_SIZE)
    sums = k.sum(-1)
    assert np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))
    assert a[np.arange(32)[:, None], np.arange(3)[None], np.maximum(y, 0)][y >= 0].all()


def test_keys():
    assert len(key_names()) == 24 and key_names()[14] == "D minor"
    assert parse_key("D minor") == 14 and parse_key("eb major") == 3 and parse_key("C# minor") == 13
    with pytest.raises(ValueError):
        parse_key("H dorian")
    c_major = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], dtype=float)
    assert key_correlations(c_major).argmax() == 0


def test_warm_start_reproduces_the_format_1_model(tmp_path):
    from pianoforte_train.evaluate import onnx_session
    from pianoforte_train.export import base_card, export_onnx, set_card

    torch.manual_seed(0)
    v1 = PerformanceGRU(ModelConfig(2, 24, 16, 0.0)).eval()
    path = str(tmp_path / "v1.onnx")
    export_onnx(v1, path)
    set_card(path, base_card(v1.cfg, v1.n_params))
    v2 = PerformanceGRU(ModelConfig(2, 24, 16, 0.0, 12, STATE_SIZE)).eval()
    load_onnx_weights(v2, path)
    rng = np.random.default_rng(0)
    ev = rng.integers(0, V.EMBED_SIZE, (9, 2))
    c = V.control_one_hot(rng.integers(0, V.CONTROL_SIZE, (9, 2)))
    h = np.zeros((2, 2, 24), dtype=np.float32)
    want, _ = onnx_session(path, 1).run(None, {"events": ev, "control": c, "hidden": h})
    key = torch.rand(9, 2, 12)
    state = (torch.rand(9, 2, STATE_SIZE) < 0.2).float()
    with torch.no_grad():
        got, _ = v2(torch.from_numpy(ev), torch.from_numpy(c), torch.from_numpy(h), key, state)
    assert np.abs(got.numpy() - want).max() < 1e-5, "new columns start at zero: v2 computes v1"
