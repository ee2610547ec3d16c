"""ONNX export (+ model card, parity checks and a one-core latency benchmark).

Contract (docs/model-format.md):
  inputs  events int64 [T,B], control float32 [T,B,CONTROL_SIZE], hidden float32 [L,B,H]
  outputs logits float32 [T,B,VOCAB_SIZE], hidden_out float32 [L,B,H]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

from . import vocab as V
from .model import ModelConfig, PerformanceGRU

LICENSE = "CC BY-NC-SA 4.0 (trained on MAESTRO v2.0.0)"
MODEL_FORMAT_VERSION = 1


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="run directory (uses best.pt) or a .pt checkpoint")
    p.add_argument("--out", default=None, help="output .onnx (default RUN/model.onnx)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--data", default=None, help="token directory for the validation metrics (default: training data)")
    p.add_argument("--no-eval", action="store_true", help="skip the validation metrics (card fields null)")
    p.add_argument("--eval-max-docs", type=int, default=None)
    p.add_argument("--validation-json", default=None, help="take the metrics from an `evaluate --json` output file")
    p.add_argument("--bench-steps", type=int, default=2000, help="T=1 steps timed on one core (0: skip)")


def export_onnx(model: PerformanceGRU, path: str, opset: int = 17) -> None:
    model = model.cpu().float().eval()
    L, H = model.cfg.layers, model.cfg.hidden
    args = (torch.zeros(3, 2, dtype=torch.int64), torch.zeros(3, 2, V.CONTROL_SIZE), torch.zeros(L, 2, H))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            args,
            path,
            dynamo=False,
            opset_version=opset,
            input_names=["events", "control", "hidden"],
            output_names=["logits", "hidden_out"],
            dynamic_axes={
                "events": {0: "T", 1: "B"},
                "control": {0: "T", 1: "B"},
                "hidden": {1: "B"},
                "logits": {0: "T", 1: "B"},
                "hidden_out": {1: "B"},
            },
        )


def set_card(path: str, card: dict) -> None:
    import onnx

    m = onnx.load(path)
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = "pianoforte", json.dumps(card)
    m.producer_name = "pianoforte_train"
    m.doc_string = "pianoforte expressive performance GRU; see docs/model-format.md"
    onnx.checker.check_model(m)
    onnx.save(m, path)


def base_card(cfg: ModelConfig, n_params: int) -> dict:
    return {
        "format_version": MODEL_FORMAT_VERSION,
        "vocabulary_version": V.VOCABULARY_VERSION,
        "vocab_size": V.VOCAB_SIZE,
        "start_token": V.START,
        "control": {
            "kind": "note_density",
            "window_steps": 2 * V.DENSITY_HALF_WINDOW,
            "window": f"centred, [t-{V.DENSITY_HALF_WINDOW}, t+{V.DENSITY_HALF_WINDOW}) steps",
            "steps_per_second": V.STEPS_PER_SECOND,
            "edges": list(V.DENSITY_EDGES),
            "size": V.CONTROL_SIZE,
            "no_control_index": V.NO_CONTROL,
        },
        "layers": cfg.layers,
        "hidden": cfg.hidden,
        "embedding": cfg.embedding,
        "parameters": n_params,
        "license": LICENSE,
        "date": datetime.date.today().isoformat(),
    }


def parity(model: PerformanceGRU, path: str, T: int = 16, B: int = 3, seed: int = 0) -> dict:
    """ORT vs PyTorch on random inputs, and T single steps vs one call of T. Raises on failure."""
    from .evaluate import onnx_session

    model = model.cpu().float().eval()
    rng = np.random.default_rng(seed)
    L, H = model.cfg.layers, model.cfg.hidden
    ev = rng.integers(0, V.EMBED_SIZE, (T, B)).astype(np.int64)
    ctrl = V.control_one_hot(rng.integers(0, V.CONTROL_SIZE, (T, B)))
    h0 = (rng.standard_normal((L, B, H)) * 0.5).astype(np.float32)
    sess = onnx_session(path, threads=1)
    feed = {"events": ev, "control": ctrl, "hidden": h0}
    logits, h1 = sess.run(["logits", "hidden_out"], feed)
    with torch.no_grad():
        tl, th = model(torch.from_numpy(ev), torch.from_numpy(ctrl), torch.from_numpy(h0))
    d_torch = max(float(np.abs(logits - tl.numpy()).max()), float(np.abs(h1 - th.numpy()).max()))
    h, steps = h0, []
    for t in range(T):
        lt, h = sess.run(["logits", "hidden_out"], {"events": ev[t : t + 1], "control": ctrl[t : t + 1], "hidden": h})
        steps.append(lt)
    d_steps = max(float(np.abs(np.concatenate(steps) - logits).max()), float(np.abs(h - h1).max()))
    res = {"max_abs_diff_torch": d_torch, "max_abs_diff_steps": d_steps, "T": T, "B": B}
    if not (d_torch <= 1e-4 and d_steps <= 1e-4):
        raise AssertionError(f"ONNX parity failed: {res}")
    return res


def bench_step(path: str, steps: int = 2000, warmup: int = 200) -> dict:
    """Latency of one T=1, B=1 step in ONNX Runtime on one thread."""
    import onnxruntime  # noqa: F401

    from .evaluate import model_card, onnx_session

    sess = onnx_session(path, threads=1)
    inp = {i.name: i for i in sess.get_inputs()}
    L, H = None, None
    try:
        card = model_card(path)
        L, H = card["layers"], card["hidden"]
    except Exception:
        L, H = inp["hidden"].shape[0], inp["hidden"].shape[2]
    ev = np.array([[V.START]], dtype=np.int64)
    c = V.control_one_hot(np.array([[V.NO_CONTROL]]))
    h = np.zeros((L, 1, H), dtype=np.float32)
    times = []
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        logits, h = sess.run(["logits", "hidden_out"], {"events": ev, "control": c, "hidden": h})
        dt = time.perf_counter() - t0
        if k >= warmup:
            times.append(dt)
        ev = np.array([[int(np.argmax(logits[0, 0]))]], dtype=np.int64)
    us = np.array(times) * 1e6
    return {
        "threads": 1,
        "steps": steps,
        "median_us": float(np.median(us)),
        "mean_us": float(us.mean()),
        "p90_us": float(np.percentile(us, 90)),
        "p99_us": float(np.percentile(us, 99)),
        "within_1ms": bool(np.median(us) <= 1000.0),
    }


def run(args: argparse.Namespace) -> dict:
    from .train import load_checkpoint

    model, ckpt = load_checkpoint(args.checkpoint, "cpu")
    run_dir = args.checkpoint if os.path.isdir(args.checkpoint) else os.path.dirname(args.checkpoint)
    out = args.out or os.path.join(run_dir, "model.onnx")
    export_onnx(model, out, args.opset)

    info = ckpt.get("data_info", {})
    card = base_card(model.cfg, model.n_params)
    card["training"] = {
        "data": info.get("data"),
        "hours": info.get("hours"),
        "tokens_seen": ckpt.get("tokens_seen"),
        "steps": ckpt.get("step"),
        "minutes": ckpt.get("elapsed_s", 0.0) / 60,
        "device": ckpt.get("device"),
        "seq_len": ckpt["args"].get("seq_len"),
        "batch_size": ckpt["args"].get("batch_size"),
        "world_size": ckpt.get("world_size"),
        "control_dropout": ckpt["args"].get("control_dropout"),
        "crop_val_loss": ckpt.get("best_val"),
    }
    val = {"nll_nats_per_event": None, "bits_per_second": None, "accuracy": None}
    if args.validation_json:
        with open(args.validation_json) as f:
            val |= {k: v for k, v in json.loads(f.read().strip().splitlines()[-1]).items() if k in val}
    set_card(out, card | {"validation": val})  # parity/eval below read the file

    par = parity(model, out)
    print(f"parity ok: torch {par['max_abs_diff_torch']:.2e}, T steps vs T {par['max_abs_diff_steps']:.2e}")
    if not args.no_eval and not args.validation_json:
        data = args.data or info.get("data")
        if data and os.path.isdir(data):
            from .data import TokenSplit
            from .evaluate import evaluate_split, onnx_session, onnx_step_fn

            res = evaluate_split(
                onnx_step_fn(onnx_session(out)), TokenSplit.load(data, "validation"),
                args.eval_max_docs, layers_hidden=(model.cfg.layers, model.cfg.hidden),
            )
            val = {k: res[k] for k in val} | {"docs": res["docs"], "events": res["events"]}
            print(f"validation: {json.dumps(val)}")
        else:
            print(f"token directory {data} not found: validation metrics left null", file=sys.stderr)
    card["validation"] = val
    set_card(out, card)
    result = {"onnx": out, "card": card, "parity": par}
    if args.bench_steps:
        b = bench_step(out, args.bench_steps)
        result["step_latency"] = b
        flag = "ok" if b["within_1ms"] else "OVER 1 ms"
        print(f"one T=1 step, 1 thread: median {b['median_us']:.0f} us, p99 {b['p99_us']:.0f} us ({flag})")
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB, {model.n_params} parameters)")
    return result


# ---------------------------------------------------------------- bench
def add_bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", default="2x384,2x512", help="LAYERSxHIDDEN,...")
    p.add_argument("--embedding", type=int, default=256)
    p.add_argument("--steps", type=int, default=2000, help="ONNX T=1 steps timed")
    p.add_argument("--train-steps", type=int, default=0, help="also time this many training steps (tokens/s)")
    p.add_argument("--data", default=None, help="token directory for the training timing (default: synthetic)")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch threads for the training timing")
    p.add_argument("--json", action="store_true")


def bench(args: argparse.Namespace) -> list[dict]:
    results = []
    if args.threads:
        torch.set_num_threads(args.threads)
    for size in args.sizes.split(","):
        layers, hidden = (int(v) for v in size.lower().split("x"))
        cfg = ModelConfig(layers, hidden, args.embedding, 0.1)
        torch.manual_seed(0)
        model = PerformanceGRU(cfg)
        row = {"size": size, "embedding": args.embedding, "parameters": model.n_params}
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.onnx")
            export_onnx(model, path)
            set_card(path, base_card(cfg, model.n_params))
            row["onnx_step"] = bench_step(path, args.steps)
        if args.train_steps:
            row["train"] = _bench_train(model, args)
        results.append(row)
        if not args.json:
            line = (f"{size} ({model.n_params / 1e6:.2f} M params): ONNX T=1 step on 1 thread "
                    f"median {row['onnx_step']['median_us']:.0f} us, p99 {row['onnx_step']['p99_us']:.0f} us")
            if "train" in row:
                line += f"; training {row['train']['tokens_per_s']:.0f} tokens/s ({row['train']['threads']} threads)"
            print(line, flush=True)
    if args.json:
        print(json.dumps(results))
    return results


def _bench_train(model: PerformanceGRU, args) -> dict:
    from .data import CropSampler, TokenSplit, write_synthetic_dir
    from .model import control_from_bins
    from .train import loss_fn

    tmp = None
    data = args.data
    if data is None:
        tmp = tempfile.TemporaryDirectory()
        data = write_synthetic_dir(tmp.name, docs_per_split=(8, 2), notes=(2000, 3000))
    sampler = CropSampler(TokenSplit.load(data, "train"), args.seq_len, args.batch_size, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    t_data = 0.0
    for k in range(args.train_steps + 1):
        if k == 1:  # one warm-up step
            t0, t_data = time.perf_counter(), 0.0
        td = time.perf_counter()
        x, c, y = (torch.from_numpy(a) for a in sampler.next_batch())
        t_data += time.perf_counter() - td
        logits, _ = model(x, control_from_bins(c))
        loss = loss_fn(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    if tmp is not None:
        tmp.cleanup()
    tokens = args.train_steps * args.seq_len * args.batch_size
    return {"tokens_per_s": tokens / dt, "steps": args.train_steps, "seconds": dt,
            "data_seconds": t_data, "threads": torch.get_num_threads()}
