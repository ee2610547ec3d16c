#!/usr/bin/env python3
"""Figures and themes that come back (issue 21): how often does a performance repeat a figure, and
does it copy itself verbatim? Measured on the first `--seconds` (default 60) of each performance.

Run from the repository root, after `cargo build --release --bin pianoforte`:

    ~/.cache/pianoforte/venv/bin/python benches/motifs.py --json motifs.json

Definitions (every note of the file counts; onsets at or after `--seconds` are left out):
- *clusters*: the onsets, in time order, are grouped greedily: a cluster starts at the first onset
  not yet in one and takes every later onset whose gap to that first onset is < 30 ms (so a cluster
  spans under 30 ms; an arpeggio rolled over longer gives several clusters); onsets are compared in
  whole milliseconds (`--cluster-ms` sets the 30);
- *top line*: the highest pitch of each cluster, in time order;
- *k-interval motif*: k consecutive pitch intervals of the top line (semitones, signed), so a
  transposed figure is the same motif; a top line of n notes has n - k windows (occurrences);
- *motif recurrence* (the headline, k = 5; also k = 3): the share of the performance's windows whose
  motif occurs at least twice in it (0 when it has no window). The other reading, the share of
  distinct motifs occurring at least twice, is reported too ("distinct"). Against the issue's
  figures (MAESTRO validation after the round trip 0.26 mean, median 0.20, at k = 3 0.42; the
  shipped model 0.001, at k = 3 0.025) the share of windows is the reading that fits: here 0.18
  (median 0.15) and 0.34 on all 137 files, 0.001 and 0.027 generated; distinct motifs give 0.09
  and 0.17. The issue's MAESTRO figures are not reproduced exactly: chained clusters (gap to the
  previous onset < 30 ms) on realism.py's 40-file subset (`--max-files 40`) come nearest (0.255,
  median 0.216; 0.425). Gaps of exactly 30 ms are common on the codec's 10 ms grid: letting them
  join (`--cluster-ms 31`) moves the MAESTRO figure to 0.23;
- *verbatim copies*: windows of 12 consecutive notes (all notes, ordered by onset then pitch) with
  the same pitches, the same 11 onset gaps rounded to 10 ms (the codec's step) and the same
  velocities as another window of the same performance; the share of the windows that are such
  copies (real playing: 0; the issue's goal: at most 2 %).

Sources: the MAESTRO v2.0.0 validation performances (`--csv`, rows with split=validation, every
k-th file with `--max-files`) after the codec's round trip (`pianoforte encode` then `pianoforte
decode`, as benches/realism.py does), and `--count` generated performances of `--seconds` with seeds
`--seed`, `--seed`+1, ... at the model card's defaults, in free time and with `--bpm` (0: free time
only; `--generate-args "--memory 0"` passes more arguments to `pianoforte generate`, e.g. to
measure without the engine's motif memory). Prints the command line, then a markdown table
(mean, median and sd over performances); `--json OUT.json` writes every figure, per file as well.
Goals: recurrence >= 0.15 at k = 5 in free time and at `--bpm 100`; verbatim copies at most 2 %.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from beats import Meter, generate, no_nan  # noqa: E402 (one runner of `pianoforte generate` for the benches)

ROOT = Path(__file__).resolve().parents[1]
MAESTRO_CSV = ROOT.parent / "shared" / "data" / "maestro-v2.0.0" / "maestro-v2.0.0-train-validation.csv"

CLUSTER_S = 0.030  # onsets within this of a cluster's first onset belong to it (strictly less)
KS = (5, 3)  # motif lengths in intervals; the first is the headline
VERBATIM_NOTES = 12  # notes per verbatim window
GAP_STEP_S = 0.010  # onset gaps are compared rounded to this step
GOALS = {"recurrence": 0.15, "verbatim": 0.02}


# ---------------------------------------------------------------------------------------------
# Measuring (pure functions, unit tested in tests/python/test_motifs.py)
# ---------------------------------------------------------------------------------------------

def ordered(onsets, pitches, velocities=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The notes as arrays sorted by onset, then pitch (velocities 0 when not given)."""
    t = np.asarray(onsets, dtype=float).reshape(-1)
    p = np.asarray(pitches, dtype=np.int64).reshape(-1)
    v = np.zeros(len(t), dtype=np.int64) if velocities is None else np.asarray(velocities, dtype=np.int64).reshape(-1)
    if not (len(t) == len(p) == len(v)):
        raise ValueError("onsets, pitches and velocities differ in length")
    order = np.lexsort((p, t))
    return t[order], p[order], v[order]


