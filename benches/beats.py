#!/usr/bin/env python3
"""In the song's time (issue 19): do `pianoforte generate --bpm` performances follow the beat the
way real pianists do? Measured exactly as the issue defines it.

Run from the repository root, after `cargo build --release --bin pianoforte`:

    ~/.cache/pianoforte/venv/bin/python benches/beats.py --json beats.json

Onset figures (every note's onset counts, chords included):
- an onset's position in beats is interpolated between the surrounding beats (onsets before the
  first or after the last beat are left out); its phase is the fractional part;
- *on grid*: within 0.06 beat of 0, 1/4, 1/3, 1/2, 2/3, 3/4 of a beat (or 1);
- *on beat*: within 0.08 beat of a beat (both inclusive, give or take 0.001 beat for the ticks of a
  MIDI file);
- phase histogram: 24 bins per beat, normalised; *overlap* = histogram intersection (the sum of the
  bin-wise minimum) with the pooled histogram of real pianists against their annotated beats;
- downbeat loudness: mean velocity of the onsets within 0.08 beat of a downbeat against the mean
  velocity of all the other onsets (and their ratio; the goal is >= 1).

Reference: the ASAP performances of `--split` (default validation) in `--asap` against their own
annotations (`b`, `bR` beats and `db` downbeats): on grid and on beat as mean ± sd over
performances, the pooled phase histogram (the reference for the overlap) and the downbeat loudness.

Generated: for each configuration of `--configs` (`BPM:METER`, comma-separated; default 72, 100, 132
and 160 BPM in 4/4 and 100 BPM in 3/4), `--count` performances of `--seconds` with seeds `--seed`,
`--seed`+1, ... at the model card's defaults. The beats are the steady grid of the file's own
tempo and time signature (its first ones) from time 0; the beat is what a pianist counts, as ASAP
annotates it and the engine's beat clock counts it: the denominator's note, three of them in
compound meters (6/8, 9/8, 12/8). Free time (the same seeds without `--bpm`) is laid against every
grid as the baseline (chance level: about 0.65 on grid and 0.16 on beat).

`--phase-prior --split train` prints the pianists' onset density over 48ths of the beat that the
engine's Tightness pulls towards (`PIANISTS_PHASE` in src/engine/tightness.rs).

Prints the command line, then a table; `--json OUT.json` writes every figure (per file as well).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ASAP = ROOT.parent / "shared" / "data" / "asap" / "asap-train-validation.csv"
DEFAULT_CONFIGS = "72:4/4,100:4/4,132:4/4,160:4/4,100:3/4"

GRID = (0.0, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 3 / 4, 1.0)  # positions within the beat
GRID_TOL = 0.06  # beats
BEAT_TOL = 0.08  # beats
PHASE_BINS = 24  # per beat
# Tolerances are inclusive, with this slack (beats): a MIDI file rounds times to ticks, up to half a
# tick = 1/1920 quarter note at 960 ticks per quarter, whatever the tempo. Without it, the engine's
# 10 ms steps that lie exactly on an edge (0.08 beat = 3 steps at 160 BPM) would count in free time
# and not in the same performance written with --bpm.
SLACK = 1e-3
# The goals for `generate --bpm`.
GOALS = {"on_grid": 0.80, "on_beat": 0.33, "overlap": 0.85, "downbeat_ratio": 1.0}


# ---------------------------------------------------------------------------------------------
# Measuring (pure functions, unit tested in tests/python/test_beat_measure.py)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Meter:
    numerator: int
    denominator: int

    @staticmethod
    def parse(text: str) -> Meter:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ValueError(f"`{text}` is not a meter such as 4/4, 3/4 or 6/8")
        n, d = int(m.group(1)), int(m.group(2))
        if not (1 <= n <= 32 and 1 <= d <= 32 and d & (d - 1) == 0):
            raise ValueError(f"`{text}` is not a meter such as 4/4, 3/4 or 6/8")
        return Meter(n, d)

    @property
    def compound(self) -> bool:
        """6/8, 9/8, 12/8 (and /16): beats of three notes (as the engine's beat clock)."""
        return self.denominator >= 8 and self.numerator > 3 and self.numerator % 3 == 0

    @property
    def beats_per_bar(self) -> int:
        return self.numerator // 3 if self.compound else self.numerator

    @property
    def beat_quarters(self) -> float:
        """The length of a beat in quarter notes."""
        return 4.0 / self.denominator * (3 if self.compound else 1)

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass
class Beats:
    """Beat times (seconds, strictly increasing) and which of them are downbeats."""
    times: np.ndarray
    downbeat: np.ndarray  # bool, one per beat


def steady_beats(bpm: float, meter: Meter, until: float, start: float = 0.0) -> Beats:
    """The steady grid of `bpm` quarter notes per minute in `meter` from `start` (bar 1's downbeat)
    to at least `until` seconds."""
    period = 60.0 / bpm * meter.beat_quarters
    n = max(2, math.ceil((until - start) / period) + 2)
    idx = np.arange(n)
    return Beats(start + idx * period, idx % meter.beats_per_bar == 0)


def read_annotations(path: str | os.PathLike) -> Beats:
    """An ASAP annotation file: lines `time<TAB>time<TAB>label`, the label `b`, `bR` or `db`
    (downbeat), optionally followed by `,timesig,key`. Other labels are skipped; a beat at the
    same time as the one before is dropped (a downbeat wins)."""
    times: list[float] = []
    down: list[bool] = []
    with open(path) as f:
        for line in f:
            parts = line.strip().split("\t")
            if len(parts) < 3:
                continue
            kind = parts[2].split(",")[0].strip()
            if kind not in ("b", "bR", "db"):
                continue
            t = float(parts[0])
            if times and t <= times[-1]:
                if t == times[-1]:
                    down[-1] = down[-1] or kind == "db"
                    continue
                raise ValueError(f"{path}: beat at {t} s before the one at {times[-1]} s")
            times.append(t)
            down.append(kind == "db")
    return Beats(np.asarray(times, dtype=float), np.asarray(down, dtype=bool))


def beat_positions(onsets, beat_times) -> tuple[np.ndarray, np.ndarray]:
    """Positions in beats (beat index + fraction, linearly interpolated between the surrounding
    beats) of the onsets between the first and the last beat, and the mask of those onsets."""
    onsets = np.asarray(onsets, dtype=float)
    beats = np.asarray(beat_times, dtype=float)
    if len(beats) < 2:
        return np.zeros(0), np.zeros(len(onsets), dtype=bool)
    inside = (onsets >= beats[0]) & (onsets <= beats[-1])
    t = onsets[inside]
    i = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 2)
    return i + (t - beats[i]) / (beats[i + 1] - beats[i]), inside


