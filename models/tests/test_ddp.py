import os
import subprocess
import sys

import torch

from conftest import TINY

MODELS = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def torchrun(args, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=MODELS)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "pianoforte_train", "train", *args]
    r = subprocess.run(cmd, cwd=MODELS, env=env, capture_output=True, text=True, timeout=150)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_ddp_gloo_two_processes(synthetic_dir, tmp_path):
    common = ["--data", synthetic_dir, *TINY, "--device", "cpu", "--max-steps", "4", "--eval-every", "2"]
    straight, split = str(tmp_path / "a"), str(tmp_path / "b")
    torchrun([*common, "--out", straight], tmp_path)
    a = torch.load(os.path.join(straight, "last.pt"), weights_only=False)
    assert a["world_size"] == 2 and a["step"] == 4 and len(a["ranks"]) == 2
    # each rank has its own sampler stream
    assert a["ranks"][0]["sampler"]["rng"] != a["ranks"][1]["sampler"]["rng"]
    assert a["tokens_seen"] == 4 * 2 * 4 * 48
    # interrupted at step 2 and resumed: same parameters
    torchrun([*common, "--out", split, "--stop-at", "2"], tmp_path)
    torchrun(["--out", split, "--resume", "--no-progress"], tmp_path)
    b = torch.load(os.path.join(split, "last.pt"), weights_only=False)
    for k in a["model"]:
        assert torch.allclose(a["model"][k], b["model"][k], atol=1e-6), k
