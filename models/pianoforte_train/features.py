"""Model inputs derived from the events (model format 2): the music-state features, the key
control and the grammar mask; and (model format 3) the beat features.

Layouts come from docs/spec/events.json (``state_features``, ``key_control``), which the Rust
codec writes (``src/codec/features.rs``); tests/test_features.py checks both implementations here
(the step-by-step reference and the vectorised one used for training crops) against the Rust
side's vectors in docs/spec/vectors.json.

State features at step t describe the music state after every event before the target ``y[t]``
(so after the input ``x[t]``): keys down (88 bits, with the 5 s stuck-note guard), pedal, the
current velocity bin (one-hot) and the time since the last NOTE_ON (bucketed).

The grammar: what can follow in a stream the codec writes (docs/events.md). Forbidden are
  * after a VELOCITY: everything but a NOTE_ON (a VELOCITY is only written before a NOTE_ON);
  * NOTE_ON of a key that is down; NOTE_OFF of a key that is neither down nor "due" (released by
    the stuck-note guard, its NOTE_OFF not seen yet);
  * a TIME_SHIFT right after a TIME_SHIFT shorter than the longest (gaps are written longest first);
  * a VELOCITY equal to the current bin once a NOTE_ON has been played (only changes are written);
  * PEDAL down while down, PEDAL up while up.

Beat features (format 3; layout ``beat_features`` in the spec, semantics ``src/codec/beats.rs``):
where a moment lies in the beat and the bar of an annotated beat grid, one-hot: a no-beat flag
(free time: before the first beat, from the last beat on, or no grid), the 24th of the beat, the
beat in the bar, the beats in the bar and the beat period's bucket. Integer arithmetic only, so
the bits are the Rust engine's (tests/test_beats.py checks the shared vectors).
"""

from __future__ import annotations

import numpy as np

from . import vocab as V
from .state import MusicState

_SF = V.SPEC["state_features"]
STATE_SIZE = _SF["size"]
KEYS_OFFSET = _SF["keys_down"]["offset"]
PEDAL_OFFSET = _SF["pedal"]["offset"]
VELOCITY_OFFSET = _SF["velocity_bin"]["offset"]
SINCE_OFFSET = _SF["since_onset"]["offset"]
SINCE_EDGES = np.asarray(_SF["since_onset"]["edges_steps"], dtype=np.int64)
SINCE_NONE = _SF["since_onset"]["none_index"]
_KC = V.SPEC["key_control"]
KEY_SIZE = _KC["size"]
KEY_HALF_WINDOW = _KC["half_window_steps"]

if not (
    _SF["keys_down"]["size"] == V.N_PITCHES
    and _SF["velocity_bin"]["size"] == V.VELOCITY_BINS
    and _SF["since_onset"]["size"] == len(SINCE_EDGES) + 2 == SINCE_NONE + 1
    and KEYS_OFFSET + V.N_PITCHES == PEDAL_OFFSET
    and PEDAL_OFFSET + 1 == VELOCITY_OFFSET
    and VELOCITY_OFFSET + V.VELOCITY_BINS == SINCE_OFFSET
    and SINCE_OFFSET + SINCE_NONE + 1 == STATE_SIZE
    and KEY_SIZE == 12
):
    raise RuntimeError(f"pianoforte_train: {V.SPEC_PATH}: unexpected state-feature layout")

_BF = V.SPEC["beat_features"]
BEAT_SIZE = _BF["size"]
NO_BEAT_OFFSET = _BF["no_beat"]["offset"]
PHASE_OFFSET, PHASE_BINS = _BF["phase"]["offset"], _BF["phase"]["size"]
BEAT_IN_BAR_OFFSET, BEAT_IN_BAR_SIZE = _BF["beat_in_bar"]["offset"], _BF["beat_in_bar"]["size"]
METER_OFFSET, METER_SIZE = _BF["meter"]["offset"], _BF["meter"]["size"]
PERIOD_OFFSET = _BF["period"]["offset"]
PERIOD_EDGES = np.asarray(_BF["period"]["edges_steps"], dtype=np.int64)
# Steps to the next beat, quarter and third of a beat: (offset, size, parts of the beat).
TO_PARTS = [(_BF[k]["offset"], _BF[k]["size"], _BF[k].get("parts", 1)) for k in ("to_beat", "to_quarter", "to_third")]

