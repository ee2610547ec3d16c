"""python -m pianoforte_train train|evaluate|export|plot|bench|card|perform"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from . import evaluate, export, perform, plot, train

    p = argparse.ArgumentParser(prog="python -m pianoforte_train", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    train.add_args(sub.add_parser("train", help="train (or --resume) a model on a token directory"))
    evaluate.add_args(sub.add_parser("evaluate", help="whole-document NLL, bits/s, accuracy"))
    export.add_args(sub.add_parser("export", help="ONNX export + model card + parity + latency"))
    plot.add_args(sub.add_parser("plot", help="loss curves of a run as PNG"))
    export.add_bench_args(sub.add_parser("bench", help="ONNX step latency (1 core) and training tokens/s"))
    export.add_card_args(sub.add_parser("card", help="merge a JSON object into an ONNX model's card"))
    perform.add_args(sub.add_parser("perform", help="train + export the score-to-performance model"))
    return p


def main(argv: list[str] | None = None):
    parser = build_parser()
    args = parser.parse_args(argv)
    cmd = args.command
    if cmd == "train":
        from .train import train

        sub = parser._subparsers._group_actions[0].choices["train"]
        explicit = {k for k, v in vars(args).items() if k != "command" and v != sub.get_default(k)}
        del args.command
        return train(args, explicit)
    if cmd == "evaluate":
        from .evaluate import run
    elif cmd == "export":
        from .export import run
    elif cmd == "plot":
        from .plot import run
    elif cmd == "card":
        from .export import card_command as run
    elif cmd == "perform":
        from .perform import run
    else:
        from .export import bench as run
    return run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
