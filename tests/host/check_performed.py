#!/usr/bin/env python3
"""Checks a score dropped on the editor (Perform my part) against what the plugin made of it.

usage: check_performed.py make SCORE.mid
       check_performed.py check SCORE.mid CLIP.mid TRACE_DIR
make: writes a flat part as a notation program or a piano roll does (mido): 92 BPM 3/4, every
  note at velocity 100, exactly on the grid, a melody over chords, no pedal.
check (mido and pretty_midi):
- the clip has every note of the score once (same keys), and is no longer flat: velocities vary
  and chord notes are not all struck at one instant;
- its tempo and time signature are the score's, at tick 0;
- the engine played it: the newest performance in the trace (TRACE_DIR) strikes the same keys.
Needs the trainer's environment (mido, pretty_midi).
"""
import collections
import csv
import glob
import sys

import mido
import pretty_midi

BPM, NUMERATOR, DENOMINATOR = 92, 3, 4


def make(path: str) -> None:
    ppq = 480
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=NUMERATOR, denominator=DENOMINATOR, time=0))
    events = []  # (tick, order, message): offs before ons at one tick
    melody = [72, 74, 76, 77, 79, 77, 76, 74, 72, 71, 72, 74]
    for i, key in enumerate(melody):
        events += [(i * ppq, 1, ("note_on", key)), ((i + 1) * ppq, 0, ("note_off", key))]
    for bar, chord in enumerate([(48, 55, 64), (43, 53, 62), (48, 55, 64), (43, 50, 59)]):
        for key in chord:
            events += [(bar * 3 * ppq, 1, ("note_on", key)), ((bar + 1) * 3 * ppq, 0, ("note_off", key))]
    tick = 0
    for at, _, (kind, key) in sorted(events):
        track.append(mido.Message(kind, note=key, velocity=100 if kind == "note_on" else 0, time=at - tick))
        tick = at
    midi = mido.MidiFile(ticks_per_beat=ppq)
    midi.tracks.append(track)
    midi.save(path)


def keys(path: str) -> collections.Counter:
    return collections.Counter(n.pitch for i in pretty_midi.PrettyMIDI(path).instruments for n in i.notes)


def check(score: str, clip: str, trace_dir: str) -> list:
    failures = []
    expected = keys(score)
    notes = [n for i in pretty_midi.PrettyMIDI(clip).instruments for n in i.notes]
    if collections.Counter(n.pitch for n in notes) != expected:
        failures.append(f"the clip's keys {sorted(n.pitch for n in notes)} are not the score's {sorted(expected.elements())}")
    if len({n.velocity for n in notes}) < 4:
        failures.append(f"the clip is still flat: velocities {sorted({n.velocity for n in notes})}")
    chord_onsets = {round(n.start, 4) for n in notes if n.pitch < 70}
    if len(chord_onsets) <= 4:
        failures.append(f"the chords are struck as blocks: {len(chord_onsets)} onsets for 12 chord notes")
    metas = {m.type: m for m in mido.MidiFile(clip).tracks[0] if m.is_meta}
    tempo, signature = metas.get("set_tempo"), metas.get("time_signature")
    if tempo is None or abs(mido.tempo2bpm(tempo.tempo) - BPM) > 0.01:
        failures.append(f"tempo {tempo} is not the score's {BPM} BPM")
    if signature is None or (signature.numerator, signature.denominator) != (NUMERATOR, DENOMINATOR):
        failures.append(f"time signature {signature} is not the score's {NUMERATOR}/{DENOMINATOR}")
    rows = [r for f in glob.glob(f"{trace_dir}/*") for r in csv.reader(open(f), delimiter="\t") if len(r) == 5 and r[0].isdigit()]
    newest = max((int(r[0]) for r in rows), default=None)
    played = collections.Counter(int(r[3]) for r in rows if int(r[0]) == newest and r[2] == "on")
    if played != expected:
        failures.append(f"the engine's newest performance (generation {newest}) struck {sorted(played.elements())}")
    return failures


def main() -> int:
    if sys.argv[1] == "make":
        make(sys.argv[2])
        return 0
    failures = check(*sys.argv[2:5])
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
