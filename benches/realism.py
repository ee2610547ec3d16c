#!/usr/bin/env python3
"""How much do generated performances look like MAESTRO? Statistics of `--count` generated pieces
against the MAESTRO v2.0.0 validation performances, read the same way (pretty_midi).

Run from the repository root, after `cargo build --release` and `cargo xtask onnxruntime`:

    ~/.cache/pianoforte/venv-probe/bin/python benches/realism.py --model models/pianoforte-gru.onnx

Per piece: notes per second, velocity mean and spread, pitch mean and span (5th-95th
percentile), polyphony (keys down, time-weighted, while any is), median note length, median
inter-onset interval, share of onsets in chords (another onset within 30 ms), fraction of time
the sustain pedal is down, pedal presses per minute. The table gives each statistic's mean ± sd
over pieces for both, and the generated mean's distance from MAESTRO's in MAESTRO standard
deviations. A second table gives the overlap (sum of min(p, q), 1 = identical) of the pooled
distributions of velocity, pitch, inter-onset interval and note length. Generated files are
also checked for stuck notes (benches/density_control.py's check).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import pretty_midi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from density_control import stuck_notes  # noqa: E402

MAESTRO_CSV = os.path.join(ROOT, "../shared/data/maestro-v2.0.0/maestro-v2.0.0-train-validation.csv")

STATS = [
    ("notes_per_s", "notes per second", "{:.2f}"),
    ("velocity_mean", "velocity, mean", "{:.1f}"),
    ("velocity_sd", "velocity, sd within piece", "{:.1f}"),
    ("pitch_mean", "pitch, mean (MIDI)", "{:.1f}"),
    ("pitch_span", "pitch span, 5th-95th pct (semitones)", "{:.1f}"),
    ("polyphony", "keys down while any is", "{:.2f}"),
    ("duration_median", "note length, median (s)", "{:.3f}"),
    ("ioi_median", "inter-onset interval, median (s)", "{:.3f}"),
    ("chord_share", "onsets in chords (30 ms)", "{:.2f}"),
    ("pedal_fraction", "time with pedal down", "{:.2f}"),
    ("pedal_per_min", "pedal presses per minute", "{:.1f}"),
]


def piece_stats(path: str) -> tuple[dict, dict]:
    """Statistics of one file, and its raw values for the pooled distributions."""
    pm = pretty_midi.PrettyMIDI(path)
    notes = sorted((n for i in pm.instruments for n in i.notes), key=lambda n: (n.start, n.pitch))
    end = max([pm.get_end_time()] + [n.end for n in notes]) or 1e-9
    starts = np.array([n.start for n in notes])
    vel = np.array([n.velocity for n in notes], dtype=np.float64)
    pitch = np.array([n.pitch for n in notes], dtype=np.float64)
    dur = np.array([n.end - n.start for n in notes])
    onsets = np.unique(np.round(starts, 3))
    ioi = np.diff(onsets)
    ioi = ioi[ioi > 0]
    # Chords: an onset with another onset within 30 ms.
    gaps = np.diff(starts)
    in_chord = np.zeros(len(starts), dtype=bool)
    in_chord[1:] |= gaps <= 0.03
    in_chord[:-1] |= gaps <= 0.03
    # Polyphony: time-weighted keys down while any is down.
    edges = sorted([(n.start, 1) for n in notes] + [(n.end, -1) for n in notes])
    down, last, weighted, busy = 0, 0.0, 0.0, 0.0
    for t, d in edges:
        if down > 0:
            weighted += down * (t - last)
            busy += t - last
        down, last = down + d, t
    # Pedal (CC64 >= 64 is down).
    cc = sorted((c.time, c.value >= 64) for i in pm.instruments for c in i.control_changes if c.number == 64)
    pedal_down, since, down_time, presses = False, 0.0, 0.0, 0
    for t, is_down in cc:
        if is_down and not pedal_down:
            presses, since = presses + 1, t
        elif not is_down and pedal_down:
            down_time += t - since
        pedal_down = is_down
    if pedal_down:
        down_time += end - since
    stats = {
        "notes_per_s": len(notes) / end,
        "velocity_mean": float(vel.mean()) if len(vel) else math.nan,
        "velocity_sd": float(vel.std()) if len(vel) else math.nan,
        "pitch_mean": float(pitch.mean()) if len(pitch) else math.nan,
        "pitch_span": float(np.percentile(pitch, 95) - np.percentile(pitch, 5)) if len(pitch) else math.nan,
        "polyphony": weighted / busy if busy > 0 else math.nan,
        "duration_median": float(np.median(dur)) if len(dur) else math.nan,
        "ioi_median": float(np.median(ioi)) if len(ioi) else math.nan,
        "chord_share": float(in_chord.mean()) if len(in_chord) else math.nan,
        "pedal_fraction": down_time / end,
        "pedal_per_min": presses / end * 60,
    }
    return stats, {"velocity": vel, "pitch": pitch, "ioi": ioi, "duration": dur}


def overlap(a: np.ndarray, b: np.ndarray, bins: np.ndarray) -> float:
    pa, _ = np.histogram(a, bins)
    pb, _ = np.histogram(b, bins)
    if pa.sum() == 0 or pb.sum() == 0:
        return math.nan
    return float(np.minimum(pa / pa.sum(), pb / pb.sum()).sum())


def summarise(pieces: list[dict]) -> dict:
    out = {}
    for key, _, _ in STATS:
        values = [p[key] for p in pieces if not math.isnan(p[key])]
        out[key] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models/pianoforte-gru.onnx"))
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/pianoforte"))
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=500)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--density", default="off")
    p.add_argument("--csv", default=MAESTRO_CSV, help="MAESTRO CSV (its validation rows are the reference)")
    p.add_argument("--max-files", type=int, default=40, help="reference files (0: all 137)")
    p.add_argument("--keep", default=None, help="keep the generated files in this folder")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    with open(a.csv) as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "validation"]
    rows.sort(key=lambda r: r["midi_filename"])
    if a.max_files:
        # Every k-th file, so a subset still spans the years.
        step = max(1, len(rows) // a.max_files)
        rows = rows[::step][: a.max_files]
    base = os.path.dirname(a.csv)
    ref, ref_raw = [], []
    for r in rows:
        s, raw = piece_stats(os.path.join(base, r["midi_filename"]))
        ref.append(s)
        ref_raw.append(raw)

    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or tmp
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, "realism.mid")
        cmd = [a.binary, "generate", "--model", a.model, "--count", str(a.count), "--seconds", str(a.seconds),
               "--seed", str(a.seed), "--temperature", str(a.temperature), "--density", a.density,
               "--threads", "1", "-o", out]
        if a.top_p is not None:
            cmd += ["--top-p", str(a.top_p)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        files = [out] if a.count == 1 else [os.path.join(folder, f"realism-{k}.mid") for k in range(1, a.count + 1)]
        gen, gen_raw, stuck = [], [], []
        for f in files:
            s, raw = piece_stats(f)
            gen.append(s)
            gen_raw.append(raw)
            stuck += stuck_notes(f, 5.0)

    r_sum, g_sum = summarise(ref), summarise(gen)
    pooled = lambda raws, k: np.concatenate([x[k] for x in raws]) if raws else np.array([])  # noqa: E731
    overlaps = {
        "velocity": overlap(pooled(ref_raw, "velocity"), pooled(gen_raw, "velocity"), np.arange(0, 129, 4)),
        "pitch": overlap(pooled(ref_raw, "pitch"), pooled(gen_raw, "pitch"), np.arange(20.5, 109.5, 1)),
        "inter-onset interval": overlap(pooled(ref_raw, "ioi"), pooled(gen_raw, "ioi"), np.geomspace(0.005, 10, 40)),
        "note length": overlap(pooled(ref_raw, "duration"), pooled(gen_raw, "duration"), np.geomspace(0.005, 10, 40)),
    }
    if a.json:
        print(json.dumps({"model": a.model, "reference_files": len(ref), "generated": len(gen),
                          "maestro": r_sum, "generated_stats": g_sum, "overlap": overlaps, "stuck": stuck}))
        return
    print(f"model {a.model}: {a.count} x {a.seconds:g} s, temperature {a.temperature}, top-p {a.top_p or 'off'}, "
          f"density {a.density}, seeds {a.seed}..{a.seed + a.count - 1}; reference: {len(ref)} MAESTRO validation "
          f"performances; stuck-note problems in the generated files: {len(stuck)}\n")
    print("| statistic | MAESTRO validation (mean ± sd over pieces) | generated | distance (MAESTRO sds) |")
    print("| --- | --- | --- | --- |")
    for key, label, fmt in STATS:
        (rm, rs), (gm, gs) = r_sum[key], g_sum[key]
        z = (gm - rm) / rs if rs > 0 else math.nan
        print(f"| {label} | {fmt.format(rm)} ± {fmt.format(rs)} | {fmt.format(gm)} ± {fmt.format(gs)} | {z:+.1f} |")
    print("\n| pooled distribution | overlap with MAESTRO validation (1 = identical) |")
    print("| --- | --- |")
    for k, v in overlaps.items():
        print(f"| {k} | {v:.2f} |")
    for s in stuck[:10]:
        print(f"  stuck: {s}", file=sys.stderr)


if __name__ == "__main__":
    main()