def phases(positions) -> np.ndarray:
    """Position within the beat, in [0, 1)."""
    p = np.asarray(positions, dtype=float)
    return p - np.floor(p)


def grid_distance(phase) -> np.ndarray:
    """Distance (beats) to the nearest of 0, 1/4, 1/3, 1/2, 2/3, 3/4, 1."""
    ph = np.asarray(phase, dtype=float)[..., None]
    return np.min(np.abs(ph - np.asarray(GRID)), axis=-1)


def beat_distance(phase) -> np.ndarray:
    """Distance (beats) to the nearest beat."""
    ph = np.asarray(phase, dtype=float)
    return np.minimum(ph, 1.0 - ph)


def on_grid(phase, tol: float = GRID_TOL) -> float:
    """Fraction of onsets within `tol` beat of a 1/4 or 1/3 subdivision of the beat."""
    ph = np.asarray(phase, dtype=float)
    return float(np.mean(grid_distance(ph) <= tol + SLACK)) if ph.size else math.nan


def on_beat(phase, tol: float = BEAT_TOL) -> float:
    """Fraction of onsets within `tol` beat of a beat."""
    ph = np.asarray(phase, dtype=float)
    return float(np.mean(beat_distance(ph) <= tol + SLACK)) if ph.size else math.nan


def phase_counts(phase, bins: int = PHASE_BINS) -> np.ndarray:
    """Onsets per phase bin (bin k = [k/bins, (k+1)/bins) of a beat)."""
    ph = np.asarray(phase, dtype=float)
    return np.bincount(np.minimum((ph * bins).astype(int), bins - 1), minlength=bins).astype(float)


