"""End to end on PIANOFORTE_TOKENS (a real directory from `pianoforte dataset`) or a synthetic one."""

import json
import os

import numpy as np
import pytest

from conftest import TINY
from pianoforte_train import vocab as V
from pianoforte_train.__main__ import main
from pianoforte_train.data import TokenSplit, load_manifest


def test_token_dir_is_valid(tokens_dir):
    manifest = load_manifest(tokens_dir)
    assert manifest["vocabulary"]["size"] == V.VOCAB_SIZE
    for name in ("train", "validation"):
        split = TokenSplit.load(tokens_dir, name)
        assert len(split) > 0
        arr = np.asarray(split.tokens)
        assert arr.dtype == np.dtype("<u2") and arr.max() < V.VOCAB_SIZE
        d = split.doc(0)
        assert (d < V.NOTE_OFF).sum() == split.docs[0]["notes"]


def test_train_export_evaluate(tokens_dir, tmp_path, capsys):
    run = str(tmp_path / "run")
    s = main(["train", "--data", tokens_dir, *TINY, "--max-steps", "6", "--eval-every", "3", "--out", run])
    assert s["step"] == 6 and np.isfinite(s["best_val_loss"])
    res = main(["export", run, "--eval-max-docs", "2", "--bench-steps", "50"])
    assert res["parity"]["max_abs_diff_torch"] <= 1e-4 and res["parity"]["max_abs_diff_steps"] <= 1e-4
    card = res["card"]
    assert card["training"]["steps"] == 6 and card["validation"]["nll_nats_per_event"] > 0
    capsys.readouterr()
    on_onnx = main(["evaluate", res["onnx"], "--data", tokens_dir, "--max-docs", "2", "--json"])
    on_ckpt = main(["evaluate", run, "--data", tokens_dir, "--max-docs", "2", "--json", "--device", "cpu"])
    out = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert out[0]["events"] == out[1]["events"] > 0
    for k in ("nll_nats_per_event", "bits_per_second", "accuracy"):
        assert on_onnx[k] == pytest.approx(on_ckpt[k], rel=1e-4)
    # The card reports the controlled figure under "controlled" and, first, the unconditioned one.
    controlled = card["validation"]["controlled"]["nll_nats_per_event"]
    assert controlled == pytest.approx(on_onnx["nll_nats_per_event"], rel=1e-6)
    unconditioned = main(["evaluate", res["onnx"], "--data", tokens_dir, "--max-docs", "2", "--json", "--no-control"])
    assert card["validation"]["nll_nats_per_event"] == pytest.approx(unconditioned["nll_nats_per_event"], rel=1e-6)
    assert card["format_version"] == 2 and card["validation"]["controls"] == "off"
    main(["plot", run])
    assert os.path.exists(os.path.join(run, "loss.png"))


def test_evaluation_packing_is_exact(synthetic_dir):
    """Packing documents into a few streams gives the same numbers as one document at a time."""
    import torch

    from pianoforte_train.evaluate import evaluate_split, torch_step_fn
    from pianoforte_train.model import ModelConfig, PerformanceGRU

    torch.manual_seed(0)
    model = PerformanceGRU(ModelConfig(2, 16, 8, 0.0)).eval()
    split = TokenSplit.load(synthetic_dir, "validation")
    step = torch_step_fn(model, "cpu")
    packed = evaluate_split(step, split, batch_docs=2, chunk=64, layers_hidden=(2, 16))
    single = [evaluate_split(step, TokenSplit(split.name, split.tokens, [d]), batch_docs=1, chunk=10_000,
                             layers_hidden=(2, 16)) for d in split.docs]
    nll = sum(r["nll_nats_per_event"] * r["events"] for r in single)
    events = sum(r["events"] for r in single)
    assert packed["events"] == events == sum(d["length"] for d in split.docs)
    assert packed["nll_nats_per_event"] == pytest.approx(nll / events, rel=1e-5)
