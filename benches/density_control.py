#!/usr/bin/env python3
"""Does the density control work? For each target (notes per second), generate `--count` pieces
of `--seconds` each with `pianoforte generate --density D` and measure the notes per second the
files actually hold (read back with pretty_midi), and check them for stuck notes (with mido).

Run from the repository root, after `cargo build --release` and `cargo xtask onnxruntime`:

    ~/.cache/pianoforte/venv/bin/python benches/density_control.py --model models/pianoforte-gru.onnx

Prints a markdown table (and `--json` a JSON object). Deterministic: piece k of every target uses
seed `--seed + k`. Temperature and top-p default to the model card's.

Calibration (`--calibrate OUT.json`, on a model whose card has no calibration yet): every density
bin's control is played (`--density` = the bin's lower edge, 0.5 for bin 0) and the notes per
second the model actually plays are measured; OUT.json holds `{"density_calibration":
{"measured_notes_per_second": [one per bin], ...}}`, to merge into the card with
`python -m pianoforte_train card MODEL.onnx --merge OUT.json`. The engine then sends a request to
the bin whose measured output is nearest (in log notes/s).

Stuck-note check (per file, from the raw MIDI messages): every NOTE_ON is released by a NOTE_OFF
(or NOTE_ON velocity 0) of its key, no key is held longer than `--max-note` seconds (default: the
engine's guard), and the sustain pedal is up at the end of the file.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

import mido
import pretty_midi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))
from pianoforte_train import vocab as V  # noqa: E402

EDGES = V.DENSITY_EDGES
GUARD_S = V.MAX_NOTE_STEPS / V.STEPS_PER_SECOND  # the engine's stuck-note guard


def bin_range(d: float) -> str:
    b = sum(1 for e in EDGES if e <= d)
    lo = 0 if b == 0 else EDGES[b - 1]
    return f"[{lo}, {EDGES[b]})" if b < len(EDGES) else f">= {lo}"


def stuck_notes(path: str, max_note: float) -> list[str]:
    """Problems of one file: unreleased keys, keys held too long, pedal down at the end."""
    problems = []
    mid = mido.MidiFile(path)
    now, down, pedal = 0.0, {}, False
    for msg in mid:  # merged tracks, delta times in seconds
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            if msg.note in down:
                problems.append(f"key {msg.note} struck again at {now:.2f} s while down")
            down[msg.note] = now
        elif msg.type in ("note_off", "note_on"):
            start = down.pop(msg.note, None)
            if start is not None and now - start > max_note + 0.011:
                problems.append(f"key {msg.note} held {now - start:.2f} s from {start:.2f} s")
        elif msg.type == "control_change" and msg.control == 64:
            pedal = msg.value >= 64
    problems += [f"key {k} never released (down since {t:.2f} s)" for k, t in down.items()]
    if pedal:
        problems.append("sustain pedal still down at the end")
    return problems


def generate(binary: str, model: str, density: str, count: int, seconds: float, seed: int, out: str,
             temperature: float | None, top_p: str | None, extra: list[str] = ()) -> list[str]:
    cmd = [binary, "generate", "--model", model, "--density", density, "--count", str(count),
           "--seconds", str(seconds), "--seed", str(seed), "--threads", "1", "-o", out]
    if temperature is not None:
        cmd += ["--temperature", str(temperature)]
    if top_p is not None:
        cmd += ["--top-p", str(top_p)]
    subprocess.run(cmd + list(extra), check=True, capture_output=True, text=True)
    stem, ext = os.path.splitext(out)
    return [out] if count == 1 else [f"{stem}-{k}{ext}" for k in range(1, count + 1)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models/pianoforte-gru.onnx"))
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/pianoforte"))
    p.add_argument("--targets", default="2,4,8,16", help="notes per second, comma-separated (`off` allowed)")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=100)
    p.add_argument("--temperature", type=float, default=None, help="default: the model card's")
    p.add_argument("--top-p", default=None, help="a probability or 'off' (default: the model card's)")
    p.add_argument("--calibrate", default=None, metavar="OUT.json",
                   help="measure every bin's output instead (targets = the bins' lower edges)")
    p.add_argument("--max-note", type=float, default=GUARD_S, help="longest allowed note in the stuck-note check")
    p.add_argument("--keep", default=None, help="keep the generated files in this folder")
    p.add_argument("--generate-args", default="", help="more arguments for `pianoforte generate`, e.g. '--memory 0'")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.calibrate:
        a.targets = ",".join(["0.5"] + [f"{e:g}" for e in EDGES])

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or tmp
        os.makedirs(folder, exist_ok=True)
        for target in a.targets.split(","):
            target = target.strip()
            files = generate(a.binary, a.model, target, a.count, a.seconds, a.seed,
                             os.path.join(folder, f"density-{target}.mid"), a.temperature, a.top_p,
                             shlex.split(a.generate_args))
            rates, problems = [], []
            for f in files:
                pm = pretty_midi.PrettyMIDI(f)
                notes = sum(len(i.notes) for i in pm.instruments)
                rates.append(notes / a.seconds)
                problems += [f"{os.path.basename(f)}: {x}" for x in stuck_notes(f, a.max_note)]
            rows.append({
                "target": target,
                "error": abs(statistics.mean(rates) / float(target) - 1) if target != "off" else None,
                "bin": bin_range(float(target)) if target != "off" else "no control",
                "mean": statistics.mean(rates),
                "sd": statistics.stdev(rates) if len(rates) > 1 else 0.0,
                "min": min(rates),
                "max": max(rates),
                "pieces": len(rates),
                "stuck": problems,
            })
    if a.calibrate:
        calibration = {"density_calibration": {
            "measured_notes_per_second": [round(r["mean"], 3) for r in rows],
            "method": f"benches/density_control.py --calibrate: {a.count} pieces x {a.seconds:g} s per bin, "
                      f"seeds {a.seed}.., temperature {a.temperature or 'card'}, top-p {a.top_p or 'card'}; "
                      "a request goes to the bin whose measured output is nearest in log notes/s",
        }}
        with open(a.calibrate, "w") as f:
            json.dump(calibration, f, indent=1)
    if a.json:
        print(json.dumps({"model": a.model, "seconds": a.seconds, "temperature": a.temperature,
                          "top_p": a.top_p, "rows": rows}))
        return
    print(f"model {a.model}; {a.count} pieces x {a.seconds:g} s per target, temperature {a.temperature or 'card'}, "
          f"top-p {a.top_p or 'card'}, seeds {a.seed}..{a.seed + a.count - 1}\n")
    print("| target notes/s | uncalibrated bin of the target | measured notes/s (mean ± sd) | min-max | error "
          "| stuck-note problems |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        err = f"{r['error'] * 100:.0f} %" if r["error"] is not None else "-"
        print(f"| {r['target']} | {r['bin']} | {r['mean']:.2f} ± {r['sd']:.2f} | {r['min']:.2f}-{r['max']:.2f} "
              f"| {err} | {len(r['stuck'])} |")
    for r in rows:
        for prob in r["stuck"][:10]:
            print(f"  {r['target']}: {prob}", file=sys.stderr)


if __name__ == "__main__":
    main()
