"""benches/motifs.py's measuring functions (issue 21, "Figures and themes that come back"), on
synthetic onsets with known answers, and on a real MAESTRO validation performance when
../shared/data/maestro-v2.0.0 is there.

cluster = onsets less than 30 ms after the cluster's first onset (in whole ms); top line = the
highest pitch of each cluster; k-interval motif = k consecutive intervals of the top line;
recurrence = share of motif windows whose motif occurs twice or more; verbatim = share of 12-note
windows (all notes) whose pitches, onset gaps (to 10 ms) and velocities recur exactly.
"""

import sys
from pathlib import Path

import mido
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benches"))  # the bench script from this checkout
import motifs as M  # noqa: E402

FIGURE = [60, 62, 64, 65, 67, 64]  # six notes: intervals 2, 2, 1, 2, -3


def test_clusters_start_at_their_first_onset_and_pick_the_top_note():
    # A chord, then a roll over 20 ms (top note played first), then 0.5 s later a single note.
    onsets = [0.0, 0.0, 0.0, 0.2, 0.21, 0.22, 0.7]
    pitches = [60, 67, 64, 72, 48, 55, 50]
    np.testing.assert_array_equal(M.top_line(onsets, pitches), [67, 72, 50])
    # Measured from the cluster's first onset, not chained from the previous one: 0, 20, 40 ms is
    # two clusters, and an onset exactly 30 ms after the first starts a new one.
    assert M.clusters([0.0, 0.02, 0.04]).tolist() == [0, 0, 1]
    assert M.clusters([0.0, 0.029, 0.03, 0.059, 0.06]).tolist() == [0, 0, 1, 1, 2]
    # 30 ms in floating point (0.36 - 0.33 < 0.03; 0.13 - 0.1 > 0.03) is still 30 ms.
    assert M.clusters([0.33, 0.36]).tolist() == [0, 1]
    assert M.clusters([0.1, 0.13]).tolist() == [0, 1]
    # Order of the input does not matter.
    np.testing.assert_array_equal(M.top_line(onsets[::-1], pitches[::-1]), [67, 72, 50])


def test_a_transposed_figure_recurs_but_is_no_verbatim_copy():
    line = FIGURE + [p + 5 for p in FIGURE]  # intervals 2 2 1 2 -3 | 1 | 2 2 1 2 -3
    assert M.motifs(line, 5)[0] == (2, 2, 1, 2, -3) == M.motifs(line, 5)[-1]
    r = M.recurrence(line, 5)
    assert r["windows"] == 7 and r["motifs"] == 6
    assert r["share_windows"] == pytest.approx(2 / 7) and r["share_distinct"] == pytest.approx(1 / 6)
    # Played four times, each a fourth higher and louder: the intervals repeat every six notes
    # (the joins are all +1), so every motif window recurs, yet no 12-note window is a copy.
    pitches = np.concatenate([np.array(FIGURE) + 5 * r for r in range(4)])
    onsets = np.arange(24) * 0.25
    velocities = np.repeat([50, 60, 70, 80], 6)
    m = M.measure("x", onsets, pitches, velocities)
    assert m["top_notes"] == 24 and m["k5"]["windows"] == 19
    assert m["k5"]["share_windows"] == 1.0 and m["k3"]["share_windows"] == 1.0
    assert m["verbatim"]["windows"] == 13 and m["verbatim"]["share"] == 0.0
    # The same figure at the same pitch, but each repetition at its own velocity: still no copy.
    same = np.tile(FIGURE, 4)
    assert M.verbatim(onsets, same, velocities)["share"] == 0.0
    assert M.recurrence(same, 5)["share_windows"] == 1.0
    # ... and at one velocity it is copied throughout (window i equals window i + 6).
    assert M.verbatim(onsets, same, np.full(24, 64))["share"] == 1.0