def normalise(counts) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    return c / total if total > 0 else c


def overlap(a, b) -> float:
    """Histogram intersection of two histograms (each normalised first): 1 = the same, 0 = disjoint."""
    return float(np.minimum(normalise(a), normalise(b)).sum())


def downbeat_mask(positions, downbeat) -> np.ndarray:
    """Which onsets (positions in beats) lie within 0.08 beat of a downbeat (`downbeat`: one flag per beat)."""
    pos = np.asarray(positions, dtype=float)
    down = np.asarray(downbeat, dtype=bool)
    if not len(down):
        return np.zeros(len(pos), dtype=bool)
    nearest = np.clip(np.rint(pos).astype(int), 0, len(down) - 1)
    return (np.abs(pos - np.rint(pos)) <= BEAT_TOL + SLACK) & down[nearest]


def loudness(down_velocities, other_velocities) -> dict:
    d = np.asarray(down_velocities, dtype=float)
    o = np.asarray(other_velocities, dtype=float)
    md = float(d.mean()) if d.size else math.nan
    mo = float(o.mean()) if o.size else math.nan
    return {"downbeat_velocity": md, "other_velocity": mo,
            "ratio": md / mo if d.size and o.size and mo > 0 else math.nan,
            "downbeat_onsets": int(d.size), "other_onsets": int(o.size)}


def downbeat_loudness(positions, velocities, downbeat) -> dict:
    """Mean velocity of the onsets within 0.08 beat of a downbeat and of all the others, and the ratio.
    `positions` in beats (as `beat_positions`), `downbeat` one flag per beat."""
    mask = downbeat_mask(positions, downbeat)
    vel = np.asarray(velocities, dtype=float)
    return loudness(vel[mask], vel[~mask])


@dataclass
class Measured:
    """One performance against its beats."""
    name: str
    positions: np.ndarray
    velocities: np.ndarray
    downbeat: np.ndarray

    def summary(self) -> dict:
        ph = phases(self.positions)
        return {"file": self.name, "onsets": int(len(ph)), "on_grid": on_grid(ph), "on_beat": on_beat(ph),
                **downbeat_loudness(self.positions, self.velocities, self.downbeat)}


def measure(name: str, onsets, velocities, beats: Beats) -> Measured:
    pos, inside = beat_positions(onsets, beats.times)
    return Measured(name, pos, np.asarray(velocities, dtype=float)[inside], beats.downbeat)


