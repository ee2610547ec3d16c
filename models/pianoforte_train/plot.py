"""Training / validation loss curves from metrics.jsonl."""

from __future__ import annotations

import argparse
import json
import os


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory or metrics.jsonl")
    p.add_argument("--out", default=None, help="PNG path (default RUN/loss.png)")


def plot_metrics(metrics_path: str, out: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train, val = [], []
    with open(metrics_path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("kind") == "train":
                train.append((r["step"], r["loss"]))
            elif r.get("kind") == "val":
                val.append((r["step"], r["val_loss"]))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train (crops, augmented)", lw=1, alpha=0.8)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation (fixed crops)", lw=1.5, ms=3)
        best = min(val, key=lambda v: v[1])
        ax.annotate(f"best {best[1]:.3f}", best, textcoords="offset points", xytext=(0, -14), ha="center")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / event)")
    ax.set_title(os.path.basename(os.path.dirname(os.path.abspath(metrics_path))))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = out + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def run(args: argparse.Namespace) -> str:
    path = args.run
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    out = args.out or os.path.join(os.path.dirname(path), "loss.png")
    plot_metrics(path, out)
    print(out)
    return out
