import numpy as np

from pianoforte_train import vocab as V
from pianoforte_train.data import synthetic_doc

ON, OFF = V.NOTE_ON, V.NOTE_OFF


def shift(steps):
    return V.TIME_SHIFT - 1 + steps


def brute_force(tokens):
    tokens = [int(t) for t in tokens]
    times, now = [], 0
    for t in tokens:
        times.append(now)
        if V.TIME_SHIFT <= t < V.VELOCITY:
            now += t - V.TIME_SHIFT + 1
    ons = [times[j] for j, t in enumerate(tokens) if t < OFF]
    half, seconds = V.DENSITY_HALF_WINDOW, V.DENSITY_WINDOW_SECONDS
    out = []
    for tk in times:
        d = sum(1 for tj in ons if tk - half <= tj < tk + half) / seconds
        out.append(sum(1 for e in V.DENSITY_EDGES if e <= d))
    return out


def test_hand_made_stream():
    """Worked by hand for vocabulary 1's edges and window (a change of these bumps the version)."""
    v = V.VELOCITY + 20
    s = (
        [v] + [ON + p for p in range(8)]  # 8 notes at t=0
        + [shift(100), shift(50)]  # -> t=150
        + [ON + p for p in range(10, 14)]  # 4 notes at t=150
        + [shift(100), shift(100)]  # -> t=350
        + [OFF + p for p in range(8)] + [ON + 20]  # 1 note at t=350
        + [shift(100), shift(100)]  # -> t=550
        + [ON + 30, V.PEDAL_DOWN]  # 1 note at t=550
    )
    s = np.array(s)
    times = V.event_times(s)
    assert len(s) == 30 and times[11] == 150 and times[17] == 350 and times[-1] == 550
    bins = V.density_bins(s)
    # t=0   (idx 0..9)  : ONs in [-200, 200) = 12 -> 3.0 notes/s -> edges 1,2,3 <= 3.0 -> bin 3
    # t=100 (idx 10)    : [-100, 300) = 12 -> bin 3
    # t=150 (idx 11..15): [-50, 350)  = 12 -> bin 3 (the note at 350 is excluded)
    # t=250 (idx 16)    : [50, 450)   = 5 -> 1.25 -> bin 1
    # t=350 (idx 17..26): [150, 550)  = 5 -> bin 1 (150 included, 550 excluded)
    # t=450 (idx 27)    : [250, 650)  = 2 -> 0.5 -> bin 0
    # t=550 (idx 28, 29): [350, 750)  = 2 -> bin 0
    expected = [3] * 16 + [1] * 11 + [0] * 3
    assert bins.tolist() == expected
    assert bins.tolist() == brute_force(s)
    # a shift token's time is before its own shift
    assert times[9] == 0 and times[10] == 100 and times[16] == 250


def test_edges_inclusive():
    # n notes at t=0 are n / window-seconds notes/s: exactly an edge falls into the bin above it
    for b, edge in enumerate(V.DENSITY_EDGES):
        n = int(edge * V.DENSITY_WINDOW_SECONDS)
        for notes, want in [(n - 1, b), (n, b + 1)]:
            s = np.array([ON + (k % V.N_PITCHES) for k in range(notes)])
            assert V.density_bins(s)[0] == want, (edge, notes)
    s = np.array([ON + (k % V.N_PITCHES) for k in range(10 * n)])
    assert V.density_bins(s)[0] == V.N_DENSITY_BINS - 1


def test_matches_brute_force_on_random_docs():
    for seed in range(4):
        d, _ = synthetic_doc(np.random.default_rng(seed), 150)
        assert V.density_bins(d).tolist() == brute_force(d)
        sl = slice(37, 99)
        assert np.array_equal(V.density_bins(d, sl), V.density_bins(d)[sl])


def test_control_vector():
    top = V.N_DENSITY_BINS - 1
    c = V.control_one_hot(np.array([0, top, V.NO_CONTROL]))
    assert c.shape == (3, V.CONTROL_SIZE) and c.dtype == np.float32
    assert c.sum(1).tolist() == [1, 1, 1] and c[2, V.NO_CONTROL] == 1 and c[1, top] == 1