if not (
    _BF["no_beat"]["size"] == 1
    and _BF["period"]["size"] == len(PERIOD_EDGES) + 1
    and (np.diff(PERIOD_EDGES) > 0).all()
    and min(PHASE_BINS, BEAT_IN_BAR_SIZE, METER_SIZE) >= 1
    and max(NO_BEAT_OFFSET + 1, PHASE_OFFSET + PHASE_BINS, BEAT_IN_BAR_OFFSET + BEAT_IN_BAR_SIZE,
            METER_OFFSET + METER_SIZE, PERIOD_OFFSET + len(PERIOD_EDGES) + 1,
            *(offset + size for offset, size, _ in TO_PARTS)) == BEAT_SIZE
):
    raise RuntimeError(f"pianoforte_train: {V.SPEC_PATH}: unexpected beat-feature layout")

_SHIFTS = slice(V.TIME_SHIFT, V.VELOCITY)


def since_bucket(steps: np.ndarray | int) -> np.ndarray:
    """Steps since the last NOTE_ON -> bucket (number of edges <= steps)."""
    return np.searchsorted(SINCE_EDGES, steps, side="right")


# ------------------------------------------------------------ reference (step by step)
class Grammar:
    """The music state plus what the grammar needs (the previous event, the keys the guard
    released whose NOTE_OFF is still to come), fed one event at a time."""

    def __init__(self):
        self.state = MusicState()
        self.due: set[int] = set()
        self.prev: int | None = None

    def apply(self, token: int) -> None:
        t = int(token)
        before = set(self.state.keys)
        self.state.apply(t)
        if V.TIME_SHIFT <= t < V.VELOCITY:
            self.due |= before - set(self.state.keys)
        elif t < V.TIME_SHIFT:
            self.due.discard(V.MIN_PITCH + (t if t < V.NOTE_OFF else t - V.NOTE_OFF))
        self.prev = t

    def features(self) -> np.ndarray:
        s = self.state
        v = np.zeros(STATE_SIZE, dtype=np.float32)
        for p in s.keys:
            v[KEYS_OFFSET + p - V.MIN_PITCH] = 1.0
        v[PEDAL_OFFSET] = float(s.pedal)
        v[VELOCITY_OFFSET + s.velocity_bin] = 1.0
        b = SINCE_NONE if s.last_onset_step is None else int(since_bucket(s.step - s.last_onset_step))
        v[SINCE_OFFSET + b] = 1.0
        return v

    def allowed(self) -> np.ndarray:
        s, a = self.state, np.ones(V.VOCAB_SIZE, dtype=bool)
        for p in s.keys:
            a[V.NOTE_ON + p - V.MIN_PITCH] = False
        a[V.NOTE_OFF : V.TIME_SHIFT] = False
        for p in set(s.keys) | self.due:
            a[V.NOTE_OFF + p - V.MIN_PITCH] = True
        prev = self.prev
        if prev is not None and V.VELOCITY <= prev < V.PEDAL_DOWN:
            a[V.NOTE_OFF :] = False
            return a
        if prev is not None and V.TIME_SHIFT <= prev < V.SHIFT_MAX:
            a[_SHIFTS] = False
        if s.last_onset_step is not None:
            a[V.VELOCITY + s.velocity_bin] = False
        a[V.PEDAL_DOWN if s.pedal else V.PEDAL_UP] = False
        return a


