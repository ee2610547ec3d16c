"""`pianoforte perform` (issue 20) on small scores written here with mido, as a DAW or a notation
program writes them; the performances read back with mido: every playable note of the score once,
no other, chords in score order, velocities that vary, the pedal released at the end, the same
seed the same performance, and clear words for what is dropped or wrong.
"""

import os
import subprocess
from pathlib import Path

import mido
import pretty_midi
import pytest

ROOT = Path(__file__).resolve().parents[2]
ASAP = ROOT.parent / "shared" / "data" / "asap"
BIN = os.environ.get("PIANOFORTE_BIN", str(ROOT / "target" / "release" / "pianoforte"))
PPQ = 480

pytestmark = pytest.mark.skipif(
    "PIANOFORTE_BIN" not in os.environ and not os.path.exists(BIN), reason=f"{BIN} not built"
)


def score(path: Path, notes, tempos=((0, 500_000),), meter=(4, 4), tracks=1):
    """Writes a score: `notes` as (start beat, length in beats, key, channel) on `tracks` tracks
    (round robin), `tempos` as (beat, microseconds per quarter note)."""
    mid = mido.MidiFile(ticks_per_beat=PPQ, type=1 if tracks > 1 else 0)
    conductor = [(round(b * PPQ), 0, mido.MetaMessage("set_tempo", tempo=t)) for b, t in tempos]
    conductor.append((0, 0, mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1])))
    parts = [list(conductor)] + [[] for _ in range(tracks - 1)]
    for i, (start, length, key, channel) in enumerate(notes):
        part = parts[i % tracks]
        # At one tick: offs of earlier notes, then ons, then the offs of zero-length notes.
        part.append((round(start * PPQ), 1, mido.Message("note_on", note=key, velocity=100, channel=channel)))
        off = mido.Message("note_off", note=key, velocity=0, channel=channel)
        part.append((round((start + length) * PPQ), 2 if length == 0 else 0, off))
    for events in parts:
        track = mido.MidiTrack()
        now = 0
        for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
            track.append(msg.copy(time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def perform(src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([BIN, "perform", str(src), "-o", str(out), *extra], capture_output=True, text=True)


def played(path: Path):
    """(onset seconds, key, velocity) of every note, and the pedal values, read with mido."""
    now, sounding, notes, pedal = 0.0, {}, [], []
    for msg in mido.MidiFile(str(path)):  # times in seconds, through the file's tempo map
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            assert msg.note not in sounding, "a key struck again while it sounds"
            sounding[msg.note] = (now, msg.velocity)
        elif msg.type in ("note_off", "note_on"):
            start, velocity = sounding.pop(msg.note)
            assert now > start, f"a note of no length at {start:.3f} s"
            notes.append((start, msg.note, velocity))
        elif msg.type == "control_change" and msg.control == 64:
            pedal.append(msg.value)
    assert not sounding, "notes left sounding"
    return sorted(notes), pedal


def chords_in_order(notes, chords):
    """The performed onsets of each score chord (sets of keys, in score order) come after the
    previous chord's."""
    remaining = list(notes)
    last = -1.0
    for keys in chords:
        onsets = []
        for key in keys:
            hit = next(n for n in remaining if n[1] == key)
            remaining.remove(hit)
            onsets.append(hit[0])
        assert min(onsets) > last, f"chord {keys} starts before the previous chord's last onset"
        last = max(onsets)
    assert not remaining


CHORALE = [(b, 1, k, 0) for b in range(0, 16, 1) for k in ((48, 64, 67, 72) if b % 2 == 0 else (43, 62, 67, 71))]


def test_chords_are_played_once_in_order_with_varied_velocities(tmp_path):
    src = score(tmp_path / "chorale.mid", CHORALE)
    run = perform(src, tmp_path / "out.mid")
    assert run.returncode == 0, run.stderr
    notes, pedal = played(tmp_path / "out.mid")
    chords = [(48, 64, 67, 72) if b % 2 == 0 else (43, 62, 67, 71) for b in range(16)]
    chords_in_order(notes, chords)
    assert len({v for _, _, v in notes}) > 5, "velocities vary"
    assert not pedal or pedal[-1] < 64, "the pedal is released at the end"


def test_the_same_seed_gives_the_same_performance_and_another_seed_another(tmp_path):
    src = score(tmp_path / "chorale.mid", CHORALE)
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert perform(src, tmp_path / f"{name}.mid", "--seed", seed).returncode == 0
    assert (tmp_path / "a.mid").read_bytes() == (tmp_path / "b.mid").read_bytes()
    assert (tmp_path / "a.mid").read_bytes() != (tmp_path / "c.mid").read_bytes()


def test_repeated_notes_and_meters_of_three(tmp_path):
    for meter in ((3, 4), (6, 8)):
        repeated = [(b * 0.5, 0.5, 60, 0) for b in range(24)] + [(b * 1.5, 1.5, 36, 0) for b in range(8)]
        src = score(tmp_path / f"rep{meter[0]}.mid", repeated, meter=meter)
        run = perform(src, tmp_path / f"out{meter[0]}.mid")
        assert run.returncode == 0, run.stderr
        notes, _ = played(tmp_path / f"out{meter[0]}.mid")
        assert sum(1 for n in notes if n[1] == 60) == 24 and sum(1 for n in notes if n[1] == 36) == 8


def test_a_ritardando_in_the_tempo_map_is_the_starting_point(tmp_path):
    line = [(b, 1, 60 + b % 5, 0) for b in range(16)]
    steady = score(tmp_path / "steady.mid", line)
    ritardando = [(0, 500_000)] + [(8 + k, 500_000 + 100_000 * (k + 1)) for k in range(8)]
    slowing = score(tmp_path / "rit.mid", line, tempos=ritardando)
    for src in (steady, slowing):
        assert perform(src, tmp_path / f"{src.stem}-out.mid", "--temperature", "0").returncode == 0
    steady_notes, _ = played(tmp_path / "steady-out.mid")
    rit_notes, _ = played(tmp_path / "rit-out.mid")
    gap = lambda notes: notes[-1][0] - notes[8][0]  # noqa: E731
    assert gap(rit_notes) > 1.5 * gap(steady_notes), "the written ritardando slows the performance"


def test_overlaps_zero_lengths_drums_and_keys_outside_the_piano_are_said(tmp_path):
    notes = [(0, 2, 60, 0), (1, 2, 60, 0), (2, 0, 64, 0), (3, 1, 67, 0),  # an overlap, a zero length
             (0, 1, 36, 9), (1, 1, 38, 9), (4, 1, 10, 0), (4, 1, 67, 1)]  # drums, below A0, channel 2
    src = score(tmp_path / "odd.mid", notes, tracks=2)
    run = perform(src, tmp_path / "out.mid")
    assert run.returncode == 0, run.stderr
    said = ("channel 10 (drums) ignored", "outside the piano's keys", "overlapping notes of one key", "zero-length")
    for words in said:
        assert words in run.stdout, f"{words!r} not in {run.stdout}"
    got, _ = played(tmp_path / "out.mid")
    assert sorted(k for _, k, _ in got) == [60, 60, 64, 67, 67]


def test_an_empty_file_or_one_without_notes_is_refused_in_words(tmp_path):
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    run = perform(empty, tmp_path / "out.mid")
    assert run.returncode != 0 and "empty" in run.stderr
    drums_only = score(tmp_path / "drums.mid", [(b, 1, 36, 9) for b in range(4)])
    run = perform(drums_only, tmp_path / "out.mid")
    assert run.returncode != 0 and "no notes to play" in run.stderr and "drums" in run.stderr
    assert not (tmp_path / "out.mid").exists()


def test_a_real_score_is_played_note_for_note_as_pretty_midi_reads_it(tmp_path):
    """Chopin's Berceuse as ASAP's score has it (grace notes of no length struck with their
    note, overlapping voices): every note it says it played, pretty_midi reads back."""
    src = ASAP / "Chopin" / "Berceuse_op_57" / "midi_score.mid"
    run = perform(src, tmp_path / "out.mid")
    assert run.returncode == 0, run.stderr
    said = int(run.stdout.split("wrote ")[1].split(": ")[1].split(" notes")[0])
    back = pretty_midi.PrettyMIDI(str(tmp_path / "out.mid"))
    assert sum(len(i.notes) for i in back.instruments) == said > 1500
    notes, pedal = played(tmp_path / "out.mid")
    assert len(notes) == said and pedal[-1] < 64
