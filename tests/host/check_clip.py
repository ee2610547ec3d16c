#!/usr/bin/env python3
"""Checks a clip dragged out of the editor against what the plugin played.

usage: check_clip.py CLIP.mid TRACE_DIR BPM NUMERATOR DENOMINATOR
The host (the standalone's dummy backend) played from song position 0 at BPM in NUMERATOR/
DENOMINATOR, so the performance clock is the song time. Checks, with mido and pretty_midi:
- one track; the tempo and time signature meta events are the host's, at tick 0;
- the name says "bars A-B, BPM bpm" and the file starts at bar A's line: every note plays at its
  traced time (the engine's trace in TRACE_DIR) minus bar A's start, within 1 ms, same key;
  every traced note between the clip's first and last note is in the clip;
- the file ends on a bar line.
Needs the trainer's environment (mido, pretty_midi).
"""
import csv
import glob
import os
import re
import sys

import mido
import pretty_midi


def main() -> int:
    path, trace_dir = sys.argv[1], sys.argv[2]
    bpm, num, den = float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    failures = []
    name = os.path.basename(path)
    m = re.search(r", bars? (\d+)(?:-(\d+))?, ([\d.]+) bpm", name)
    if not m:
        print(f"FAIL: the name does not say bars and tempo: {name}")
        return 1
    first_bar = int(m.group(1))
    if abs(float(m.group(3)) - bpm) > 0.01:
        failures.append(f"the name says {m.group(3)} bpm, the host {bpm}")

    mid = mido.MidiFile(path)
    if len(mid.tracks) != 1:
        failures.append(f"{len(mid.tracks)} tracks, expected 1")
    tick, metas = 0, {}
    for msg in mid.tracks[0]:
        tick += msg.time
        if msg.is_meta and tick == 0:
            metas[msg.type] = msg
    tempo = metas.get("set_tempo")
    if tempo is None or abs(mido.tempo2bpm(tempo.tempo) - bpm) > 0.01:
        failures.append(f"tempo meta event {tempo} does not say {bpm} BPM")
    sig = metas.get("time_signature")
    if sig is None or (sig.numerator, sig.denominator) != (num, den):
        failures.append(f"time signature meta event {sig} is not {num}/{den}")

    bar_seconds = num * 4 / den * 60 / bpm
    start = (first_bar - 1) * bar_seconds
    pm = pretty_midi.PrettyMIDI(path)
    notes = sorted((n.start, n.pitch, n.velocity) for inst in pm.instruments for n in inst.notes)
    # mido agrees with pretty_midi on the onsets.
    t, mido_ons = 0.0, []
    for msg in mid:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            mido_ons.append((t, msg.note))
    agree = all(abs(a[0] - b[0]) <= 1e-6 for a, b in zip(sorted(mido_ons), notes, strict=False))
    if len(mido_ons) != len(notes) or not agree:
        failures.append("mido and pretty_midi disagree on the notes")
    if len(notes) < 5:
        failures.append(f"only {len(notes)} notes in the clip")

    traced = []
    for trace in glob.glob(os.path.join(trace_dir, "trace-*.tsv")):
        with open(trace) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row["kind"] == "on":
                    traced.append((float(row["time"]), int(row["key"])))
    matched, cut, worst = 0, 0, 0.0
    first_onset = notes[0][0] if notes else 0.0
    for onset, pitch, _velocity in notes:
        song = start + onset
        near = [abs(t - song) for t, k in traced if k == pitch and abs(t - song) < 0.002]
        at_cut = abs(onset - first_onset) < 1e-6 and any(k == pitch and t < song for t, k in traced)
        if (not near or min(near) > 0.001) and at_cut:
            cut += 1  # sounding when the selection begins: it starts at the cut
            continue
        if not near or min(near) > 0.001:
            failures.append(f"note {pitch} at {onset:.4f} s (song {song:.4f} s) is not in the trace within 1 ms")
            continue
        matched += 1
        worst = max(worst, min(near))
    if notes:
        lo, hi = start + notes[0][0], start + notes[-1][0]
        in_clip = [(t, k) for t, k in traced if lo + 0.001 < t < hi - 0.001]
        missing = [(t, k) for t, k in in_clip if not any(p == k and abs(start + o - t) <= 0.001 for o, p, _ in notes)]
        if missing:
            failures.append(f"{len(missing)} traced notes missing from the clip, first {missing[0]}")
    length = mid.length
    bars = length / bar_seconds
    if abs(bars - round(bars)) * bar_seconds > 0.002:
        failures.append(f"the file is {bars:.4f} bars long, not on a bar line")
    print(f"clip {name}: {len(notes)} notes, {matched} matched to the trace (worst {worst * 1000:.3f} ms), "
          f"{cut} cut at its start, "
          f"starts at bar {first_bar} ({start:.3f} s), {bars:.2f} bars, tempo {bpm}, {num}/{den}")
    for f in failures:
        print(f"FAIL: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
