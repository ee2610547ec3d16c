"""Whole-document evaluation of a checkpoint (.pt / run dir) or an exported .onnx.

Every document of the split is run whole (in chunks that carry the hidden
state), input [START] + doc[:-1], targets doc, controls = density bins and key
histograms of the document, or all off with --no-control (the unconditioned,
headline figure); format-2 and 3 models are scored over the events the grammar allows.

Format-3 models: the headline figure is with no beats for every document (free time, as a
format-2 model plays), so it stays comparable with format 2; the documents that have beats are
also scored with their beats and without (the ``beats`` section).
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
    p.add_argument("--no-control", action="store_true", help="every control off (density and key): unconditioned")
    p.add_argument("--grammar", choices=("auto", "on", "off"), default="auto",
                   help="mask the events the grammar forbids (auto: for format-2/3 models, which are trained so)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def doc_arrays(tokens: np.ndarray):
    """x, control bins, y for one whole document."""
    x = np.empty(len(tokens), dtype=np.int64)
    x[0] = V.START
    x[1:] = tokens[:-1]
    return x, V.density_bins(tokens), tokens.astype(np.int64)


def evaluate_split(step_fn, split: TokenSplit, max_docs=None, batch_docs=32, chunk=2048, layers_hidden=None,
                   control: bool = True, grammar: bool = False, key_size: int = 0, state_size: int = 0,
                   beat_size: int = 0, beats: bool = True) -> dict:
    """step_fn(events [T,B] int64, control [T,B,CONTROL_SIZE] f32, key [T,B,key_size] f32,
    state [T,B,state_size] f32, beat [T,B,beat_size] f32, hidden [L,B,H] f32)
    -> (logits [T,B,VOCAB_SIZE], hidden).

    Documents are packed into ``batch_docs`` parallel streams; each document starts
    at a chunk boundary, where that stream's hidden state is reset to zeros, so
    every document is run whole from START + zero state (padding < one chunk per document).
    ``control``: density bins and key histograms of the document (else every control off);
    ``grammar``: the NLL is over the events the grammar allows (features.py);
    ``beats`` (with ``beat_size``): the beat features of the documents that have beats (else free
    time for every document).
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
    # placement[k][b] = (document, offset of chunk k in it) or None
    placement = [[None] * B for _ in range(total // chunk)]
    for b, docs in enumerate(streams):
        pos = 0
        for i in docs:
            for off in range(0, split.docs[i]["length"], chunk):
                placement[(pos + off) // chunk][b] = (i, off)
            pos += padded(split.docs[i]["length"])
    from .features import beat_features, crop_inputs, no_beat

    eye = np.eye(V.CONTROL_SIZE, dtype=np.float32)
    free = no_beat(chunk)[:, :beat_size]
    cache: dict[int, tuple] = {}
    nll, correct, events = 0.0, 0, 0
    t0 = time.perf_counter()
    hidden = np.zeros((L, B, H), dtype=np.float32)
    for k in range(total // chunk):
        X = np.zeros((chunk, B), dtype=np.int64)
        C = np.full((chunk, B), V.NO_CONTROL, dtype=np.int64)
        K = np.zeros((chunk, B, key_size), dtype=np.float32)
        S = np.zeros((chunk, B, state_size), dtype=np.float32)
        Bt = np.repeat(free[:, None], B, 1)
        A = np.ones((chunk, B, V.VOCAB_SIZE), dtype=bool)
        Y = np.full((chunk, B), IGNORE, dtype=np.int64)
        for b in range(B):
            where = placement[k][b]
            if where is None:
                continue
            i, off = where
            if off == 0:
                hidden[:, b] = 0.0
                tokens = split.doc(i)
                grid = split.beats(i) if beats and beat_size else None
                beat = beat_features(V.event_times(tokens), grid) if grid is not None else None
                cache[b] = (tokens, *doc_arrays(tokens), beat)
            tokens, x, c, y, beat = cache[b]
            n = min(chunk, len(tokens) - off)
            X[:n, b], Y[:n, b] = x[off : off + n], y[off : off + n]
            if control:
                C[:n, b] = c[off : off + n]
            if beat is not None:
                Bt[:n, b] = beat[off : off + n]
            if key_size or state_size or grammar:
                st, key, allowed = crop_inputs(tokens, off, n, mask=grammar)
                if state_size:
                    S[:n, b] = st
                if key_size and control:
                    K[:n, b] = key
                if grammar:
                    A[:n, b] = allowed
        mask = Y != IGNORE
        if not mask.any():
            continue
        logits, hidden = step_fn(X, eye[C], K, S, Bt, hidden)
        logits = np.asarray(logits, dtype=np.float32)
        hidden = np.array(hidden, dtype=np.float32)
        if grammar:
            logits = np.where(A, logits, -np.inf).astype(np.float32)
        m = logits.max(-1)
        lse = m + np.log(np.exp(logits - m[..., None]).sum(-1))
        target = np.take_along_axis(logits, np.where(mask, Y, 0)[..., None], -1)[..., 0]
        nll += float(((lse - target).astype(np.float64) * mask).sum())
        correct += int(((logits.argmax(-1) == Y) & mask).sum())
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
        "control": control,
        "grammar": grammar,
        "with_beats": bool(beats and beat_size),
        "seconds": time.perf_counter() - t0,
    }


def beat_docs(split: TokenSplit, max_docs=None) -> TokenSplit:
    """The documents of ``split`` (the first ``max_docs``) that have beats."""
    n = len(split) if max_docs is None else min(max_docs, len(split))
    return TokenSplit(split.name, split.tokens, [split.docs[i] for i in range(n) if split.beats(i) is not None])


def evaluate_beats(step_fn, split: TokenSplit, max_docs=None, **kw) -> dict | None:
    """A format-3 model on the documents that have beats (of the first ``max_docs``): NLL with their
    beats and without (free time throughout); None when no document has beats. ``kw``: as for
    ``evaluate_split`` (``beat_size`` included)."""
    annotated = beat_docs(split, max_docs)
    if not len(annotated):
        return None
    on = evaluate_split(step_fn, annotated, beats=True, **kw)
    off = evaluate_split(step_fn, annotated, beats=False, **kw)
    return {"docs": on["docs"], "events": on["events"], "duration_s": on["duration_s"],
            "nll_nats_per_event": on["nll_nats_per_event"],
            "nll_without_beats_nats_per_event": off["nll_nats_per_event"],
            "accuracy": on["accuracy"], "accuracy_without_beats": off["accuracy"]}


def torch_step_fn(model, device):
    import torch

    @torch.no_grad()
    def step(x, c, k, s, b, h):
        t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
        logits, h2 = model(t(x), t(c), t(h), t(k), t(s), t(b) if b.shape[-1] else None)
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
    names = {i.name for i in sess.get_inputs()}

    def step(x, c, k, s, b, h):
        feed = {"events": x, "control": c, "hidden": h}
        if "key" in names:
            feed |= {"key": k, "state": s}
        if "beat" in names:
            feed |= {"beat": b}
        logits, h2 = sess.run(["logits", "hidden_out"], feed)
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
        fmt = card.get("format_version", 1)
        sizes = (card.get("key_control", {}).get("size", 0), card.get("state_features", {}).get("size", 0),
                 card.get("beat_features", {}).get("size", 0))
        if "beat_features" in card and card["beat_features"] != V.SPEC["beat_features"]:
            raise SystemExit(f"{args.model}: its beat features are not the spec's ({V.SPEC_PATH})")
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
        fmt = model.cfg.format_version
        sizes = (model.cfg.key_size, model.cfg.state_size, model.cfg.beat_size)
    if data is None or not os.path.isdir(data):
        raise SystemExit(f"token directory not found ({data}); pass --data")
    split = TokenSplit.load(data, args.split)
    grammar = fmt >= 2 if args.grammar == "auto" else args.grammar == "on"
    kw = dict(batch_docs=args.batch_docs, chunk=args.chunk, layers_hidden=lh, control=not args.no_control,
              grammar=grammar, key_size=sizes[0], state_size=sizes[1], beat_size=sizes[2])
    res = evaluate_split(step, split, args.max_docs, beats=False, **kw)
    if sizes[2]:
        res["beats"] = evaluate_beats(step, split, args.max_docs, **kw)
    res["model"] = args.model
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"{res['split']}: {res['docs']} docs, {res['events']} events, {res['duration_s'] / 3600:.2f} h "
            f"(controls {'on' if res['control'] else 'off'}, grammar mask {'on' if res['grammar'] else 'off'}"
            f"{', no beats' if sizes[2] else ''})\n"
            f"  NLL      {res['nll_nats_per_event']:.4f} nats/event\n"
            f"  bits/s   {res['bits_per_second']:.2f}\n"
            f"  accuracy {res['accuracy']:.4f}\n"
            f"  ({res['seconds']:.1f} s)"
        )
        bt = res.get("beats")
        if bt:
            print(f"  documents with beats: {bt['docs']}, {bt['events']} events: NLL {bt['nll_nats_per_event']:.4f} "
                  f"with their beats, {bt['nll_without_beats_nats_per_event']:.4f} without")
        elif "beats" in res:
            print("  no document has beats")
    return res