def notes_of(midi_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Onsets (seconds, through the file's tempo map) and velocities of every note, by pretty_midi."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(midi_path))
    notes = sorted((n.start, n.velocity) for inst in pm.instruments if not inst.is_drum for n in inst.notes)
    return np.asarray([n[0] for n in notes], dtype=float), np.asarray([n[1] for n in notes], dtype=float)


def file_grid(midi_path: str | os.PathLike) -> tuple[float | None, Meter | None, list[str]]:
    """The tempo (quarter notes per minute) and meter a file carries (its first ones), and remarks
    (several tempos or meters), by mido; None where the file carries none."""
    import mido

    tempos, meters = [], []
    mid = mido.MidiFile(str(midi_path))
    for track in mid.tracks:
        for msg in track:
            if msg.type == "set_tempo":
                tempos.append(mido.tempo2bpm(msg.tempo))
            elif msg.type == "time_signature":
                meters.append(Meter(msg.numerator, msg.denominator))
    remarks = []
    if len(set(tempos)) > 1:
        remarks.append(f"{len(set(tempos))} tempos")
    if len(set(meters)) > 1:
        remarks.append(f"{len(set(meters))} meters")
    return (tempos[0] if tempos else None), (meters[0] if meters else None), remarks


def aggregate(rows: list[Measured], reference_hist=None) -> dict:
    """Mean ± sd over performances, pooled figures, the pooled histogram and its overlap."""
    sums = [r.summary() for r in rows]
    all_ph = phases(np.concatenate([r.positions for r in rows])) if rows else np.zeros(0)
    counts = sum((phase_counts(phases(r.positions)) for r in rows), np.zeros(PHASE_BINS))
    masks = [downbeat_mask(r.positions, r.downbeat) for r in rows]
    loud = loudness(np.concatenate([r.velocities[m] for r, m in zip(rows, masks, strict=True)] or [np.zeros(0)]),
                    np.concatenate([r.velocities[~m] for r, m in zip(rows, masks, strict=True)] or [np.zeros(0)]))
    ratios = [s["ratio"] for s in sums if not math.isnan(s["ratio"])]

    def mean_sd(key):
        v = [s[key] for s in sums if not math.isnan(s[key])]
        return (statistics.mean(v) if v else math.nan, statistics.stdev(v) if len(v) > 1 else 0.0)

    g, gs = mean_sd("on_grid")
    b, bs = mean_sd("on_beat")
    out = {"performances": len(rows), "onsets": int(len(all_ph)),
           "on_grid_mean": g, "on_grid_sd": gs, "on_beat_mean": b, "on_beat_sd": bs,
           "on_grid_pooled": on_grid(all_ph), "on_beat_pooled": on_beat(all_ph),
           "histogram": normalise(counts).tolist(),
           "downbeat": {**loud, "louder_in": sum(r >= 1.0 for r in ratios), "of": len(ratios)},
           "per_file": sums}
    if reference_hist is not None:
        out["overlap"] = overlap(counts, reference_hist)
        per = [overlap(phase_counts(phases(r.positions)), reference_hist) for r in rows if len(r.positions)]
        out["overlap_per_file_mean"] = statistics.mean(per) if per else math.nan
    return out


# ---------------------------------------------------------------------------------------------
# The reference (ASAP) and the generated performances
# ---------------------------------------------------------------------------------------------

def asap_performances(csv_path: str | os.PathLike, split: str = "validation", max_files: int = 0):
    """(performance MIDI, annotation file) pairs of one split of an ASAP-style CSV."""
    folder = Path(csv_path).resolve().parent
    with open(csv_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if not split or r.get("split", "") == split]
    pairs = [(folder / r["midi_performance"], folder / r["performance_annotations"]) for r in rows]
    return pairs[:max_files] if max_files > 0 else pairs


def measure_asap(csv_path, split="validation", max_files=0) -> tuple[list[Measured], list[str]]:
    rows, problems = [], []
    for midi, ann in asap_performances(csv_path, split, max_files):
        try:
            beats = read_annotations(ann)
            onsets, vel = notes_of(midi)
        except (OSError, ValueError) as e:
            problems.append(f"{midi}: {e}")
            continue
        rel = os.path.relpath(midi, Path(csv_path).resolve().parent)
        rows.append(measure(rel, onsets, vel, beats))
    return rows, problems


def generate(binary: str, model: str | None, out: Path, count: int, seconds: float, seed: int,
             bpm: float | None, meter: Meter | None, extra: list[str] | None = None) -> list[Path]:
    cmd = [binary, "generate", "--seconds", f"{seconds:g}", "--seed", str(seed), "--count", str(count),
           "-o", str(out), *(extra or [])]
    if bpm is not None:
        cmd += ["--bpm", f"{bpm:g}", "--meter", str(meter)]
    if model:
        cmd += ["--model", model]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {shlex.join(cmd)}\n{done.stderr}")
    files = [out] if count == 1 else [out.with_name(f"{out.stem}-{k}{out.suffix}") for k in range(1, count + 1)]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        sys.exit(f"{shlex.join(cmd)} did not write {', '.join(missing)}")
    return files


def parse_configs(text: str) -> list[tuple[float, Meter]]:
    """`72:4/4,100:3/4` (a meter-less `100` is 4/4)."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        bpm, _, meter = item.partition(":")
        out.append((float(bpm), Meter.parse(meter or "4/4")))
    return out


def fmt_pct(mean: float, sd: float | None = None) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean * 100:.0f} %" + (f" ± {sd * 100:.0f}" if sd is not None else "")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="an ONNX model (default: the CLI's built-in one)")
    p.add_argument("--bin", default=os.environ.get("PIANOFORTE_BIN", str(ROOT / "target" / "release" / "pianoforte")),
                   help="the pianoforte CLI (default: $PIANOFORTE_BIN, else target/release/pianoforte)")
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"BPM:METER,... (default {DEFAULT_CONFIGS})")
    p.add_argument("--count", type=int, default=20, help="performances per configuration")
    p.add_argument("--seconds", type=float, default=60.0, help="seconds per performance")
    p.add_argument("--seed", type=int, default=1, help="first seed (then +1, +2, ...)")
    p.add_argument("--generate-args", default="",
                   help="more arguments for `pianoforte generate`, e.g. '--tightness 0' (the song's runs only)")
    p.add_argument("--no-free-time", action="store_true", help="leave out the free-time baseline")
    p.add_argument("--reference-only", action="store_true", help="only the real pianists (ASAP)")
    p.add_argument("--phase-prior", action="store_true",
                   help="print the pianists' onset density over 48ths of the beat for --split (the engine's "
                        "PIANISTS_PHASE, src/engine/tightness.rs, is that of --split train) and stop")
    p.add_argument("--asap", default=str(DEFAULT_ASAP), help="an ASAP-style CSV (default: %(default)s)")
    p.add_argument("--split", default="validation", help="the CSV's split to use ('' = all)")
    p.add_argument("--max-files", type=int, default=0, help="at most this many ASAP performances (0 = all)")
    p.add_argument("--workdir", default=None, help="keep the generated files here (default: a temporary folder)")
    p.add_argument("--json", default=None, metavar="OUT.json", help="write every figure here")
    a = p.parse_args(argv)
    command = shlex.join(["python", *(sys.argv if argv is None else [sys.argv[0], *argv])])
    print(f"$ {command}\n", flush=True)
    started = time.monotonic()

    ref_rows, problems = measure_asap(a.asap, a.split, a.max_files)
    if not ref_rows:
        sys.exit(f"no ASAP performance measured from {a.asap} (split {a.split!r})")
    if a.phase_prior:
        print(phase_prior(ref_rows))
        return
    reference = aggregate(ref_rows)
    ref_hist = np.asarray(reference["histogram"])
    result = {"command": command, "model": a.model or "built-in", "bin": a.bin, "count": a.count,
              "seconds": a.seconds, "seed": a.seed, "asap": a.asap, "split": a.split,
              "tolerances": {"grid": GRID_TOL, "beat": BEAT_TOL, "phase_bins": PHASE_BINS}, "goals": GOALS,
              "reference": reference, "reference_problems": problems, "configs": [], "remarks": []}

    configs = [] if a.reference_only else parse_configs(a.configs)
    with tempfile.TemporaryDirectory(prefix="pianoforte-beats-") as tmp:
        work = Path(a.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        free_files: list[Path] = []
        if configs and not a.no_free_time:
            free_files = generate(a.bin, a.model, work / "free.mid", a.count, a.seconds, a.seed, None, None)
        for bpm, meter in configs:
            name = f"{bpm:g}bpm-{meter.numerator}-{meter.denominator}"
            files = generate(a.bin, a.model, work / f"{name}.mid", a.count, a.seconds, a.seed, bpm, meter,
                             shlex.split(a.generate_args))
            song = []
            for f in files:
                f_bpm, f_meter, remarks = file_grid(f)
                if f_bpm is None or abs(f_bpm - bpm) > 1e-3 * bpm or f_meter != meter:
                    remarks.append(f"carries {f_bpm} BPM {f_meter}, asked {bpm:g} BPM {meter}")
                result["remarks"] += [f"{f.name}: {r}" for r in remarks]
                onsets, vel = notes_of(f)
                grid = steady_beats(f_bpm or bpm, f_meter or meter, onsets.max(initial=0.0) + 1.0)
                song.append(measure(f.name, onsets, vel, grid))
            free = []
            for f in free_files:
                onsets, vel = notes_of(f)
                free.append(measure(f.name, onsets, vel, steady_beats(bpm, meter, onsets.max(initial=0.0) + 1.0)))
            entry = {"bpm": bpm, "meter": str(meter), "song": aggregate(song, ref_hist)}
            if free:
                entry["free_time"] = aggregate(free, ref_hist)
            s = entry["song"]
            entry["goals_met"] = {"on_grid": s["on_grid_mean"] >= GOALS["on_grid"],
                                  "on_beat": s["on_beat_mean"] >= GOALS["on_beat"],
                                  "overlap": s["overlap"] >= GOALS["overlap"],
                                  "downbeat_ratio": s["downbeat"]["ratio"] >= GOALS["downbeat_ratio"]}
            result["configs"].append(entry)
    result["elapsed_s"] = time.monotonic() - started

    print_table(result)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(no_nan(result), f, indent=1)
        print(f"\nwrote {a.json}")


def phase_prior(rows: list[Measured], bins: int = 48) -> str:
    """The pooled onset density over `bins` parts of the beat (mean 1), as a Rust array body."""
    density = normalise(phase_counts(np.concatenate([phases(r.positions) for r in rows]), bins)) * bins
    lines = [", ".join(f"{x:.2f}" for x in density[i:i + 12]) + ", //" for i in range(0, bins, 12)]
    return "\n".join(lines)


def no_nan(x):
    """NaN (a figure with nothing to measure) as null, for strict JSON readers."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return x


def print_table(r: dict) -> None:
    ref = r["reference"]
    print(f"Real pianists: {ref['performances']} ASAP {r['split'] or 'all'} performances against their annotated "
          f"beats ({ref['onsets']} onsets): on grid {fmt_pct(ref['on_grid_mean'], ref['on_grid_sd'])}, "
          f"on beat {fmt_pct(ref['on_beat_mean'], ref['on_beat_sd'])} (mean ± sd over performances; pooled "
          f"{fmt_pct(ref['on_grid_pooled'])} and {fmt_pct(ref['on_beat_pooled'])}); downbeat velocity "
          f"{ref['downbeat']['downbeat_velocity']:.1f} vs {ref['downbeat']['other_velocity']:.1f} "
          f"(ratio {ref['downbeat']['ratio']:.3f})")
    if r["reference_problems"]:
        print(f"  ({len(r['reference_problems'])} performances left out: see the JSON)")
    hist = ref["histogram"]
    print("  phase histogram (24 bins per beat, %): " + " ".join(f"{h * 100:.1f}" for h in hist))
    if not r["configs"]:
        print(f"\n{r['elapsed_s']:.0f} s")
        return
    print(f"\nGenerated: {r['count']} x {r['seconds']:g} s per configuration, seeds {r['seed']}.."
          f"{r['seed'] + r['count'] - 1}, model {r['model']}. Goals: on grid >= {GOALS['on_grid']:.2f}, on beat >= "
          f"{GOALS['on_beat']:.2f}, overlap >= {GOALS['overlap']:.2f}, downbeats at least as loud (ratio >= 1).\n")
    print("| grid | timing | onsets | on grid (mean ± sd) | on beat (mean ± sd) | phase overlap "
          "| downbeat / other velocity | ratio | goals |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for c in r["configs"]:
        for timing, key in (("--bpm", "song"), ("free time", "free_time")):
            if key not in c:
                continue
            s = c[key]
            db = s["downbeat"]
            goals = ("all met" if all(c["goals_met"].values()) else
                     "missed: " + ", ".join(k for k, v in c["goals_met"].items() if not v)) if key == "song" else ""
            print(f"| {c['bpm']:g} BPM {c['meter']} | {timing} | {s['onsets']} "
                  f"| {fmt_pct(s['on_grid_mean'], s['on_grid_sd'])} | {fmt_pct(s['on_beat_mean'], s['on_beat_sd'])} "
                  f"| {s['overlap']:.2f} | {db['downbeat_velocity']:.1f} / {db['other_velocity']:.1f} "
                  f"| {db['ratio']:.3f} | {goals} |")
    print(f"| real pianists (ASAP) | annotated | {ref['onsets']} | {fmt_pct(ref['on_grid_mean'], ref['on_grid_sd'])} "
          f"| {fmt_pct(ref['on_beat_mean'], ref['on_beat_sd'])} | 1.00 "
          f"| {ref['downbeat']['downbeat_velocity']:.1f} / {ref['downbeat']['other_velocity']:.1f} "
          f"| {ref['downbeat']['ratio']:.3f} | |")
    for remark in r["remarks"][:10]:
        print(f"  remark: {remark}")
    print(f"\n{r['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
