"""Our MIDI files, checked by independent readers (mido, pretty_midi).

`pianoforte encode` then `pianoforte decode` on real MAESTRO performances must give files that
both readers open, with the same notes as pretty_midi reads from the original (onsets and
offsets within half a time step, the stuck-note guard aside), no stuck notes, and the sustain pedal.
"""

import os
import subprocess
import sys
from pathlib import Path

import mido
import pretty_midi
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "models"))  # the trainer's package from this checkout, for the vocabulary
from pianoforte_train import vocab as V  # noqa: E402

MAESTRO = ROOT.parent / "shared" / "data" / "maestro-v2.0.0"
BIN = os.environ.get("PIANOFORTE_BIN", str(ROOT / "target" / "release" / "pianoforte"))
FILES = sorted(MAESTRO.glob("2004/*.midi"))[:3] + sorted(MAESTRO.glob("2018/*.midi"))[:2]
TOL = 0.5 / V.STEPS_PER_SECOND + 1e-6  # times are rounded to the step grid
GUARD_S = V.MAX_NOTE_STEPS / V.STEPS_PER_SECOND

# Without PIANOFORTE_BIN (tests/run-all.sh sets it) a missing binary skips rather than fails.
pytestmark = pytest.mark.skipif(
    "PIANOFORTE_BIN" not in os.environ and not os.path.exists(BIN), reason=f"{BIN} not built"
)


def round_trip(src: Path, tmp: Path) -> Path:
    events = subprocess.run([BIN, "encode", str(src)], check=True, capture_output=True, text=True).stdout
    (tmp / "events.txt").write_text(events)
    out = tmp / "decoded.mid"
    subprocess.run([BIN, "decode", str(tmp / "events.txt"), "-o", str(out)], check=True, capture_output=True)
    return out


@pytest.mark.parametrize("src", FILES, ids=lambda p: p.name[:40])
def test_decoded_file_matches_original_in_pretty_midi(src, tmp_path):
    out = round_trip(src, tmp_path)
    orig = sorted((n.pitch, n.start, n.end) for i in pretty_midi.PrettyMIDI(str(src)).instruments for n in i.notes
                  if V.MIN_PITCH <= n.pitch <= V.MAX_PITCH)
    back = pretty_midi.PrettyMIDI(str(out))
    assert len(back.instruments) == 1 and back.instruments[0].program == 0
    got = sorted((n.pitch, n.start, n.end) for n in back.instruments[0].notes)
    assert len(got) == len(orig)
    for (p, s, e), (p2, s2, e2) in zip(orig, got, strict=True):
        assert p == p2 and abs(s - s2) <= TOL
        capped = round(e * V.STEPS_PER_SECOND) - round(s * V.STEPS_PER_SECOND) > V.MAX_NOTE_STEPS
        assert abs((s2 + GUARD_S if capped else e) - e2) <= TOL + 1e-6
    pedal = [c for c in back.instruments[0].control_changes if c.number == 64]
    assert pedal and pedal[-1].value < 64


@pytest.mark.parametrize("src", FILES[:2], ids=lambda p: p.name[:40])
def test_decoded_file_is_clean_in_mido(src, tmp_path):
    mid = mido.MidiFile(str(round_trip(src, tmp_path)))
    assert mid.type == 0 and mid.ticks_per_beat == 480 and len(mid.tracks) == 1
    tempos = [m.tempo for m in mid.tracks[0] if m.type == "set_tempo"]
    assert tempos == [480000]
    sounding = set()
    for msg in mid.tracks[0]:
        if msg.type == "note_on" and msg.velocity > 0:
            assert msg.note not in sounding, "a key pressed twice without release"
            sounding.add(msg.note)
        elif msg.type in ("note_off", "note_on"):
            sounding.discard(msg.note)
    assert not sounding, "stuck notes at the end"


@pytest.mark.parametrize("bpm,meter", [(96, "3/4"), (132, None), (90, "6/8")])
def test_generate_on_a_song_grid_carries_its_tempo_and_meter(bpm, meter, tmp_path):
    out = tmp_path / "grid.mid"
    args = [BIN, "generate", "--seconds", "8", "--seed", "5", "--bpm", str(bpm), "-o", str(out)]
    subprocess.run(args + (["--meter", meter] if meter else []), check=True, capture_output=True)
    mid = mido.MidiFile(str(out))
    metas = [(abs_tick, m) for abs_tick, m in _absolute(mid.tracks[0]) if m.is_meta]
    tempos = [(t, m.tempo) for t, m in metas if m.type == "set_tempo"]
    signatures = [(t, m.numerator, m.denominator) for t, m in metas if m.type == "time_signature"]
    assert tempos == [(0, mido.bpm2tempo(bpm))]
    numerator, denominator = map(int, (meter or "4/4").split("/"))
    assert signatures == [(0, numerator, denominator)], "bar 1 starts at the file's start"
    pm = pretty_midi.PrettyMIDI(str(out))
    assert abs(pm.get_tempo_changes()[1][0] - bpm) < 1e-3
    notes = pm.instruments[0].notes
    assert len(notes) > 20 and max(n.end for n in notes) <= 8.0 + 1e-3 + GUARD_S


def test_generate_refuses_a_meter_without_a_tempo_and_tempos_out_of_range(tmp_path):
    out = str(tmp_path / "x.mid")
    for bad in (["--meter", "3/4"], ["--bpm", "0"], ["--bpm", "100", "--meter", "3/5"], ["--bpm", "fast"]):
        run = subprocess.run([BIN, "generate", "--seconds", "1", "-o", out, *bad], capture_output=True, text=True)
        assert run.returncode != 0 and run.stderr.strip(), bad
        assert not os.path.exists(out)


def _absolute(track):
    tick = 0
    for message in track:
        tick += message.time
        yield tick, message
