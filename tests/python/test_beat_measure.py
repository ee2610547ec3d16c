"""benches/beats.py's measuring functions (issue 19, "In the song's time"), on synthetic onsets
with known answers, and on a real ASAP validation performance when ../shared/data/asap is there.

on grid = within 0.06 beat of 0, 1/4, 1/3, 1/2, 2/3, 3/4 of a beat; on beat = within 0.08 beat of
a beat; 24 phase bins per beat; overlap = histogram intersection.
"""

import sys
from pathlib import Path

import mido
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches"))  # the bench script from this checkout
import beats as B  # noqa: E402

ASAP_CSV = ROOT.parent / "shared" / "data" / "asap" / "asap-train-validation.csv"


def test_onsets_on_the_beats_are_on_grid_and_on_beat():
    grid = np.arange(0, 20) * 0.6
    pos, inside = B.beat_positions(grid, grid)
    assert inside.all()
    np.testing.assert_allclose(pos, np.arange(20), atol=1e-9)
    ph = B.phases(pos)
    assert B.on_grid(ph) == 1.0 and B.on_beat(ph) == 1.0


def test_onsets_on_the_half_beat_are_on_grid_but_off_the_beat():
    beats = np.arange(0, 20) * 0.5
    ph = B.phases(B.beat_positions(beats[:-1] + 0.25, beats)[0])
    np.testing.assert_allclose(ph, 0.5, atol=1e-9)
    assert B.on_grid(ph) == 1.0 and B.on_beat(ph) == 0.0


def test_uniform_phases_give_chance_level():
    ph = np.random.default_rng(7).random(40_000)
    # on beat: 2 x 0.08 of the beat; on grid: the union of the windows around 0, 1/4, 1/3, 1/2,
    # 2/3, 3/4 and 1 = 0.06 + 0.203 + 0.12 + 0.203 + 0.06 = 0.647.
    assert B.on_beat(ph) == pytest.approx(0.16, abs=0.01)
    assert B.on_grid(ph) == pytest.approx(0.6467, abs=0.01)
    hist = B.normalise(B.phase_counts(ph))
    assert hist.shape == (24,) and hist.sum() == pytest.approx(1.0)
    assert B.overlap(hist, np.ones(24)) > 0.97


def test_tolerances_at_their_edges_and_across_the_beat():
    assert B.on_beat([0.079, 0.921, 0.999]) == 1.0  # late, early and just before the next beat
    assert B.on_beat([0.082, 0.918, 0.5]) == 0.0
    assert B.on_grid([0.25 + 0.059, 1 / 3 + 0.059, 2 / 3 - 0.059, 0.75 + 0.059, 0.941, 0.059]) == 1.0
    assert B.on_grid([0.75 + 0.062, 0.09, 0.16, 0.42, 0.58, 0.84, 0.91]) == 0.0


def test_positions_are_interpolated_between_uneven_beats():
    beats = [1.0, 2.0, 4.0, 4.5]
    onsets = [0.5, 1.0, 1.5, 3.0, 3.5, 4.25, 4.5, 5.0]  # the first and the last lie outside
    pos, inside = B.beat_positions(onsets, beats)
    assert inside.tolist() == [False, True, True, True, True, True, True, False]
    np.testing.assert_allclose(pos, [0.0, 0.5, 1.5, 1.75, 2.5, 3.0])


def test_histogram_bins_and_overlap():
    counts = B.phase_counts([0.0, 0.01, 0.5, 0.99])
    assert counts[0] == 2 and counts[12] == 1 and counts[23] == 1 and counts.sum() == 4
    assert B.overlap(counts, counts * 3) == pytest.approx(1.0)
    assert B.overlap(B.phase_counts([0.0]), B.phase_counts([0.5])) == 0.0
    assert B.overlap(B.phase_counts([0.0, 0.5]), B.phase_counts([0.0])) == pytest.approx(0.5)


