#!/usr/bin/env python3
"""How much do generated performances look like MAESTRO? Statistics of `--count` generated pieces
against the MAESTRO v2.0.0 validation performances, read the same way (pretty_midi).

Run from the repository root, after `cargo build --release` and `cargo xtask onnxruntime`:

    ~/.cache/pianoforte/venv/bin/python benches/realism.py --model models/pianoforte-gru.onnx

Per piece: notes per second, velocity mean and spread, pitch mean and span (5th-95th
percentile), polyphony (keys down, time-weighted, while any is), median note length, median
inter-onset interval, share of onsets in chords (another onset within 30 ms), fraction of time
the sustain pedal is down, pedal presses per minute. The table gives each statistic's mean ± sd
over pieces for both, and the generated mean's distance from MAESTRO's in MAESTRO standard
deviations. A second table gives the overlap (sum of min(p, q), 1 = identical) of the pooled
distributions of velocity, pitch, inter-onset interval (s), note length (s) and polyphony at
onsets (keys down at each distinct onset, the onset's own notes included). A third table gives
the share of onsets off a strict tempo grid: per piece, over its first `--grid-seconds`, the
distinct onsets (rounded to 1 ms) are fitted with the strict grid (16th notes of a constant
tempo, 40-240 BPM, any phase) that puts the most onsets within 20 ms of a grid line; an onset
further than 20 ms from its nearest line is off the grid. Two controls show the statistic
discriminates: the generated onsets snapped to their own best grid (must be 0), and uniformly
random onsets of the same count and span (chance level). `--png` draws the pooled distributions
and the per-piece off-grid shares. Generated files are also checked for stuck notes
(benches/density_control.py's check).

The MAESTRO reference goes through the codec first (`pianoforte encode` then `pianoforte decode`,
`--raw-reference` to skip): raw MIDI is not quantised to 10 ms and 32 velocity bins, which would
distort the overlaps. Also reported (the goals of issue 10): the share of notes held >= 4.9 s, key
clarity (per piece, the mean over its 8 s windows holding >= 8 notes of the best correlation of the
window's onset pitch-class counts with the 24 rotated Krumhansl-Kessler key profiles) and, with
`--key`, the share of onsets in that key's scale (natural or harmonic minor, or major).
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

import numpy as np
import pretty_midi

GRID_TOL = 0.020  # seconds from the nearest grid line before an onset counts as off the grid
GRID_BPM = (40.0, 240.0)  # tempo range searched; the grid lines are 16th notes (a quarter of a beat)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.join(ROOT, "models")]
from density_control import GUARD_S, stuck_notes  # noqa: E402
from pianoforte_train import vocab as V  # noqa: E402

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
    ("long_notes", "notes held >= 4.9 s (share)", "{:.4f}"),
    ("key_clarity", "key clarity (8 s windows)", "{:.3f}"),
]

# Krumhansl-Kessler key profiles, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]


def key_clarity(starts: np.ndarray, pitch: np.ndarray, window: float = 8.0, min_notes: int = 8) -> float:
    """Mean over the piece's 8 s windows (>= min_notes onsets) of the best key-profile correlation."""
    if len(starts) == 0:
        return math.nan
    profiles = np.stack([np.roll(p, t) for p in (KK_MAJOR, KK_MINOR) for t in range(12)])
    profiles = profiles - profiles.mean(1, keepdims=True)
    values = []
    for w0 in np.arange(0.0, float(starts.max()) + 1e-9, window):
        sel = (starts >= w0) & (starts < w0 + window)
        if sel.sum() < min_notes:
            continue
        h = np.bincount(pitch[sel].astype(int) % 12, minlength=12).astype(np.float64)
        h -= h.mean()
        denom = np.sqrt((h**2).sum() * (profiles**2).sum(1))
        if h.any():
            values.append(float(((profiles @ h) / denom).max()))
    return float(np.mean(values)) if values else math.nan


def scale_of(key: str) -> set[int]:
    """Pitch classes of a key's scale: major, or natural + harmonic minor ('D minor' -> D E F G A Bb C C#)."""
    note, mode = key.split()
    names = [n.upper() for n in PITCH_NAMES]
    alias = {"DB": "C#", "D#": "EB", "GB": "F#", "G#": "AB", "A#": "BB"}
    tonic = names.index(alias.get(note.upper(), note.upper()))
    steps = [0, 2, 4, 5, 7, 9, 11] if mode.lower() == "major" else [0, 2, 3, 5, 7, 8, 10, 11]
    return {(tonic + s) % 12 for s in steps}


