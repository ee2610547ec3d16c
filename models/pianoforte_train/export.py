"""ONNX export (+ model card, parity checks and a one-core latency benchmark).

Contract (docs/model-format.md):
  inputs  events int64 [T,B], control float32 [T,B,CONTROL_SIZE],
          (formats 2, 3) key float32 [T,B,12], state float32 [T,B,STATE_SIZE],
          (format 3) beat float32 [T,B,BEAT_SIZE],
          hidden float32 [L,B,H]
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
from .data import load_manifest
from .model import ModelConfig, OnnxInterface, PerformanceGRU

DATASETS = {"maestro": "MAESTRO v2.0.0", "asap": "ASAP"}  # the corpora `pianoforte dataset` reads, both CC BY-NC-SA 4.0
EVENT_MODEL_DOC = "pianoforte expressive performance GRU; see docs/model-format.md"
MODEL_FORMAT_VERSION = 3  # the newest format this exporter writes (ModelConfig.format_version: 1, 2 or 3)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="run directory (uses best.pt) or a .pt checkpoint")
    p.add_argument("--out", default=None, help="output .onnx (default RUN/model.onnx)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--data", default=None, help="token directory for the validation metrics (default: training data)")
    p.add_argument("--no-eval", action="store_true", help="skip the validation metrics (card fields null)")
    p.add_argument("--eval-max-docs", type=int, default=None)
    p.add_argument("--validation-json", default=None, help="take the metrics from an `evaluate --json` output file")
    p.add_argument("--bench-steps", type=int, default=2000, help="T=1 steps timed on one core (0: skip)")
    p.add_argument("--key-vectors", default=None,
                   help="JSON from features.measure_key_vectors (default: measured on the training split)")
    p.add_argument("--card-extra", default=None, help="JSON object merged into the model card (e.g. calibration)")


def add_card_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("onnx", help="model file whose card to change (in place)")
    p.add_argument("--merge", required=True, help="JSON file: an object merged into the card (top-level keys)")


def card_command(args: argparse.Namespace) -> dict:
    from .evaluate import model_card

    card = model_card(args.onnx)
    with open(args.merge) as f:
        card |= json.load(f)
    set_card(args.onnx, card)
    print(json.dumps(card, indent=1))
    return card


def input_names(cfg: ModelConfig) -> list[str]:
    if cfg.format_version == 1:
        return ["events", "control", "hidden"]
    if cfg.format_version == 2:
        return ["events", "control", "key", "state", "hidden"]
    return ["events", "control", "key", "state", "beat", "hidden"]


def example_inputs(cfg: ModelConfig, T: int, B: int, rng: np.random.Generator | None = None) -> dict:
    """Inputs by name (random when ``rng`` is given, else zeros / START / free time). Random beat
    features are those of a random beat grid (with free time and pickups) at random steps."""
    from .features import beat_features, no_beat

    L, H = cfg.layers, cfg.hidden
    if rng is None:
        feed = {"events": np.full((T, B), V.START, dtype=np.int64),
                "control": V.control_one_hot(np.full((T, B), V.NO_CONTROL)),
                "hidden": np.zeros((L, B, H), dtype=np.float32)}
        if cfg.format_version >= 2:
            feed |= {"key": np.zeros((T, B, cfg.key_size), dtype=np.float32),
                     "state": np.zeros((T, B, cfg.state_size), dtype=np.float32)}
        if cfg.format_version == 3:
            feed["beat"] = no_beat(T * B).reshape(T, B, cfg.beat_size)
        return feed
    feed = {"events": rng.integers(0, V.EMBED_SIZE, (T, B)).astype(np.int64),
            "control": V.control_one_hot(rng.integers(0, V.CONTROL_SIZE, (T, B))),
            "hidden": (rng.standard_normal((L, B, H)) * 0.5).astype(np.float32)}
    if cfg.format_version >= 2:
        key = rng.random((T, B, cfg.key_size))
        feed |= {"key": (key / key.sum(-1, keepdims=True)).astype(np.float32),
                 "state": (rng.random((T, B, cfg.state_size)) < 0.1).astype(np.float32)}
    if cfg.format_version == 3:
        n = int(rng.integers(2, 12))
        grid = np.stack([np.cumsum(rng.integers(20, 140, n)), rng.random(n) < 0.3], 1)
        feed["beat"] = beat_features(rng.integers(0, int(grid[-1, 0]) + 30, T * B), grid).reshape(T, B, cfg.beat_size)
    return feed


def export_onnx(model: PerformanceGRU, path: str, opset: int = 17) -> None:
    model = model.cpu().float().eval()
    names = input_names(model.cfg)
    feed = example_inputs(model.cfg, 3, 2)
    args = tuple(torch.from_numpy(feed[n]) for n in names)
    dynamic = {n: ({1: "B"} if n == "hidden" else {0: "T", 1: "B"}) for n in names}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            OnnxInterface(model),
            args,
            path,
            dynamo=False,
            opset_version=opset,
            input_names=names,
            output_names=["logits", "hidden_out"],
            dynamic_axes=dynamic | {"logits": {0: "T", 1: "B"}, "hidden_out": {1: "B"}},
        )


def set_card(path: str, card: dict, doc: str = EVENT_MODEL_DOC) -> None:
    import onnx

    m = onnx.load(path)
    del m.metadata_props[:]
    entry = m.metadata_props.add()
    entry.key, entry.value = "pianoforte", json.dumps(card)
    m.producer_name = "pianoforte_train"
    m.doc_string = doc
    onnx.checker.check_model(m)
    onnx.save(m, path)


def license_for(data_dir: str | None) -> str:
    """The card's licence, naming the corpora the token directory was made from (its manifest's inputs)."""
    try:
        inputs = load_manifest(data_dir).get("inputs", []) if data_dir else []
    except (OSError, ValueError):
        inputs = []
    names = [name for key, name in DATASETS.items() if any(key in os.path.basename(i).lower() for i in inputs)]
    if len(names) < 2:
        return f"CC BY-NC-SA 4.0 (trained on {(names or ['MAESTRO v2.0.0'])[0]})"
    return f"CC BY-NC-SA 4.0 (trained on {' and '.join(names)}, both CC BY-NC-SA 4.0)"


def base_card(cfg: ModelConfig, n_params: int, key_vectors: dict | None = None, data_dir: str | None = None) -> dict:
    card = {
        "format_version": cfg.format_version,
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
        **({"beat_skip": True} if cfg.beat_skip else {}),  # the beat features also feed the logits directly
        "license": license_for(data_dir),
        "date": datetime.date.today().isoformat(),
    }
    if cfg.format_version >= 2:
        from .features import KEY_HALF_WINDOW, key_names

        kv = key_vectors or {"names": key_names(), "vectors": [[0.0] * 12 for _ in range(24)], "windows": None}
        card["key_control"] = {
            "kind": "pitch_class_histogram",
            "size": cfg.key_size,
            "half_window_steps": KEY_HALF_WINDOW,
            "window": f"centred, [t-{KEY_HALF_WINDOW}, t+{KEY_HALF_WINDOW}) steps; "
                      "NOTE_ON pitch classes (C = 0) / count",
            "off": "all zeros",
            "keys": {"names": kv["names"], "vectors": kv["vectors"], "windows_measured": kv.get("windows")},
        }
        card["state_features"] = V.SPEC["state_features"]
        card["grammar"] = {"masked": True, "rules": "docs/model-format.md, section Grammar (src/codec/features.rs)"}
    if cfg.format_version == 3:
        card["beat_features"] = V.SPEC["beat_features"]
    return card


def parity(model: PerformanceGRU, path: str, T: int = 16, B: int = 3, seed: int = 0) -> dict:
    """ORT vs PyTorch on random inputs, and T single steps vs one call of T. Raises on failure."""
    from .evaluate import onnx_session

    model = model.cpu().float().eval()
    rng = np.random.default_rng(seed)
    feed = example_inputs(model.cfg, T, B, rng)
    h0 = feed["hidden"]
    sess = onnx_session(path, threads=1)
    logits, h1 = sess.run(["logits", "hidden_out"], feed)
    with torch.no_grad():
        tl, th = OnnxInterface(model)(*(torch.from_numpy(feed[n]) for n in input_names(model.cfg)))
    d_torch = max(float(np.abs(logits - tl.numpy()).max()), float(np.abs(h1 - th.numpy()).max()))
    h, steps = h0, []
    for t in range(T):
        one = {n: (v if n == "hidden" else v[t : t + 1]) for n, v in feed.items()} | {"hidden": h}
        lt, h = sess.run(["logits", "hidden_out"], one)
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
    feed = {"events": np.array([[V.START]], dtype=np.int64), "control": V.control_one_hot(np.array([[V.NO_CONTROL]])),
            "hidden": np.zeros((L, 1, H), dtype=np.float32)}
    for name in ("key", "state", "beat"):
        if name in inp:
            feed[name] = np.zeros((1, 1, inp[name].shape[2]), dtype=np.float32)
    if "beat" in inp:
        from .features import NO_BEAT_OFFSET

        feed["beat"][..., NO_BEAT_OFFSET] = 1.0
    times = []
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        logits, feed["hidden"] = sess.run(["logits", "hidden_out"], feed)
        dt = time.perf_counter() - t0
        if k >= warmup:
            times.append(dt)
        feed["events"] = np.array([[int(np.argmax(logits[0, 0]))]], dtype=np.int64)
    us = np.array(times) * 1e6
    return {
        "threads": 1,
        "steps": steps,
        "median_us": float(np.median(us)),
        "mean_us": float(us.mean()),
        "p90_us": float(np.percentile(us, 90)),
        "p99_us": float(np.percentile(us, 99)),
        "within_1ms": bool(np.median(us) <= 1000.0),
        "p99_within_0_5ms": bool(np.percentile(us, 99) <= 500.0),
    }


def run(args: argparse.Namespace) -> dict:
    from .train import load_checkpoint

    model, ckpt = load_checkpoint(args.checkpoint, "cpu")
    run_dir = args.checkpoint if os.path.isdir(args.checkpoint) else os.path.dirname(args.checkpoint)
    out = args.out or os.path.join(run_dir, "model.onnx")
    export_onnx(model, out, args.opset)

    info = ckpt.get("data_info", {})
    key_vectors = None
    if model.cfg.format_version >= 2:
        if args.key_vectors:
            with open(args.key_vectors) as f:
                key_vectors = json.load(f)
        elif info.get("data") and os.path.isdir(info["data"]):
            from .data import TokenSplit
            from .features import measure_key_vectors

            key_vectors = measure_key_vectors(TokenSplit.load(info["data"], "train"))
        else:
            print("no training data to measure the key vectors: the card's keys are zeros", file=sys.stderr)
    card = base_card(model.cfg, model.n_params, key_vectors, info.get("data"))
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
        "key_dropout": ckpt["args"].get("key_dropout") if model.cfg.format_version >= 2 else None,
        "all_controls_off": ckpt["args"].get("all_off") if model.cfg.format_version >= 2 else None,
        "init": ckpt["args"].get("init_onnx"),
        **({"beat_dropout": ckpt["args"].get("beat_dropout"), "documents_with_beats": info.get("beat_docs")}
           if model.cfg.format_version == 3 else {}),
        "crop_val_loss": ckpt.get("best_val"),
    }
    val = {"nll_nats_per_event": None, "bits_per_second": None, "accuracy": None}
    if args.validation_json:
        with open(args.validation_json) as f:
            given = json.loads(f.read().strip().splitlines()[-1])
        val |= {k: v for k, v in given.items() if k in val}
        if model.cfg.format_version == 3 and given.get("beats"):
            val["beats"] = given["beats"]
    set_card(out, card | {"validation": val})  # parity/eval below read the file

    par = parity(model, out)
    print(f"parity ok: torch {par['max_abs_diff_torch']:.2e}, T steps vs T {par['max_abs_diff_steps']:.2e}")
    if not args.no_eval and not args.validation_json:
        data = args.data or info.get("data")
        if data and os.path.isdir(data):
            from .data import TokenSplit
            from .evaluate import evaluate_beats, evaluate_split, onnx_session, onnx_step_fn

            split = TokenSplit.load(data, "validation")
            cfg = model.cfg
            step = onnx_step_fn(onnx_session(out))
            kw = dict(layers_hidden=(cfg.layers, cfg.hidden), grammar=cfg.format_version >= 2, key_size=cfg.key_size,
                      state_size=cfg.state_size, beat_size=cfg.beat_size)
            runs = {}
            for name, control in (("unconditioned", False), ("controlled", True)):
                runs[name] = evaluate_split(step, split, args.eval_max_docs, control=control, beats=False, **kw)
            res = runs["unconditioned"]
            val = {k: res[k] for k in val} | {"docs": res["docs"], "events": res["events"], "controls": "off",
                                                "grammar_mask": cfg.format_version >= 2}
            val["controlled"] = {k: runs["controlled"][k]
                                 for k in ("nll_nats_per_event", "bits_per_second", "accuracy")}
            if cfg.format_version == 3:  # the headline figures above: no beats for any document
                val["beats"] = evaluate_beats(step, split, args.eval_max_docs, control=False, **kw)
            print(f"validation: {json.dumps(val)}")
        else:
            print(f"token directory {data} not found: validation metrics left null", file=sys.stderr)
    card["validation"] = val
    if args.card_extra:
        with open(args.card_extra) as f:
            card |= json.load(f)
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
    p.add_argument("--format", type=int, default=2, choices=(1, 2, 3),
                   help="model format (2: key and state inputs, 3: and beat features)")
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
        from .features import BEAT_SIZE, KEY_SIZE, STATE_SIZE

        sizes = ((KEY_SIZE, STATE_SIZE) if args.format >= 2 else (0, 0)) + ((BEAT_SIZE,) if args.format == 3 else (0,))
        cfg = ModelConfig(layers, hidden, args.embedding, 0.1, *sizes)
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
    from .train import forward_batch, loss_fn

    tmp = None
    data = args.data
    if data is None:
        tmp = tempfile.TemporaryDirectory()
        data = write_synthetic_dir(tmp.name, docs_per_split=(8, 2), notes=(2000, 3000))
    sampler = CropSampler(TokenSplit.load(data, "train"), args.seq_len, args.batch_size, seed=0,
                          beats=model.cfg.beat_size > 0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    t_data = 0.0
    for k in range(args.train_steps + 1):
        if k == 1:  # one warm-up step
            t0, t_data = time.perf_counter(), 0.0
        td = time.perf_counter()
        batch = sampler.next_batch()
        t_data += time.perf_counter() - td
        logits, y, allowed = forward_batch(model, batch, "cpu")
        loss = loss_fn(logits, y, allowed=allowed)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    if tmp is not None:
        tmp.cleanup()
    tokens = args.train_steps * args.seq_len * args.batch_size
    return {"tokens_per_s": tokens / dt, "steps": args.train_steps, "seconds": dt,
            "data_seconds": t_data, "threads": torch.get_num_threads()}
