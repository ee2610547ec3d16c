"""An untrained model of a given size, exported by the trainer's own `export` command.

Used (1) for the placeholder models/pianoforte-gru.onnx until a trained model exists and (2) by the
benchmarks: the engine's speed depends only on the architecture, not on the weights.
Writes OUT.onnx and OUT.pt (a checkpoint in the trainer's format, so benches/torch_step.py and
`python -m pianoforte_train export/evaluate` can load the same weights).

    python benches/untrained_model.py --layers 2 --hidden 512 --embedding 256 --out /tmp/untrained-2x512
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))

import torch  # noqa: E402

from pianoforte_train.model import ModelConfig, PerformanceGRU  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--embedding", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="path without extension: writes OUT.onnx and OUT.pt")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    cfg = ModelConfig(a.layers, a.hidden, a.embedding, 0.0)
    model = PerformanceGRU(cfg)
    ckpt = {
        "model_config": cfg.to_dict(),
        "model": model.state_dict(),
        "args": {"data": None, "seq_len": None, "batch_size": None, "control_dropout": None, "untrained": True},
        "data_info": {"data": None, "hours": 0.0},
        "step": 0,
        "tokens_seen": 0,
        "elapsed_s": 0.0,
        "device": "cpu",
        "world_size": 1,
        "best_val": None,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.save(ckpt, a.out + ".pt")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "models") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.run(
        [sys.executable, "-m", "pianoforte_train", "export", a.out + ".pt", "--out", a.out + ".onnx",
         "--no-eval", "--bench-steps", "0"],
        check=True, env=env,
    )


if __name__ == "__main__":
    main()