def test_steady_grid_follows_tempo_and_meter():
    g = B.steady_beats(100, B.Meter.parse("3/4"), until=10.0)
    np.testing.assert_allclose(np.diff(g.times), 0.6)
    assert g.times[0] == 0.0 and g.times[-1] >= 10.0
    assert g.downbeat[:7].tolist() == [True, False, False, True, False, False, True]
    six_eight = B.Meter.parse("6/8")  # compound: two beats of three eighths, as the engine counts them
    assert six_eight.beats_per_bar == 2 and six_eight.beat_quarters == 1.5
    np.testing.assert_allclose(np.diff(B.steady_beats(120, six_eight, until=3.0).times), 0.75)
    assert B.parse_configs("72:4/4, 100:3/4,132") == [(72.0, B.Meter(4, 4)), (100.0, B.Meter(3, 4)),
                                                      (132.0, B.Meter(4, 4))]
    with pytest.raises(ValueError):
        B.Meter.parse("3/5")


def test_downbeat_loudness():
    grid = B.steady_beats(120, B.Meter(4, 4), until=8.0)
    onsets = np.arange(16) * 0.5  # every beat: downbeats are beats 0, 4, 8, 12
    vel = np.where(np.arange(16) % 4 == 0, 90, 60)
    onsets, vel = np.append(onsets, 0.25), np.append(vel, 30)  # an off-beat onset after bar 1's downbeat
    m = B.measure("x", onsets, vel, grid)
    loud = B.downbeat_loudness(m.positions, m.velocities, m.downbeat)
    assert loud["downbeat_onsets"] == 4 and loud["other_onsets"] == 13
    assert loud["downbeat_velocity"] == 90 and loud["other_velocity"] == pytest.approx((12 * 60 + 30) / 13)
    assert loud["ratio"] > 1


def test_annotations_are_read(tmp_path):
    ann = tmp_path / "a_annotations.txt"
    ann.write_text("0.5\t0.5\tdb,3/4,-2\n1.0\t1.0\tb\n1.5\t1.5\tbR\n1.5\t1.5\tdb\n2.0\t2.0\tdb\n"
                   "2.1\t2.1\tsomething else\n")
    beats = B.read_annotations(ann)
    np.testing.assert_allclose(beats.times, [0.5, 1.0, 1.5, 2.0])
    assert beats.downbeat.tolist() == [True, False, True, True]


def test_a_file_is_measured_against_the_grid_it_carries(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100)))
    track.append(mido.MetaMessage("time_signature", numerator=3, denominator=4))
    for k in range(12):  # one note per beat, loud on the downbeats
        track.append(mido.Message("note_on", note=60, velocity=100 if k % 3 == 0 else 50, time=0))
        track.append(mido.Message("note_off", note=60, velocity=0, time=480))
    path = tmp_path / "song.mid"
    mid.save(path)
    bpm, meter, remarks = B.file_grid(path)
    assert bpm == pytest.approx(100) and meter == B.Meter(3, 4) and remarks == []
    onsets, vel = B.notes_of(path)
    np.testing.assert_allclose(onsets, np.arange(12) * 0.6, atol=1e-6)
    m = B.measure("song.mid", onsets, vel, B.steady_beats(bpm, meter, onsets.max() + 1))
    s = m.summary()
    assert s["on_beat"] == 1.0 and s["on_grid"] == 1.0 and s["ratio"] == 2.0


@pytest.mark.skipif(not ASAP_CSV.exists(), reason=f"{ASAP_CSV} not there")
def test_a_real_pianist_is_well_above_chance():
    pairs = B.asap_performances(ASAP_CSV, "validation", max_files=1)
    assert pairs
    rows, problems = B.measure_asap(ASAP_CSV, "validation", max_files=1)
    assert not problems and len(rows) == 1
    s = rows[0].summary()
    assert s["onsets"] > 100
    assert s["on_grid"] > 0.80 and s["on_beat"] > 0.25  # chance: 0.65 and 0.16
    agg = B.aggregate(rows)
    assert agg["histogram"][0] + agg["histogram"][-1] > 2 * 2 / 24  # a peak on the beat
