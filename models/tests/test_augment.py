import numpy as np
import pytest

from pianoforte_train import vocab as V
from pianoforte_train.data import augment, canonical_velocities, encode, synthetic_doc, time_stretch, transpose

ON, OFF = V.NOTE_ON, V.NOTE_OFF


def shift(steps):
    return V.TIME_SHIFT - 1 + steps


def doc(seed=0, n=400):
    return synthetic_doc(np.random.default_rng(seed), n)[0]


def abs_events(tokens):
    """(time, token) of every non-shift event."""
    t = V.event_times(tokens)
    m = ~V.is_shift(tokens)
    return t[m], tokens[m]


def test_transpose_drops_out_of_range_notes_on_and_off():
    v = V.VELOCITY + 10
    s = np.array([v, ON + 0, v, ON + 87, shift(50), OFF + 0, V.PEDAL_DOWN, OFF + 87, shift(3)])
    up = transpose(s, 1)  # pitch 108 leaves the range
    assert up.tolist() == [v, ON + 1, v, shift(50), OFF + 1, V.PEDAL_DOWN, shift(3)]
    down = transpose(s, -1)  # pitch 21 leaves the range
    assert down.tolist() == [v, v, ON + 86, shift(50), V.PEDAL_DOWN, OFF + 86, shift(3)]


def test_canonical_velocities_drop_orphans_and_repeats():
    """After a transposition drops a note, its VELOCITY goes too, and a VELOCITY that now repeats
    the bin in effect (the codec writes only changes) goes as well; the first one always stays."""
    v, w = V.VELOCITY + 10, V.VELOCITY + 20
    s = np.array([v, ON + 5, w, shift(3), v, ON + 6, v, ON + 7, PEDAL := V.PEDAL_DOWN])
    assert canonical_velocities(s).tolist() == [v, ON + 5, shift(3), ON + 6, ON + 7, PEDAL]
    assert canonical_velocities(np.array([V.VELOCITY + V.INITIAL_VELOCITY_BIN, ON])).tolist() == [
        V.VELOCITY + V.INITIAL_VELOCITY_BIN, ON]
    d = doc(4)
    assert np.array_equal(canonical_velocities(d), d), "synthetic documents are canonical already"


@pytest.mark.parametrize("k", range(-4, 5))
def test_transpose_keeps_pairs_and_time(k):
    d = doc(k + 10)
    out = transpose(d, k)
    on, off = out[out < OFF], out[(out >= OFF) & (out < V.TIME_SHIFT)]
    assert on.min() >= 0 and on.max() < V.N_PITCHES and off.min() >= OFF and off.max() < V.TIME_SHIFT
    # each surviving pitch keeps as many ONs as OFFs, and it is the original pitch + k
    assert np.array_equal(np.bincount(on, minlength=V.N_PITCHES), np.bincount(off - OFF, minlength=V.N_PITCHES))
    orig = d[d < OFF] + k
    assert np.array_equal(np.sort(on), np.sort(orig[(orig >= 0) & (orig < V.N_PITCHES)]))
    # non-note tokens untouched, total time unchanged
    assert np.array_equal(out[out >= V.TIME_SHIFT], d[d >= V.TIME_SHIFT])


@pytest.mark.parametrize("factor", [0.95, 0.97311, 1.0001, 1.05])
def test_time_stretch_requantises_without_drift(factor):
    d = doc(3, 800)
    out = time_stretch(d, factor)
    t0, e0 = abs_events(d)
    t1, e1 = abs_events(out)
    assert np.array_equal(e0, e1)  # same events, same order
    assert np.array_equal(t1, np.floor(t0 * factor + 0.5).astype(np.int64))
    end0, end1 = V.shift_steps(d).sum(), V.shift_steps(out).sum()
    assert end1 == int(np.floor(end0 * factor + 0.5))
    # canonical shifts: between two events, only 100-step shifts then at most one remainder
    steps = V.shift_steps(out)
    runs = np.split(steps, np.flatnonzero(~V.is_shift(out)))
    for r in runs:
        r = r[r > 0]
        assert (r[:-1] == 100).all() if len(r) else True


def test_long_gaps_longest_first():
    s = np.array([ON + 40, shift(100), shift(100), shift(100), shift(45), OFF + 40])
    out = time_stretch(s, 1.0 + 1e-12)
    assert out.tolist() == s.tolist()
    out = time_stretch(s, 1.05)  # 345 * 1.05 = 362.25 -> 362
    assert out.tolist() == [ON + 40, shift(100), shift(100), shift(100), shift(62), OFF + 40]


def test_identity():
    d = doc(5)
    assert augment(d, 0, 1.0) is d
    # the re-derivation itself is the identity on canonical streams
    assert np.array_equal(time_stretch(d, 1.0 + 1e-12), d)
    t, e = abs_events(d)
    assert np.array_equal(encode(t, e, V.shift_steps(d).sum()), d)
    assert np.array_equal(transpose(d, 0), d)


def test_augment_long_document():
    """A long performance (~50k tokens, ~50 min): no drift even far from the start, and a crop's
    control counts the notes of the whole augmented document around it, not only the crop's."""
    d = doc(7, 15000)
    out = augment(d, 3, 1.03)
    t0, e0 = abs_events(canonical_velocities(transpose(d, 3)))
    t1, e1 = abs_events(out)
    assert t0[-1] > 250_000 and np.array_equal(e0, e1)
    assert np.array_equal(t1, np.floor(t0 * 1.03 + 0.5).astype(np.int64))
    crop = slice(1000, 1512)
    assert np.array_equal(V.density_bins(out, crop), V.density_bins(out)[crop])
    assert not np.array_equal(V.density_bins(out, crop), V.density_bins(out[crop]))