# ------------------------------------------------------------ vectorised (training crops)
def _last_index(mask: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """For each k in ks (-1 allowed): the largest j <= k with mask[j], or -1."""
    idx = np.where(mask, np.arange(len(mask)), -1)
    li = np.concatenate([[-1], np.maximum.accumulate(idx) if len(idx) else idx])
    return li[ks + 1]


def crop_inputs(tokens: np.ndarray, start: int, n: int, mask: bool = True):
    """Inputs for the targets ``tokens[start:start+n]`` of one document (history = the document).

    Returns (state [n, STATE_SIZE] float32, key [n, 12] float32 (histogram, not dropped),
    allowed [n, VOCAB_SIZE] bool or None).
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    steps = V.shift_steps(tokens)
    after = np.cumsum(steps)  # clock after token j
    P = start + n - 1  # the states needed are after tokens 0..P-1 (k = start-1+t)
    pre = tokens[:P]
    ks = np.arange(start - 1, start - 1 + n)
    clock = np.where(ks >= 0, after[np.maximum(ks, 0)] if len(after) else 0, 0)

    li_ped = _last_index((pre == V.PEDAL_DOWN) | (pre == V.PEDAL_UP), ks)
    pedal = (li_ped >= 0) & (tokens[np.maximum(li_ped, 0)] == V.PEDAL_DOWN)
    li_vel = _last_index((pre >= V.VELOCITY) & (pre < V.PEDAL_DOWN), ks)
    vel = np.where(li_vel >= 0, tokens[np.maximum(li_vel, 0)] - V.VELOCITY, V.INITIAL_VELOCITY_BIN)
    li_on = _last_index(pre < V.NOTE_OFF, ks)
    since = np.where(li_on >= 0, since_bucket(clock - after[np.maximum(li_on, 0)]), SINCE_NONE)

    # keys down / due: one interval of state indices k per NOTE_ON
    pos = np.flatnonzero(pre < V.TIME_SHIFT)
    ev = pre[pos]
    is_on = ev < V.NOTE_OFF
    pitch = np.where(is_on, ev, ev - V.NOTE_OFF)
    order = np.lexsort((pos, pitch))
    sp, spos, son = pitch[order], pos[order], is_on[order]
    nxt = np.full(len(sp), P, dtype=np.int64)
    same = sp[1:] == sp[:-1]
    nxt[:-1][same] = spos[1:][same]
    on_pos, on_p, on_next = spos[son], sp[son], nxt[son]
    guard = np.searchsorted(after[:P], after[on_pos] + V.MAX_NOTE_STEPS, side="left")
    down_end = np.minimum(on_next, guard)

    def fill(a, b, p):
        ta = np.clip(a - start + 1, 0, n)
        tb = np.clip(b - start + 1, 0, n)
        m = ta < tb
        d = np.zeros((n + 1, V.N_PITCHES), dtype=np.int16)
        np.add.at(d, (ta[m], p[m]), 1)
        np.add.at(d, (tb[m], p[m]), -1)
        return np.cumsum(d[:n], axis=0) > 0

    down = fill(on_pos, down_end, on_p)

    rows = np.arange(n)
    state = np.zeros((n, STATE_SIZE), dtype=np.float32)
    state[:, KEYS_OFFSET : KEYS_OFFSET + V.N_PITCHES] = down
    state[:, PEDAL_OFFSET] = pedal
    state[rows, VELOCITY_OFFSET + vel] = 1.0
    state[rows, SINCE_OFFSET + since] = 1.0

    key = key_histograms(tokens, start, n)

    if not mask:
        return state, key, None
    due = fill(guard, on_next, on_p)
    prev = np.where(ks >= 0, tokens[np.maximum(ks, 0)], V.START)
    allowed = np.ones((n, V.VOCAB_SIZE), dtype=bool)
    allowed[:, V.NOTE_ON : V.NOTE_OFF] = ~down
    allowed[:, V.NOTE_OFF : V.TIME_SHIFT] = down | due
    short = (prev >= V.TIME_SHIFT) & (prev < V.SHIFT_MAX)
    allowed[short, _SHIFTS] = False
    played = li_on >= 0
    allowed[rows[played], V.VELOCITY + vel[played]] = False
    allowed[pedal, V.PEDAL_DOWN] = False
    allowed[~pedal, V.PEDAL_UP] = False
    after_vel = (prev >= V.VELOCITY) & (prev < V.PEDAL_DOWN)
    allowed[after_vel, V.NOTE_OFF :] = False
    return state, key, allowed


def key_histograms(tokens: np.ndarray, start: int = 0, n: int | None = None) -> np.ndarray:
    """Pitch-class histogram (C = 0, sums to 1) of the NOTE_ONs whose time lies in
    [t - half, t + half) around the time t of each event ``start .. start+n``; zeros if none."""
    tokens = np.asarray(tokens, dtype=np.int64)
    n = len(tokens) - start if n is None else n
    times = V.event_times(tokens)
    on = np.flatnonzero(tokens < V.NOTE_OFF)
    on_t = times[on]
    pc = (tokens[on] + V.MIN_PITCH) % 12
    c = np.zeros((len(on) + 1, 12), dtype=np.float64)
    c[1:] = np.cumsum(np.eye(12)[pc], axis=0)
    t = times[start : start + n]
    hi = np.searchsorted(on_t, t + KEY_HALF_WINDOW, side="left")
    h = c[hi] - c[np.searchsorted(on_t, t - KEY_HALF_WINDOW, side="left")]
    tot = h.sum(1, keepdims=True)
    return np.where(tot > 0, h / np.maximum(tot, 1), 0.0).astype(np.float32)


# ------------------------------------------------------------ beats (format 3)
def beat_grid(beats) -> tuple[np.ndarray, np.ndarray]:
    """``[[step, downbeat], ...]`` -> (steps int64, downbeat bool), sorted by step (stable); of
    beats on the same step the first is kept (Rust ``BeatGrid::new``)."""
    b = np.asarray(beats if beats is not None else [], dtype=np.int64).reshape(-1, 2)
    b = b[np.argsort(b[:, 0], kind="stable")]
    keep = np.ones(len(b), dtype=bool)
    keep[1:] = b[1:, 0] != b[:-1, 0]
    return b[keep, 0], b[keep, 1] != 0


def beat_bars(down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each beat's index in its bar and the bar's length in beats (-1: unknown), as Rust's
    ``BeatGrid::bar_of``: a bar cut off by the first or last downbeat takes the length of the
    nearest whole bar (before it, else after it); a pickup's beats count back from the first
    downbeat."""
    n = len(down)
    d = np.flatnonzero(down)  # the downbeats' beat indices
    i = np.arange(n)
    jp = np.searchsorted(d, i, side="right") - 1  # index in d of the last downbeat <= i (-1: none)
    jn = jp + 1  # index in d of the first downbeat > i (len(d): none)
    has_p, has_n = jp >= 0, jn < len(d)
    prev = np.where(has_p, d[np.clip(jp, 0, None)] if len(d) else 0, -1)
    nxt = np.where(has_n, d[np.clip(jn, None, len(d) - 1)] if len(d) else 0, -1)
    gaps = np.diff(d)  # whole bars: gaps[j] = d[j+1] - d[j]
    before = np.where(jp >= 1, gaps[np.clip(jp - 1, 0, None)] if len(gaps) else 0, -1)  # the bar before prev
    after = np.full(n, gaps[0] if len(gaps) else -1)  # the bar after the first downbeat (= next, no prev)
    per_bar = np.where(has_p & has_n, nxt - prev, np.where(has_p, before, np.where(has_n, after, -1)))
    pickup = ~has_p & has_n & (per_bar > 0)
    in_bar = np.where(has_p, i - prev, -1)
    in_bar[pickup] = np.mod(per_bar[pickup] - (nxt[pickup] - i[pickup]), per_bar[pickup])
    return in_bar, per_bar


def beat_features(steps, beats) -> np.ndarray:
    """The beat features [len(steps), BEAT_SIZE] float32 at each step (10 ms clock) of the beat
    grid ``beats`` (``[[step, downbeat], ...]``; None or empty: no beats, free time throughout).

    At step s: i = the last beat at or before s; free time (the no-beat flag) if there is none or
    i is the last beat. Else period = the next beat's step - beat i's, phase bin =
    (s - beat i) * PHASE_BINS // period, beat i's place in its bar (``beat_bars``), and the steps
    to the next beat, quarter and third of it (the d-th parts begin at j * period // d)."""
    steps = np.asarray(steps, dtype=np.int64).reshape(-1)
    out = np.zeros((len(steps), BEAT_SIZE), dtype=np.float32)
    b_steps, down = beat_grid(beats)
    i = np.searchsorted(b_steps, steps, side="right") - 1
    on = (i >= 0) & (i < len(b_steps) - 1)
    out[~on, NO_BEAT_OFFSET] = 1.0
    if not on.any():
        return out
    rows, i = np.flatnonzero(on), i[on]
    period = b_steps[i + 1] - b_steps[i]  # >= 1: no two beats share a step
    since = steps[on] - b_steps[i]
    out[rows, PHASE_OFFSET + since * PHASE_BINS // period] = 1.0
    in_bar, per_bar = beat_bars(down)
    in_bar, per_bar = in_bar[i], per_bar[i]
    k = in_bar >= 0
    out[rows[k], BEAT_IN_BAR_OFFSET + np.minimum(in_bar[k], BEAT_IN_BAR_SIZE - 1)] = 1.0
    k = per_bar > 0
    out[rows[k], METER_OFFSET + np.minimum(per_bar[k], METER_SIZE) - 1] = 1.0
    out[rows, PERIOD_OFFSET + np.searchsorted(PERIOD_EDGES, period, side="right")] = 1.0
    for offset, size, parts in TO_PARTS:
        out[rows, offset + np.minimum(steps_to_part(since, period, parts), size - 1)] = 1.0
    return out


def steps_to_part(since: np.ndarray, period: np.ndarray, parts: int) -> np.ndarray:
    """Steps from ``since`` (steps after the beat) to the first of the beat's ``parts`` equal
    parts that begins at or after it (the j-th begins at j * period // parts)."""
    starts = np.arange(parts + 1)[None, :] * period[:, None] // parts
    gaps = starts - since[:, None]
    return np.where(gaps >= 0, gaps, np.iinfo(np.int64).max).min(axis=1)


def no_beat(n: int) -> np.ndarray:
    """``n`` rows of free time: [n, BEAT_SIZE] float32, the no-beat flag set."""
    out = np.zeros((n, BEAT_SIZE), dtype=np.float32)
    out[:, NO_BEAT_OFFSET] = 1.0
    return out


# ------------------------------------------------------------ keys (24 major/minor)
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Krumhansl-Kessler key profiles (tonic first), used only to label training windows with a key.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def key_names() -> list[str]:
    return [f"{p} {m}" for m in ("major", "minor") for p in PITCH_NAMES]


def key_correlations(hist: np.ndarray) -> np.ndarray:
    """[..., 12] histograms -> [..., 24] correlations with the 24 rotated KK profiles
    (index = mode * 12 + tonic, mode 0 major, 1 minor)."""
    profiles = np.stack([np.roll(prof, tonic) for prof in (KK_MAJOR, KK_MINOR) for tonic in range(12)])
    h = hist - hist.mean(-1, keepdims=True)
    p = profiles - profiles.mean(-1, keepdims=True)
    num = h @ p.T
    den = np.sqrt((h**2).sum(-1, keepdims=True) * (p**2).sum(-1)[None]) + 1e-12
    return num / den


def measure_key_vectors(split, stride_steps: int = 400, min_notes: int = 8, min_clarity: float = 0.0) -> dict:
    """The control vector of each of the 24 keys, measured on a token split: every window
    (centred, the key control's width, every ``stride_steps``, at least ``min_notes`` onsets) is
    labelled with its best-matching key (Krumhansl-Kessler correlation, kept if at least
    ``min_clarity``); windows are rotated to tonic C and averaged per mode; key k's vector is its
    mode's mean rotated to k. Returns {"names": [...24], "vectors": [[12] x 24], "windows":
    [major, minor], "min_clarity": ...}."""
    sums = np.zeros((2, 12))
    counts = np.zeros(2, dtype=np.int64)
    for i in range(len(split)):
        tokens = split.doc(i)
        times = V.event_times(tokens)
        on = np.flatnonzero(tokens < V.NOTE_OFF)
        if len(on) == 0:
            continue
        on_t = times[on]
        pc = (tokens[on] + V.MIN_PITCH) % 12
        c = np.zeros((len(on) + 1, 12))
        c[1:] = np.cumsum(np.eye(12)[pc], axis=0)
        centres = np.arange(0, int(times[-1]) + 1, stride_steps)
        h = c[np.searchsorted(on_t, centres + KEY_HALF_WINDOW)] - c[np.searchsorted(on_t, centres - KEY_HALF_WINDOW)]
        h = h[h.sum(1) >= min_notes]
        if not len(h):
            continue
        h = h / h.sum(1, keepdims=True)
        corr = key_correlations(h)
        clear = corr.max(-1) >= min_clarity
        h, best = h[clear], corr[clear].argmax(-1)
        mode, tonic = best // 12, best % 12
        for m in (0, 1):
            sel = mode == m
            if sel.any():
                rolled = np.stack([np.roll(row, -t) for row, t in zip(h[sel], tonic[sel], strict=True)])
                sums[m] += rolled.sum(0)
                counts[m] += int(sel.sum())
    means = sums / np.maximum(counts, 1)[:, None]
    vectors = [np.roll(means[m], t).round(5).tolist() for m in (0, 1) for t in range(12)]
    return {"names": key_names(), "vectors": vectors, "windows": counts.tolist(), "min_clarity": min_clarity}


def parse_key(name: str) -> int:
    """'D minor' / 'Eb major' / 'f# minor' -> index into key_names()."""
    parts = name.strip().split()
    if len(parts) != 2 or parts[1].lower() not in ("major", "minor"):
        raise ValueError(f"a key is a note name and major/minor, e.g. 'D minor', not {name!r}")
    aliases = {"DB": "C#", "D#": "Eb", "GB": "F#", "G#": "Ab", "A#": "Bb", "CB": "B", "E#": "F", "FB": "E", "B#": "C"}
    p = parts[0][0].upper() + parts[0][1:].upper().replace("♯", "#").replace("♭", "B")
    p = aliases.get(p, p)
    names = [n.upper() for n in PITCH_NAMES]
    if p not in names:
        raise ValueError(f"unknown note name {parts[0]!r}")
    return (12 if parts[1].lower() == "minor" else 0) + names.index(p)
