#!/usr/bin/env python3
"""Generation speed on ONE core: `pianoforte generate` (Rust + ONNX Runtime, 1 intra-op thread)
against PyTorch eager stepping of the same weights (and ONNX Runtime driven from Python).

Run from the repository root, after `cargo build --release` and `cargo xtask onnxruntime`:

    ~/.cache/pianoforte/venv/bin/python benches/engine_speed.py \\
        --onnx models/pianoforte-gru.onnx --checkpoint models/runs/RUN/best.pt

Every contender is pinned to one CPU (`taskset` / `sched_setaffinity`) and one thread, and draws
events one at a time (T = 1, B = 1) until `--seconds` of music exist:

- rust: `pianoforte generate --threads 1` (prime + step with guards, sampling, MIDI writing
  excluded from the timing; the figure is the one the command prints).
- torch eager: `PerformanceGRU` from the trainer loaded from `--checkpoint`, `torch.no_grad()`,
  softmax + `torch.multinomial` per event. Without `--checkpoint` the same architecture (layers,
  hidden and embedding from the ONNX model card) with random weights: speed does not depend on
  the weights' values, but say so when reporting.
- onnxruntime (python): the same .onnx through `onnxruntime.InferenceSession`, 1 thread.

Events/s is the honest per-event figure. The real-time factor (seconds of music per second of
compute) depends on how many events a second of music takes, which differs between a trained
and an untrained model; so it is given as measured, and at MAESTRO's rate (47.0 events per second
of music, from the training split), which makes the contenders comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))

MAESTRO_EVENTS_PER_SECOND = 47.0  # 27,347,921 events / 161.56 h (data/maestro/manifest.json)


def card_of(path: str) -> dict:
    import onnx

    m = onnx.load(path, load_external_data=False)
    for p in m.metadata_props:
        if p.key == "pianoforte":
            return json.loads(p.value)
    raise SystemExit(f"{path}: no pianoforte model card")


def rust(binary: str, model: str, seconds: float, seed: int, cpu: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["taskset", "-c", str(cpu), binary, "generate", "--model", model, "--seconds", str(seconds),
               "--seed", str(seed), "--threads", "1", "-o", os.path.join(tmp, "x.mid")]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"(\d+) events \((\d+) forced\); (\d+) events/s, (\d+)x real time", out)
    if not m:
        raise SystemExit(f"unexpected output of {' '.join(cmd)}:\n{out}")
    events, events_per_s, rtf = int(m.group(1)), float(m.group(3)), float(m.group(4))
    steps = re.search(r"one step: median (\d+) us, p99 (\d+) us", out)
    return {"events": events, "events_per_s": events_per_s, "rtf": rtf,
            "step_median_us": float(steps.group(1)) if steps else None,
            "step_p99_us": float(steps.group(2)) if steps else None}


def torch_eager(model, seconds: float, seed: int, temperature: float = 1.0) -> dict:
    import torch

    from pianoforte_train import vocab as V

    torch.manual_seed(seed)
    L, H = model.cfg.layers, model.cfg.hidden
    h = torch.zeros(L, 1, H)
    control = torch.zeros(1, 1, V.CONTROL_SIZE)
    control[0, 0, V.NO_CONTROL] = 1.0
    x = torch.full((1, 1), V.START, dtype=torch.int64)
    key, state = torch.zeros(1, 1, model.cfg.key_size), torch.zeros(1, 1, model.cfg.state_size)
    beat = torch.zeros(1, 1, model.cfg.beat_size) if model.cfg.beat_size else None
    steps_needed, now, events = int(seconds * V.STEPS_PER_SECOND), 0, 0
    t0 = time.perf_counter()
    with torch.no_grad():
        while now < steps_needed:
            logits, h = model(x, control, h, key, state, *([beat] if beat is not None else []))
            probs = torch.softmax(logits[0, 0] / temperature, -1)
            e = int(torch.multinomial(probs, 1))
            if V.TIME_SHIFT <= e < V.VELOCITY:
                now += e - V.TIME_SHIFT + 1
            x[0, 0] = e
            events += 1
    dt = time.perf_counter() - t0
    return {"events": events, "events_per_s": events / dt, "rtf": seconds / dt}


def ort_python(path: str, card: dict, seconds: float, seed: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    from pianoforte_train import vocab as V

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    h = np.zeros((card["layers"], 1, card["hidden"]), dtype=np.float32)
    c = V.control_one_hot(np.array([[V.NO_CONTROL]]))
    x = np.array([[V.START]], dtype=np.int64)
    extra = {i.name: np.zeros((1, 1, i.shape[2]), dtype=np.float32) for i in sess.get_inputs()
             if i.name in ("key", "state", "beat")}  # formats 2, 3 (speed does not depend on their values)
    steps_needed, now, events = int(seconds * V.STEPS_PER_SECOND), 0, 0
    t0 = time.perf_counter()
    while now < steps_needed:
        logits, h = sess.run(["logits", "hidden_out"], {"events": x, "control": c, "hidden": h} | extra)
        z = logits[0, 0].astype(np.float64)
        p = np.exp(z - z.max())
        e = int(rng.choice(len(p), p=p / p.sum()))
        if V.TIME_SHIFT <= e < V.VELOCITY:
            now += e - V.TIME_SHIFT + 1
        x = np.array([[e]], dtype=np.int64)
        events += 1
    dt = time.perf_counter() - t0
    return {"events": events, "events_per_s": events / dt, "rtf": seconds / dt}


def summary(runs: list[dict]) -> dict:
    eps = [r["events_per_s"] for r in runs]
    rtf = [r["rtf"] for r in runs]
    steps = {}
    if runs and runs[0].get("step_p99_us") is not None:
        steps = {"step_median_us": statistics.median(r["step_median_us"] for r in runs),
                 "step_p99_us": max(r["step_p99_us"] for r in runs)}
    return steps | {
        "events_per_s": statistics.median(eps),
        "events_per_s_min": min(eps),
        "events_per_s_max": max(eps),
        "rtf": statistics.median(rtf),
        "rtf_at_maestro_rate": statistics.median(eps) / MAESTRO_EVENTS_PER_SECOND,
        "us_per_event": 1e6 / statistics.median(eps),
        "events": sum(r["events"] for r in runs),
        "runs": len(runs),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", default=os.path.join(ROOT, "models/pianoforte-gru.onnx"))
    p.add_argument("--checkpoint", default=None, help="trainer checkpoint (.pt) with the same weights")
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/pianoforte"))
    p.add_argument("--seconds", type=float, default=60.0, help="seconds of music per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cpu", type=int, default=0, help="the one CPU everything is pinned to")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a = p.parse_args()

    card = card_of(a.onnx)
    results: dict[str, dict] = {}
    results["rust (pianoforte generate)"] = summary(
        [rust(a.binary, a.onnx, a.seconds, 1000 + k, a.cpu) for k in range(a.repeats)]
    )

    os.sched_setaffinity(0, {a.cpu})
    results["onnxruntime from python"] = summary([ort_python(a.onnx, card, a.seconds, k) for k in range(a.repeats)])
    weights = "none"
    if not a.skip_torch:
        import torch

        from pianoforte_train.model import ModelConfig, PerformanceGRU

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        if a.checkpoint:
            from pianoforte_train.train import load_checkpoint

            model, _ = load_checkpoint(a.checkpoint, "cpu")
            weights = f"checkpoint {a.checkpoint}"
        else:
            fmt = card.get("format_version", 1)
            sizes = (card["key_control"]["size"], card["state_features"]["size"]) if fmt >= 2 else (0, 0)
            beat_size = card["beat_features"]["size"] if fmt >= 3 else 0
            cfg = ModelConfig(card["layers"], card["hidden"], card.get("embedding", 256), 0.0, *sizes, beat_size)
            torch.manual_seed(0)
            model = PerformanceGRU(cfg)
            weights = "random weights of the card's architecture (no --checkpoint)"
        model.eval()
        results["pytorch eager"] = summary([torch_eager(model, a.seconds, k) for k in range(a.repeats)])

    info = {
        "model": a.onnx,
        "architecture": f"GRU {card['layers']} x {card['hidden']}, embedding {card.get('embedding')}",
        "trained_steps": (card.get("training") or {}).get("steps"),
        "torch_weights": weights,
        "seconds_per_run": a.seconds,
        "repeats": a.repeats,
        "cpu": a.cpu,
        "results": results,
    }
    if a.json:
        print(json.dumps(info))
        return
    print(f"model {a.onnx}: {info['architecture']}, trained steps {info['trained_steps']}; torch: {weights}")
    print(f"one CPU (#{a.cpu}), one thread, T = 1 per event, {a.repeats} x {a.seconds:g} s of music each\n")
    print("| engine | events/s (median, min-max) | µs/event | real-time factor (measured) "
          "| real-time factor at 47 events/s of music |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| {name} | {r['events_per_s']:.0f} ({r['events_per_s_min']:.0f}-{r['events_per_s_max']:.0f}) "
              f"| {r['us_per_event']:.0f} | {r['rtf']:.0f}x | {r['rtf_at_maestro_rate']:.0f}x |")
    if results["rust (pianoforte generate)"].get("step_p99_us") is not None:
        r = results["rust (pianoforte generate)"]
        print(f"\nrust engine, one T = 1 step (model call, masks, sampling): median {r['step_median_us']:.0f} µs, "
              f"p99 {r['step_p99_us']:.0f} µs (worst run of {a.repeats})")


if __name__ == "__main__":
    main()