def first_seconds(onsets, pitches, velocities, seconds: float | None):
    """The notes whose onset is before `seconds` (all when None), sorted by onset then pitch."""
    t, p, v = ordered(onsets, pitches, velocities)
    if seconds is not None:
        keep = t < seconds
        t, p, v = t[keep], p[keep], v[keep]
    return t, p, v


def clusters(onsets, window: float = CLUSTER_S) -> np.ndarray:
    """Cluster index of each onset (`onsets` sorted): a cluster starts at the first onset not yet in
    one and takes every later onset less than `window` after that first onset. Onsets and the window
    are compared in whole milliseconds, so a gap of exactly 30 ms (three of the codec's 10 ms steps,
    common after the round trip) never joins a 30 ms cluster, whatever the file's tick rounding."""
    ms = np.rint(np.asarray(onsets, dtype=float) * 1000.0).astype(np.int64)
    window_ms = int(round(window * 1000.0))
    ids = np.zeros(len(ms), dtype=np.int64)
    cid, start = -1, None
    for i, x in enumerate(ms):
        if start is None or x - start >= window_ms:
            cid, start = cid + 1, x
        ids[i] = cid
    return ids


def top_line(onsets, pitches, window: float = CLUSTER_S) -> np.ndarray:
    """The highest pitch of each cluster of onsets, in time order."""
    t, p, _ = ordered(onsets, pitches)
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64)
    ids = clusters(t, window)
    top = np.full(ids[-1] + 1, -1, dtype=np.int64)
    np.maximum.at(top, ids, p)
    return top


def motifs(line, k: int) -> list[tuple[int, ...]]:
    """The k-interval motifs of a melodic line: one per window of k + 1 consecutive notes."""
    iv = np.diff(np.asarray(line, dtype=np.int64))
    return [tuple(int(x) for x in iv[i:i + k]) for i in range(len(iv) - k + 1)] if len(iv) >= k else []


def recurrence(line, k: int) -> dict:
    """Motif recurrence of a line: `windows`, the share of its motif windows whose motif occurs at
    least twice (the headline); `distinct`, the share of its distinct motifs occurring at least
    twice; both 0 when the line has no window."""
    m = motifs(line, k)
    counts = Counter(m)
    return {"windows": len(m), "motifs": len(counts),
            "share_windows": sum(c for c in counts.values() if c >= 2) / len(m) if m else 0.0,
            "share_distinct": sum(1 for c in counts.values() if c >= 2) / len(counts) if counts else 0.0}


def verbatim(onsets, pitches, velocities, n: int = VERBATIM_NOTES, step: float = GAP_STEP_S) -> dict:
    """Verbatim copies: windows of n consecutive notes (by onset, then pitch) whose pitches, onset
    gaps (rounded to `step`) and velocities all equal another window's; `share` is the share of
    windows that are such copies (0 with no window)."""
    t, p, v = ordered(onsets, pitches, velocities)
    windows = len(t) - n + 1
    if windows <= 0:
        return {"windows": 0, "copies": 0, "share": 0.0}
    gaps = np.rint(np.diff(np.rint(t * 1000.0)) / (step * 1000.0)).astype(np.int64)  # via whole ms
    keys = [(p[i:i + n].tobytes(), gaps[i:i + n - 1].tobytes(), v[i:i + n].tobytes()) for i in range(windows)]
    counts = Counter(keys)
    copies = sum(c for c in counts.values() if c >= 2)
    return {"windows": windows, "copies": copies, "share": copies / windows}


def measure(name: str, onsets, pitches, velocities, seconds: float | None = 60.0, ks=KS,
            window: float = CLUSTER_S) -> dict:
    """Every figure of one performance (its first `seconds`)."""
    t, p, v = first_seconds(onsets, pitches, velocities, seconds)
    line = top_line(t, p, window)
    out = {"name": name, "notes": int(len(t)), "top_notes": int(len(line))}
    for k in ks:
        out[f"k{k}"] = recurrence(line, k)
    out["verbatim"] = verbatim(t, p, v)
    return out


