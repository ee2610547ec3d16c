import json
import os

import torch

from conftest import TINY
from pianoforte_train.__main__ import main


def params(run_dir):
    return torch.load(os.path.join(run_dir, "last.pt"), weights_only=False)


def test_exact_resume(synthetic_dir, tmp_path):
    common = ["train", "--data", synthetic_dir, *TINY, "--dropout", "0.2", "--max-steps", "9", "--eval-every", "3",
              "--seed", "3"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    main([*common, "--out", straight])
    s = main([*common, "--out", split, "--stop-at", "4"])
    assert s["step"] == 4 and s["stopped"] == "stop_at"
    s = main(["train", "--out", split, "--resume", "--no-progress"])  # everything else from the checkpoint
    assert s["step"] == 9
    a, b = params(straight), params(split)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["tokens_seen"] == b["tokens_seen"]
    assert a["ranks"][0]["sampler"] == b["ranks"][0]["sampler"]
    assert a["optimizer"]["state"][0]["exp_avg"].equal(b["optimizer"]["state"][0]["exp_avg"])
    # metrics, the plot and best.pt are there
    with open(os.path.join(split, "metrics.jsonl")) as f:
        kinds = [json.loads(line)["kind"] for line in f]
    assert "train" in kinds and "val" in kinds
    assert os.path.exists(os.path.join(split, "loss.png")) and os.path.exists(os.path.join(split, "best.pt"))


def test_early_stopping(synthetic_dir, tmp_path):
    s = main(["train", "--data", synthetic_dir, *TINY, "--max-steps", "50", "--eval-every", "1", "--patience", "1",
              "--lr", "0", "--warmup-steps", "1", "--out", str(tmp_path / "r")])
    assert s["stopped"] == "early_stopping" and s["step"] == 2
