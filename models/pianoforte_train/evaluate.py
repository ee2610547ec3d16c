"""Whole-document evaluation of a checkpoint (.pt / run dir) or an exported .onnx.

Every document of the split is run whole (in chunks that carry the hidden
state), input [START] + doc[:-1], targets doc, controls = density bins of the
document (never dropped).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

from . import vocab as V
from .data import IGNORE, TokenSplit


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="best.pt / last.pt / run directory / model.onnx")
    p.add_argument("--data", default=None, help="token directory (default: the one the checkpoint was trained on)")
    p.add_argument("--split", default="validation")
    p.add_argument("--max-docs", type=int, default=None)
    p.add_argument("--batch-docs", type=int, default=32, help="parallel streams (documents packed into them)")
    p.add_argument("--chunk", type=int, default=2048, help="time steps per forward call")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def doc_arrays(tokens: np.ndarray):
    """x, control bins, y for one whole document."""
    x = np.empty(len(tokens), dtype=np.int64)
    x[0] = V.START
    x[1:] = tokens[:-1]
    return x, V.density_bins(tokens), tokens.astype(np.int64)


def evaluate_split(step_fn, split: TokenSplit, max_docs=None, batch_docs=32, chunk=2048, layers_hidden=None) -> dict:
    """step_fn(events [T,B] int64, control [T,B,CONTROL_SIZE] f32, hidden [L,B,H] f32)
    -> (logits [T,B,VOCAB_SIZE], hidden).

    Documents are packed into ``batch_docs`` parallel streams; each document starts
    at a chunk boundary, where that stream's hidden state is reset to zeros, so
    every document is run whole from START + zero state (padding < one chunk per document).
    """
    L, H = layers_hidden
    n_docs = len(split) if max_docs is None else min(max_docs, len(split))
    B = max(1, min(batch_docs, n_docs))
    padded = lambda n: -(-n // chunk) * chunk  # noqa: E731
    streams, loads = [[] for _ in range(B)], [0] * B
    for i in sorted(range(n_docs), key=lambda i: -split.docs[i]["length"]):
        b = loads.index(min(loads))
        streams[b].append(i)
        loads[b] += padded(split.docs[i]["length"])
    total = max(loads)
    X = np.zeros((total, B), dtype=np.int64)
    C = np.full((total, B), V.NO_CONTROL, dtype=np.int8)
    Y = np.full((total, B), IGNORE, dtype=np.int64)
    resets = np.zeros((total // chunk, B), dtype=bool)
    for b, docs in enumerate(streams):
        pos = 0
        for i in docs:
            x, c, y = doc_arrays(split.doc(i))
            X[pos : pos + len(x), b], C[pos : pos + len(x), b], Y[pos : pos + len(x), b] = x, c, y
            resets[pos // chunk, b] = True
            pos += padded(len(x))
    eye = np.eye(V.CONTROL_SIZE, dtype=np.float32)
    nll, correct, events = 0.0, 0, 0
    t0 = time.perf_counter()
    hidden = np.zeros((L, B, H), dtype=np.float32)
    for k in range(total // chunk):
        hidden[:, resets[k]] = 0.0
        sl = slice(k * chunk, (k + 1) * chunk)
        y = Y[sl]
        mask = y != IGNORE
        if not mask.any():
            continue
        logits, hidden = step_fn(X[sl], eye[C[sl]], hidden)
        logits = np.asarray(logits, dtype=np.float32)
        hidden = np.array(hidden, dtype=np.float32)
        m = logits.max(-1)
        lse = m + np.log(np.exp(logits - m[..., None]).sum(-1))
        target = np.take_along_axis(logits, np.where(mask, y, 0)[..., None], -1)[..., 0]
        nll += float(((lse - target).astype(np.float64) * mask).sum())
        correct += int(((logits.argmax(-1) == y) & mask).sum())
        events += int(mask.sum())
    duration = float(sum(split.docs[i].get("duration_s", 0.0) for i in range(n_docs)))
    return {
        "nll_nats_per_event": nll / max(events, 1),
        "bits_per_second": nll / math.log(2) / duration if duration > 0 else None,
        "accuracy": correct / max(events, 1),
        "events": events,
        "docs": n_docs,
        "duration_s": duration,
        "split": split.name,
        "seconds": time.perf_counter() - t0,
    }


def torch_step_fn(model, device):
    import torch

    @torch.no_grad()
    def step(x, c, h):
        logits, h2 = model(
            torch.from_numpy(x).to(device), torch.from_numpy(c).to(device), torch.from_numpy(h).to(device)
        )
        return logits.float().cpu().numpy(), h2.float().cpu().numpy()

    return step


def onnx_session(path: str, threads: int | None = None):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def onnx_step_fn(sess):
    def step(x, c, h):
        logits, h2 = sess.run(["logits", "hidden_out"], {"events": x, "control": c, "hidden": h})
        return logits, h2

    return step


def model_card(path: str) -> dict:
    import onnx

    m = onnx.load(path, load_external_data=False)
    for p in m.metadata_props:
        if p.key == "pianoforte":
            return json.loads(p.value)
    raise ValueError(f"{path}: no 'pianoforte' metadata")


def run(args: argparse.Namespace) -> dict:
    data = args.data
    if args.model.endswith(".onnx"):
        card = model_card(args.model)
        if data is None:
            data = card.get("training", {}).get("data")
        step = onnx_step_fn(onnx_session(args.model, args.threads))
        lh = (card["layers"], card["hidden"])
    else:
        import torch

        from .train import load_checkpoint

        if args.threads:
            torch.set_num_threads(args.threads)
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        model, ckpt = load_checkpoint(args.model, device)
        if data is None:
            data = ckpt["args"]["data"]
        step = torch_step_fn(model, device)
        lh = (model.cfg.layers, model.cfg.hidden)
    if data is None or not os.path.isdir(data):
        raise SystemExit(f"token directory not found ({data}); pass --data")
    split = TokenSplit.load(data, args.split)
    res = evaluate_split(step, split, args.max_docs, args.batch_docs, args.chunk, lh)
    res["model"] = args.model
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"{res['split']}: {res['docs']} docs, {res['events']} events, {res['duration_s'] / 3600:.2f} h\n"
            f"  NLL      {res['nll_nats_per_event']:.4f} nats/event\n"
            f"  bits/s   {res['bits_per_second']:.2f}\n"
            f"  accuracy {res['accuracy']:.4f}\n"
            f"  ({res['seconds']:.1f} s)"
        )
    return res