def summary(values: list[float]) -> dict:
    """Mean, median and sd (sample) of per-performance figures."""
    if not values:
        return {"mean": math.nan, "median": math.nan, "sd": math.nan, "min": math.nan, "max": math.nan}
    return {"mean": statistics.mean(values), "median": statistics.median(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "min": min(values), "max": max(values)}


def aggregate(rows: list[dict], ks=KS) -> dict:
    out = {"performances": len(rows), "notes": sum(r["notes"] for r in rows)}
    for k in ks:
        out[f"k{k}"] = {d: summary([r[f"k{k}"][f"share_{d}"] for r in rows]) for d in ("windows", "distinct")}
    out["verbatim"] = summary([r["verbatim"]["share"] for r in rows])
    windows = sum(r["verbatim"]["windows"] for r in rows)
    out["verbatim"]["pooled"] = sum(r["verbatim"]["copies"] for r in rows) / windows if windows else 0.0
    return out


# ---------------------------------------------------------------------------------------------
# Reading, the reference (MAESTRO after the codec) and the generated performances
# ---------------------------------------------------------------------------------------------

def notes_of(midi_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets (seconds), pitches and velocities of every non-drum note, by pretty_midi."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midi_path))
    notes = [(n.start, n.pitch, n.velocity) for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    a = np.asarray(notes, dtype=float).reshape(-1, 3)
    return a[:, 0], a[:, 1].astype(np.int64), a[:, 2].astype(np.int64)


def validation_files(csv_path: str | os.PathLike, max_files: int = 0) -> list[Path]:
    """The MAESTRO validation MIDI files (sorted; every k-th one when `max_files`, as realism.py)."""
    with open(csv_path, newline="") as f:
        rows = sorted(r["midi_filename"] for r in csv.DictReader(f) if r["split"] == "validation")
    if max_files:
        rows = rows[::max(1, len(rows) // max_files)][:max_files]
    return [Path(csv_path).resolve().parent / r for r in rows]


def round_trip(binary: str, path: Path, out: Path) -> Path:
    """The file as the codec hands it to the model: `pianoforte encode`, then `pianoforte decode`."""
    text = subprocess.run([binary, "encode", str(path)], check=True, capture_output=True, text=True).stdout
    subprocess.run([binary, "decode", "-", "-o", str(out)], input=text, check=True, capture_output=True, text=True)
    return out


def measure_files(files: list[Path], seconds: float, names: list[str] | None = None,
                  window: float = CLUSTER_S) -> list[dict]:
    return [measure(name, *notes_of(f), seconds=seconds, window=window)
            for f, name in zip(files, names or [f.name for f in files], strict=True)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "models" / "pianoforte-gru.onnx"),
                   help="an ONNX model ('' = the CLI's built-in one; default: %(default)s)")
    p.add_argument("--bin", default=os.environ.get("PIANOFORTE_BIN", str(ROOT / "target" / "release" / "pianoforte")),
                   help="the pianoforte CLI (default: $PIANOFORTE_BIN, else target/release/pianoforte)")
    p.add_argument("--seconds", type=float, default=60.0, help="measure (and generate) this many seconds")
    p.add_argument("--count", type=int, default=20, help="generated performances per timing (0: none)")
    p.add_argument("--seed", type=int, default=1, help="first seed (then +1, +2, ...)")
    p.add_argument("--bpm", type=float, default=100.0, help="also generate at this tempo (0: free time only)")
    p.add_argument("--cluster-ms", type=float, default=CLUSTER_S * 1000,
                   help="onsets less than this after a cluster's first onset join it (default %(default)g)")
    p.add_argument("--csv", default=str(MAESTRO_CSV), help="MAESTRO CSV; its validation rows are the reference")
    p.add_argument("--max-files", type=int, default=0, help="reference files (0 = all 137; -1 = none)")
    p.add_argument("--workdir", default=None, help="keep the round-tripped and generated files here")
    p.add_argument("--json", default=None, metavar="OUT.json", help="write every figure here")
    p.add_argument("--generate-args", default="", help="more arguments for `pianoforte generate`, e.g. '--memory 0.5'")
    a = p.parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [sys.argv[0], *argv])])
    print(f"$ {command}\n", flush=True)
    started = time.monotonic()
    window = a.cluster_ms / 1000.0
    result = {"command": command, "model": a.model or "built-in", "bin": a.bin, "seconds": a.seconds,
              "count": a.count, "seed": a.seed, "bpm": a.bpm, "csv": a.csv,
              "definitions": {"cluster_s": window, "ks": list(KS), "verbatim_notes": VERBATIM_NOTES,
                              "gap_step_s": GAP_STEP_S, "headline": "share_windows"},
              "goals": GOALS, "sources": {}, "timings_s": {}}
    with tempfile.TemporaryDirectory(prefix="pianoforte-motifs-") as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if a.max_files >= 0:
            t0 = time.monotonic()
            files = validation_files(a.csv, a.max_files)
            base = Path(a.csv).resolve().parent
            trips = [round_trip(a.bin, f, work / f"maestro-{k}.mid") for k, f in enumerate(files)]
            rows = measure_files(trips, a.seconds, [str(f.relative_to(base)) for f in files], window)
            result["sources"]["maestro"] = {**aggregate(rows), "per_file": rows}
            result["timings_s"]["maestro"] = time.monotonic() - t0
        timings = [("free", None)] + ([("bpm", a.bpm)] if a.bpm else [])
        for key, bpm in timings if a.count > 0 else []:
            t0 = time.monotonic()
            files = generate(a.bin, a.model or None, work / f"{key}.mid", a.count, a.seconds, a.seed, bpm, Meter(4, 4),
                             shlex.split(a.generate_args))
            rows = measure_files(files, a.seconds, window=window)
            agg = aggregate(rows)
            result["sources"][key] = {**agg, "goals_met": goals_met(agg), "per_file": rows}
            result["timings_s"][key] = time.monotonic() - t0
    result["elapsed_s"] = time.monotonic() - started
    print_table(result)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(no_nan(result), f, indent=1)
        print(f"\nwrote {a.json}")


def _f(s: dict, pct: bool = False) -> str:
    if math.isnan(s["mean"]):
        return "- | - | -"
    if pct:
        return f"{s['mean'] * 100:.2f} % | {s['median'] * 100:.2f} % | {s['sd'] * 100:.2f} %"
    return f"{s['mean']:.3f} | {s['median']:.3f} | {s['sd']:.3f}"


def goals_met(s: dict) -> dict:
    """The issue's goals for a generated source: mean recurrence (headline k) and mean verbatim share."""
    return {"recurrence": s[f"k{KS[0]}"]["windows"]["mean"] >= GOALS["recurrence"],
            "verbatim": s["verbatim"]["mean"] <= GOALS["verbatim"]}


def goals_text(met: dict | None) -> str:
    if met is None:
        return ""
    return "all met" if all(met.values()) else "missed: " + ", ".join(k for k, v in met.items() if not v)


def print_table(r: dict) -> None:
    labels = {"maestro": "MAESTRO validation, codec round trip", "free": "generated, free time",
              "bpm": f"generated, --bpm {r['bpm']:g}"}
    k0, k1 = KS
    print(f"First {r['seconds']:g} s of each performance, clusters of {r['definitions']['cluster_s'] * 1000:g} ms; "
          f"generated: {r['count']} seeds from {r['seed']}, "
          f"model {r['model']}. Recurrence = share of motif windows whose motif occurs twice or more "
          f"(goal >= {GOALS['recurrence']:.2f} at k = {k0}); verbatim = share of {VERBATIM_NOTES}-note windows "
          f"copied exactly (goal <= {GOALS['verbatim'] * 100:.0f} %).\n")
    print(f"| source | performances | notes | k={k0} mean | median | sd | k={k1} mean | median | sd "
          f"| verbatim mean | median | sd | verbatim max | goals |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, s in r["sources"].items():
        print(f"| {labels[key]} | {s['performances']} | {s['notes']} | {_f(s[f'k{k0}']['windows'])} "
              f"| {_f(s[f'k{k1}']['windows'])} | {_f(s['verbatim'], pct=True)} "
              f"| {s['verbatim']['max'] * 100:.2f} % | {goals_text(s.get('goals_met'))} |")
    print("\nThe other reading, share of distinct motifs occurring twice or more (not the headline):\n")
    print(f"| source | k={k0} mean | median | sd | k={k1} mean | median | sd |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, s in r["sources"].items():
        print(f"| {labels[key]} | {_f(s[f'k{k0}']['distinct'])} | {_f(s[f'k{k1}']['distinct'])} |")
    times = ", ".join(f"{k} {v:.0f} s" for k, v in r["timings_s"].items())
    print(f"\n{r['elapsed_s']:.0f} s ({times})")


if __name__ == "__main__":
    main()
