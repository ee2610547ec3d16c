#!/usr/bin/env python3
"""Checks what Ardour captured after the pianoforte VST3 (tests/host/ardour-vst3.sh).

usage: check_capture.py CAPTURE.txt TRACE_DIR SAMPLE_RATE

- Intervals: the NOTE_ONs Ardour received are compared with the engine's trace (every event it
  queued, with its performance time). The capture may start a cycle late, so intervals between
  events are compared, not absolute times: each NOTE_ON must sit exactly (to the sample) at its
  traced time plus one constant offset.
- The pedal: the plugin sends CC64 changes (the model pedals), and it ends up.
- The jump: every start is a new performance, so when the second stretch begins nothing of the
  first still sounds (the cut at the jump), and the pedal is up.
- No stuck notes: every key that went down came up.
- Stop: after the transport stopped, everything is off and nothing new starts.
Prints one line per finding and exits non-zero on a failure.
"""
import glob
import os
import sys


def main() -> int:
    capture_path, trace_dir, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    events, marks = [], {}
    with open(capture_path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "EV":
                events.append(tuple(int(x) for x in parts[1:5]))
            elif parts[0] == "MARK":
                marks[parts[1]] = int(parts[2])
            elif parts[0] == "RATE":
                print("  session:", line.strip())
    buffer = int(os.environ.get("PF_BUFFER", "256"))
    traced = []
    for path in sorted(glob.glob(os.path.join(trace_dir, "trace-*.tsv"))):
        with open(path) as f:
            for line in f:
                fields = line.rstrip("\n").split("\t")
                if len(fields) == 5 and fields[2] in ("on", "off", "pedal"):
                    traced.append((int(fields[0]), float(fields[1]), fields[2], int(fields[3]), int(fields[4])))
    failures = []

    # Chords: events on one sample are compared in key order.
    ons = sorted((pos, d1, d2) for pos, status, d1, d2 in events if status & 0xF0 == 0x90 and d2 > 0)
    pedals = sum(1 for _, status, d1, _ in events if status & 0xF0 == 0xB0 and d1 == 64)
    print(f"  captured {len(events)} events, {len(ons)} NOTE_ONs, {pedals} pedal (CC64) changes; the engine "
          f"traced {sum(1 for t in traced if t[2] == 'on')} NOTE_ONs, {sum(1 for t in traced if t[2] == 'pedal')} pedal changes")
    if len(ons) < 10:
        failures.append(f"only {len(ons)} NOTE_ONs came out of the plugin")
    if pedals == 0:
        failures.append("no sustain pedal (CC64) came out of the plugin")

    # Intervals: the captured NOTE_ONs in order against the traced ones in order (same keys); the
    # offset between the two clocks is constant except where the transport jumped or paused (the
    # plugin's performance clock pauses while the host's transport is stopped or relocating).
    # A performance's queued events from where a newer one starts were never due: drop them.
    starts = {}
    for generation, time, *_ in traced:
        starts[generation] = min(starts.get(generation, time), time)
    def live(generation, time):
        return not any(g > generation and start <= time for g, start in starts.items())
    traced_ons = sorted((round(t[1] * rate), t[3]) for t in traced if t[2] == "on" and live(t[0], t[1]))

    offsets, j = [], 0
    for pos, key, _ in ons:
        while j < len(traced_ons) and traced_ons[j][1] != key:
            j += 1
        if j == len(traced_ons):
            failures.append(f"NOTE_ON {key} at {pos} is not in the engine's trace (in order)")
            break
        offsets.append(pos - traced_ons[j][0])
        j += 1
    # The engine's pedal-downs (up to its last NOTE_ON that was played) reach the host as CC64 >= 64.
    played_until = traced_ons[j - 1][0] if 0 < j <= len(traced_ons) else 0
    traced_downs = sum(1 for t in traced if t[2] == "pedal" and t[4] >= 64 and live(t[0], t[1]) and t[1] * rate <= played_until)
    captured_downs = sum(1 for _, status, d1, d2 in events if status & 0xF0 == 0xB0 and d1 == 64 and d2 >= 64)
    print(f"  pedal-downs: {traced_downs} traced while playing, {captured_downs} captured")
    if traced_downs > 0 and captured_downs == 0:
        failures.append("the engine pressed the pedal but no CC64 >= 64 came out")
    runs = []
    for o in offsets:
        if not runs or runs[-1][0] != o:
            runs.append([o, 0])
        runs[-1][1] += 1
    print(f"  offsets between captured and traced NOTE_ONs (value x count): {[tuple(r) for r in runs]}")
    # One stretch before the jump and one after; a relocation may add one short pause.
    if len(runs) > 3:
        failures.append(f"the intervals between NOTE_ONs differ from the engine's in {len(runs) - 1} places")
    exact = max((r[1] for r in runs), default=0)
    print(f"  intervals exact to the sample within each stretch; longest stretch {exact} NOTE_ONs")

    # The cut at the jump: before the second stretch's first NOTE_ON nothing of the first sounds.
    if len(runs) >= 2:
        second = ons[runs[0][1]][0]
        held, pedal_before = set(), 0
        for pos, status, d1, d2 in events:
            if pos >= second:
                break
            if status & 0xF0 == 0x90 and d2 > 0:
                held.add(d1)
            elif status & 0xF0 == 0x80 or (status & 0xF0 == 0x90 and d2 == 0):
                held.discard(d1)
            elif status & 0xF0 == 0xB0 and d1 == 64:
                pedal_before = d2
        print(f"  the second stretch begins at {second}: {len(held)} notes of the first still sound, pedal {pedal_before}")
        if held or pedal_before >= 64:
            failures.append(f"the jump did not end the first performance: keys {sorted(held)} sound, pedal {pedal_before}")
    else:
        failures.append("no second stretch after the jump")

    # Stuck notes and the pedal.
    sounding, pedal, problems = set(), 0, []
    stop_cycle = marks.get("stop", 0)
    for pos, status, d1, d2 in events:
        kind = status & 0xF0
        if kind == 0x90 and d2 > 0:
            sounding.add(d1)
            if pos > (stop_cycle + 2) * buffer + rate * 0.2 and "end" in marks:
                problems.append(f"NOTE_ON {d1} at {pos} after the stop")
        elif kind == 0x80 or (kind == 0x90 and d2 == 0):
            sounding.discard(d1)
        elif kind == 0xB0 and d1 == 64:
            pedal = d2
    if sounding:
        failures.append(f"stuck notes after the stop: {sorted(sounding)}")
    if pedal >= 64:
        failures.append("the pedal is still down after the stop")
    failures.extend(problems[:5])

    for failure in failures:
        print("  FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