def codec_round_trip(binary: str, path: str, out: str) -> str:
    """The file as the codec hands it to the model: encode, then decode."""
    text = subprocess.run([binary, "encode", path], check=True, capture_output=True, text=True).stdout
    with open(out + ".txt", "w") as f:
        f.write(text)
    subprocess.run([binary, "decode", out + ".txt", "-o", out], check=True, capture_output=True)
    return out


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
        "long_notes": float((dur >= 4.9).mean()) if len(dur) else math.nan,
        "key_clarity": key_clarity(starts, pitch),
    }
    # Polyphony at onsets: keys down at each distinct onset (start <= t < end), its own notes included.
    t = onsets + 0.0015
    ends = np.sort(np.array([n.end for n in notes]))
    poly = np.searchsorted(np.sort(starts), t, "right") - np.searchsorted(ends, t, "right")
    return stats, {"velocity": vel, "pitch": pitch, "ioi": ioi, "duration": dur,
                   "polyphony": poly.astype(np.float64), "onsets": onsets}


def reference_pieces(csv_path: str, max_files: int, binary: str, raw: bool = False) -> tuple[list, list]:
    """Statistics of the MAESTRO validation performances (every k-th file when `max_files`),
    after the codec's round trip unless `raw`."""
    with open(csv_path) as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "validation"]
    rows.sort(key=lambda r: r["midi_filename"])
    if max_files:
        # Every k-th file, so a subset still spans the years.
        step = max(1, len(rows) // max_files)
        rows = rows[::step][:max_files]
    base = os.path.dirname(csv_path)
    ref, ref_raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k, r in enumerate(rows):
            path = os.path.join(base, r["midi_filename"])
            if not raw:
                path = codec_round_trip(binary, path, os.path.join(tmp, f"ref-{k}.mid"))
            s, raw_values = piece_stats(path)
            ref.append(s)
            ref_raw.append(raw_values)
    return ref, ref_raw


def generate_pieces(binary: str, model: str, count: int, seconds: float, seed: int, temperature, top_p,
                    density: str = "off", key: str | None = None, keep: str | None = None,
                    extra: list[str] = ()) -> tuple[list, list, list]:
    """Generate `count` pieces with `pianoforte generate`; their statistics, raw values, stuck-note problems.
    `temperature` / `top_p` None: the model card's defaults."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = keep or tmp
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, "realism.mid")
        cmd = [binary, "generate", "--model", model, "--count", str(count), "--seconds", str(seconds),
               "--seed", str(seed), "--density", density, "--threads", "1", "-o", out]
        if temperature is not None:
            cmd += ["--temperature", str(temperature)]
        if top_p is not None:
            cmd += ["--top-p", str(top_p)]
        if key:
            cmd += ["--key", key]
        subprocess.run(cmd + list(extra), check=True, capture_output=True, text=True)
        files = [out] if count == 1 else [os.path.join(folder, f"realism-{k}.mid") for k in range(1, count + 1)]
        gen, gen_raw, stuck = [], [], []
        for f in files:
            s, raw = piece_stats(f)
            gen.append(s)
            gen_raw.append(raw)
            stuck += stuck_notes(f, GUARD_S)
    return gen, gen_raw, stuck


def _grid_counts(t: np.ndarray, periods: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each grid period, the most onsets within `tol` of a grid line over all phases, and that phase.

    A window [r, r + 2 tol] in residual (t mod P) space is best placed with its left edge on a
    residual, so every residual is tried (exact, circular)."""
    best_n = np.empty(len(periods), dtype=np.int64)
    best_phase = np.empty(len(periods))
    n = len(t)
    for c in range(0, len(periods), 500):
        P = periods[c:c + 500, None]
        k = P.shape[0]
        r = np.sort(np.mod(t[None, :], P), axis=1)
        off = (np.arange(k) * 10.0)[:, None]  # rows kept apart in one sorted flat array (P < 1 s)
        flat = (np.concatenate([r, r + P], axis=1) + off).ravel()
        lo = (r + off).ravel()
        cnt = (np.searchsorted(flat, lo + 2 * tol, "right") - np.searchsorted(flat, lo, "left")).reshape(k, n)
        j = cnt.argmax(axis=1)
        best_n[c:c + k] = cnt[np.arange(k), j]
        best_phase[c:c + k] = r[np.arange(k), j] + tol
    return best_n, best_phase


def best_grid(t: np.ndarray, tol: float = GRID_TOL) -> tuple[float, float]:
    """(period, phase) of the strict 16th-note grid that puts the most onsets `t` within `tol`.

    Tempos are searched coarse to fine in log steps small enough that a grid drifts by under
    ~tol/2 (coarse) and ~1 ms (fine) over the span of `t`."""
    pmin, pmax = 15.0 / GRID_BPM[1], 15.0 / GRID_BPM[0]
    span = max(float(t.max() - t.min()), 1.0)
    coarse_step = 0.5 * tol / span
    periods = np.exp(np.arange(math.log(pmin), math.log(pmax), coarse_step))
    counts, _ = _grid_counts(t, periods, tol)
    top = periods[np.argsort(-counts, kind="stable")[:12]]
    fine_step = 0.001 / span
    fine = np.unique(np.concatenate([p * np.exp(np.arange(-coarse_step, coarse_step + fine_step, fine_step))
                                     for p in top]))
    fine = fine[(fine >= pmin) & (fine <= pmax)]
    counts, phases = _grid_counts(t, fine, tol)
    j = int(counts.argmax())
    return float(fine[j]), float(phases[j])


def grid_distance(t: np.ndarray, period: float, phase: float) -> np.ndarray:
    return np.abs(np.mod(t - phase + period / 2, period) - period / 2)


def off_grid(t: np.ndarray, tol: float = GRID_TOL) -> tuple[float, np.ndarray]:
    """Share of onsets off the best strict grid, and the onsets snapped to that grid."""
    if len(t) < 2:
        return math.nan, t
    period, phase = best_grid(t, tol)
    share = float((grid_distance(t, period, phase) > tol + 1e-9).mean())
    snapped = np.unique(np.round(phase + np.round((t - phase) / period) * period, 6))
    return share, snapped


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


def draw_png(path, dists, ref_raw, gen_raw, overlaps, grid, pooled, clip) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    for ax, (label, k, bins, logx) in zip(axes.flat, dists, strict=False):  # one axis spare
        for raws, name, colour in ((ref_raw, "MAESTRO validation", "tab:blue"), (gen_raw, "generated", "tab:orange")):
            x = clip(pooled(raws, k), bins)
            if len(x):
                ax.hist(x, bins, weights=np.full(len(x), 1.0 / len(x)), alpha=0.5, color=colour, label=name)
        if logx:
            ax.set_xscale("log")
        ax.set_title(f"{label}: overlap {overlaps[label]:.2f}")
        ax.set_ylabel("share")
        ax.legend(fontsize=8)
    ax = axes.flat[5]
    keys = ["maestro", "generated", "quantised", "random"]
    ax.boxplot([grid[k] if grid[k] else [math.nan] for k in keys], showmeans=True)
    ax.set_xticks(range(1, 5), ["MAESTRO", "generated", "generated\nsnapped", "random\nonsets"])
    ax.set_title(f"onsets off a strict tempo grid (> {GRID_TOL * 1000:.0f} ms)")
    ax.set_ylabel("share per piece")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models/pianoforte-gru.onnx"))
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/pianoforte"))
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=500)
    p.add_argument("--temperature", type=float, default=None, help="default: the model card's")
    p.add_argument("--top-p", default=None, help="a probability or 'off' (default: the model card's)")
    p.add_argument("--density", default="off")
    p.add_argument("--key", default=None,
                   help='e.g. "D minor": also report the share of onsets in its scale; "off": no key control')
    p.add_argument("--raw-reference", action="store_true", help="MAESTRO files as they are, not after the codec")
    p.add_argument("--csv", default=MAESTRO_CSV, help="MAESTRO CSV (its validation rows are the reference)")
    p.add_argument("--max-files", type=int, default=40, help="reference files (0: all 137)")
    p.add_argument("--keep", default=None, help="keep the generated files in this folder")
    p.add_argument("--grid-seconds", type=float, default=60.0,
                   help="only the onsets in each piece's first this many seconds are fitted with a grid")
    p.add_argument("--png", default=os.path.join(ROOT, "docs/realism.png"),
                   help="draw the pooled distributions here ('' for none)")
    p.add_argument("--generate-args", default="", help="more arguments for `pianoforte generate`, e.g. '--memory 0'")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    ref, ref_raw = reference_pieces(a.csv, a.max_files, a.binary, a.raw_reference)
    gen, gen_raw, stuck = generate_pieces(a.binary, a.model, a.count, a.seconds, a.seed, a.temperature, a.top_p,
                                          a.density, a.key, a.keep, shlex.split(a.generate_args))
    in_key = None
    if a.key and a.key.lower() not in ("any", "off"):
        scale = scale_of(a.key)
        pitches = np.concatenate([r["pitch"] for r in gen_raw]).astype(int)
        in_key = float(np.isin(pitches % 12, list(scale)).mean()) if len(pitches) else math.nan

    r_sum, g_sum = summarise(ref), summarise(gen)
    pooled = lambda raws, k: np.concatenate([x[k] for x in raws]) if raws else np.array([])  # noqa: E731
    # (label, raw key, bins, log x).
    dists = [
        ("velocity", "velocity", np.arange(0, 129, 4), False),
        ("inter-onset interval (s)", "ioi", np.geomspace(0.005, 10, 40), True),
        ("note length (s)", "duration", np.geomspace(0.005, 10, 40), True),
        ("polyphony (keys down at each onset)", "polyphony", np.arange(0.5, 21.5, 1), False),
        ("pitch (MIDI)", "pitch", np.arange(V.MIN_PITCH - 0.5, V.MAX_PITCH + 1.5, 1), False),
    ]
    # Polyphony past 20 keys counts in the last bin; elsewhere values outside the bins are left out.
    clip = lambda x, b: np.minimum(x, 20) if b is dists[3][2] else x  # noqa: E731
    overlaps = {label: overlap(clip(pooled(ref_raw, k), bins), clip(pooled(gen_raw, k), bins), bins)
                for label, k, bins, _ in dists}

    # Share of onsets off a strict tempo grid, per piece, over the first --grid-seconds.
    rng = np.random.default_rng(a.seed)
    grid = {"maestro": [], "generated": [], "quantised": [], "random": []}
    for raws, name in ((ref_raw, "maestro"), (gen_raw, "generated")):
        for raw in raws:
            t = raw["onsets"][raw["onsets"] < a.grid_seconds]
            if len(t) < 2:
                continue
            share, snapped = off_grid(t)
            grid[name].append(share)
            if name == "generated":
                grid["quantised"].append(off_grid(snapped)[0])
                rand = np.unique(np.round(rng.uniform(t.min(), t.max(), len(t)), 3))
                grid["random"].append(off_grid(rand)[0])
    grid_sum = {k: (statistics.mean(v) if v else math.nan, statistics.stdev(v) if len(v) > 1 else 0.0)
                for k, v in grid.items()}
    if a.png:
        draw_png(a.png, dists, ref_raw, gen_raw, overlaps, grid, pooled, clip)
    if a.json:
        print(json.dumps({"model": a.model, "reference_files": len(ref), "generated": len(gen),
                          "maestro": r_sum, "generated_stats": g_sum, "overlap": overlaps,
                          "off_grid": grid_sum, "off_grid_tolerance_s": GRID_TOL, "stuck": stuck,
                          "key": a.key, "in_key_share": in_key, "round_trip_reference": not a.raw_reference}))
        return
    print(f"model {a.model}: {a.count} x {a.seconds:g} s, temperature {a.temperature or 'card'}, "
          f"top-p {a.top_p or 'card'}, density {a.density}, key {a.key or 'any'}, "
          f"seeds {a.seed}..{a.seed + a.count - 1}; "
          f"reference: {len(ref)} MAESTRO validation performances"
          f"{' (raw MIDI)' if a.raw_reference else ' after the codec round trip'}; "
          f"stuck-note problems in the generated files: {len(stuck)}\n")
    if in_key is not None:
        print(f"share of generated onsets in {a.key} ({'natural or harmonic' if 'minor' in a.key else 'its scale'}): "
              f"{in_key:.3f}\n")
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
    print(f"\n| onsets off a strict tempo grid (> {GRID_TOL * 1000:.0f} ms from the best-fitting 16th-note grid, "
          f"{GRID_BPM[0]:.0f}-{GRID_BPM[1]:.0f} BPM, first {a.grid_seconds:g} s) | share (mean ± sd over pieces) |")
    print("| --- | --- |")
    names = {"maestro": "MAESTRO validation", "generated": "generated",
             "quantised": "control: generated, snapped to its own best grid",
             "random": "control: uniformly random onsets (same count and span as generated)"}
    for k, label in names.items():
        m, sd = grid_sum[k]
        print(f"| {label} | {m:.2f} ± {sd:.2f} |")
    for s in stuck[:10]:
        print(f"  stuck: {s}", file=sys.stderr)


if __name__ == "__main__":
    main()