def test_a_verbatim_repetition_is_detected_to_10_ms():
    rng = np.random.default_rng(21)
    n = 30
    pitches = rng.integers(21, 109, n)
    velocities = rng.integers(20, 110, n)
    steps = np.cumsum(rng.integers(5, 40, n))  # onsets on the 10 ms grid
    # Copy notes 5..16 at the end, same pitches, gaps and velocities, each onset jittered by up to
    # 2 ms (so every gap is within 4 ms of the original's, the same to 10 ms).
    copy = slice(5, 17)
    jitter = rng.uniform(-0.002, 0.002, 12)
    onsets = np.concatenate([steps * 0.01, (steps[copy] - steps[5] + steps[-1] + 50) * 0.01 + jitter])
    p = np.concatenate([pitches, pitches[copy]])
    v = np.concatenate([velocities, velocities[copy]])
    r = M.verbatim(onsets, p, v)
    assert r["windows"] == 42 - 12 + 1 and r["copies"] == 2
    assert r["share"] == pytest.approx(2 / 31)
    # One velocity different, one pitch different, or one gap 20 ms longer: no copy.
    for array, k, delta in ((v, 35, 1), (p, 40, 12)):
        changed = array.copy()
        changed[k] += delta
        args = (onsets, changed, v) if array is p else (onsets, p, changed)
        assert M.verbatim(*args)["copies"] == 0
    later = onsets.copy()
    later[36:] += 0.02
    assert M.verbatim(later, p, v)["copies"] == 0


def test_empty_and_short_performances_give_zero():
    empty = M.measure("empty", [], [], [])
    assert empty["notes"] == 0 and empty["top_notes"] == 0
    assert empty["k5"]["share_windows"] == 0.0 and empty["k3"]["share_distinct"] == 0.0
    assert empty["verbatim"] == {"windows": 0, "copies": 0, "share": 0.0}
    short = M.measure("short", [0.0, 0.5, 1.0, 1.5], [60, 62, 60, 62], [64] * 4)
    assert short["top_notes"] == 4 and short["k5"]["windows"] == 0 and short["k5"]["share_windows"] == 0.0
    assert short["k3"]["windows"] == 1 and short["k3"]["share_windows"] == 0.0  # one window cannot recur
    assert short["verbatim"]["share"] == 0.0
    assert M.motifs([60], 1) == [] and M.top_line([], []).shape == (0,)
    agg = M.aggregate([empty, short])
    assert agg["performances"] == 2 and agg["k5"]["windows"]["mean"] == 0.0 and agg["verbatim"]["pooled"] == 0.0


def test_only_the_first_seconds_count():
    onsets = np.arange(40) * 0.5  # 20 s of one figure over and over
    pitches = np.tile(FIGURE, 7)[:40]
    m = M.measure("x", onsets, pitches, np.full(40, 64), seconds=3.0)  # onsets 0 .. 2.5 s: six notes
    assert m["notes"] == 6 and m["k5"]["windows"] == 1 and m["k5"]["share_windows"] == 0.0
    assert M.measure("x", onsets, pitches, np.full(40, 64), seconds=None)["notes"] == 40


def test_a_midi_file_is_read(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=480)  # 120 BPM: 480 ticks = 0.5 s
    track = mido.MidiTrack()
    mid.tracks.append(track)
    for k, pitch in enumerate(FIGURE * 2):
        track.append(mido.Message("note_on", note=pitch, velocity=40 + k, time=0))
        track.append(mido.Message("note_on", note=pitch - 12, velocity=30, time=0))  # an octave below
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=240))
        track.append(mido.Message("note_off", note=pitch - 12, velocity=0, time=240))
    path = tmp_path / "figure.mid"
    mid.save(path)
    onsets, pitches, velocities = M.notes_of(path)
    assert len(onsets) == 24
    m = M.measure("figure.mid", onsets, pitches, velocities)
    # Top line: the figure twice (the join is -4), so of the 7 windows only the first and last recur.
    assert m["top_notes"] == 12 and m["k5"]["windows"] == 7
    assert m["k5"]["share_windows"] == pytest.approx(2 / 7)
    assert m["verbatim"]["windows"] == 13 and m["verbatim"]["share"] == 0.0  # every velocity differs


@pytest.mark.skipif(not M.MAESTRO_CSV.exists(), reason=f"{M.MAESTRO_CSV} not there")
def test_a_real_performance_recurs_somewhat_and_copies_nothing():
    files = M.validation_files(M.MAESTRO_CSV)
    assert len(files) == 137
    m = M.measure(files[0].name, *M.notes_of(files[0]))
    assert m["top_notes"] > 50
    assert 0.0 < m["k5"]["share_windows"] < 1.0 and m["k3"]["share_windows"] >= m["k5"]["share_windows"]
    assert m["verbatim"]["share"] == 0.0
