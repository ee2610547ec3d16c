"""The Python MusicState and density bins against the vectors the Rust side writes."""

import json
import os

import numpy as np
import pytest

from pianoforte_train import vocab as V
from pianoforte_train.state import MusicState

VECTORS = os.path.join(os.path.dirname(V.SPEC_PATH), "vectors.json")


def load_vectors():
    if not os.path.exists(VECTORS):
        return {}
    with open(VECTORS) as f:
        return json.load(f)


VEC = load_vectors()
needs_vectors = pytest.mark.skipif(not VEC, reason=f"{VECTORS} not written yet (by the Rust side)")


def on(pitch):
    return V.NOTE_ON + pitch - V.MIN_PITCH


def off(pitch):
    return V.NOTE_OFF + pitch - V.MIN_PITCH


def shift(steps):
    return V.TIME_SHIFT - 1 + steps


def snapshot(s: MusicState) -> dict:
    return {"step": s.step, "velocity_bin": s.velocity_bin, "pedal": s.pedal, "last_onset_step": s.last_onset_step,
            "keys": s.key_list()}


@needs_vectors
@pytest.mark.parametrize("case", VEC.get("music_state", []), ids=lambda c: c["name"])
def test_music_state_vectors(case):
    s = MusicState()
    assert len(case["states"]) == len(case["tokens"])
    for i, (token, want) in enumerate(zip(case["tokens"], case["states"], strict=True)):
        s.apply(token)
        assert snapshot(s) == want, f"after token {i} ({token})"


@needs_vectors
@pytest.mark.parametrize("k", range(len(VEC.get("density", []))))
def test_density_vectors(k):
    case = VEC["density"][k]
    assert V.density_bins(np.array(case["tokens"], dtype=np.int64)).tolist() == case["bins"]


@needs_vectors
def test_vectors_cover_the_rules():
    """The vectors exercise every rule (else agreement with them proves little)."""
    tokens = np.array([t for c in VEC["music_state"] for t in c["tokens"]])
    for lo, hi in [(V.NOTE_ON, V.NOTE_OFF), (V.NOTE_OFF, V.TIME_SHIFT), (V.TIME_SHIFT, V.VELOCITY),
                   (V.VELOCITY, V.PEDAL_DOWN), (V.PEDAL_DOWN, V.PEDAL_UP), (V.PEDAL_UP, V.VOCAB_SIZE)]:
        assert ((tokens >= lo) & (tokens < hi)).any(), f"no event with id in {lo}..{hi}"
    guard = False
    for c in VEC["music_state"]:
        for before, after, t in zip(c["states"][:-1], c["states"][1:], c["tokens"][1:], strict=True):
            guard |= V.is_shift(np.array(t)) and len(after["keys"]) < len(before["keys"])
    assert guard, "no vector releases a key by the stuck-note guard"


def test_initial_state():
    s = MusicState()
    assert snapshot(s) == {"step": 0, "velocity_bin": V.INITIAL_VELOCITY_BIN, "pedal": False,
                           "last_onset_step": None, "keys": []}


def test_notes_velocity_pedal():
    s = MusicState()
    for t in [V.VELOCITY + 7, on(60), shift(30), V.PEDAL_DOWN, on(64), off(60), off(61)]:
        s.apply(t)
    assert snapshot(s) == {"step": 30, "velocity_bin": 7, "pedal": True, "last_onset_step": 30,
                           "keys": [[64, 30, 7]]}
    s.apply(V.PEDAL_UP)
    assert not s.pedal


def test_repeated_note_on_restarts_the_note():
    s = MusicState()
    for t in [V.VELOCITY + 3, on(60), shift(50), V.VELOCITY + 9, on(60)]:
        s.apply(t)
    assert s.key_list() == [[60, 50, 9]]
    # the guard now counts from the second onset
    for _ in range(V.MAX_NOTE_STEPS // V.MAX_SHIFT_STEPS):
        s.apply(shift(V.MAX_SHIFT_STEPS))
    assert s.key_list() == []


def test_stuck_note_guard_boundary():
    s = MusicState()
    s.apply(on(21))
    s.apply(shift(1))
    s.apply(on(108))
    while s.step < V.MAX_NOTE_STEPS:
        s.apply(shift(1))
    # onset 0 + MAX_NOTE_STEPS <= step: released; onset 1 still held
    assert s.key_list() == [[108, 1, V.INITIAL_VELOCITY_BIN]] and s.last_onset_step == 1
    s.apply(shift(1))
    assert s.key_list() == []


def test_start_token_is_not_an_event():
    with pytest.raises(ValueError):
        MusicState().apply(V.START)


def test_velocity_tables_agree():
    assert len(V.BIN_OF_MIDI) == 128 and len(V.MIDI_OF_BIN) == V.VELOCITY_BINS
    assert V.BIN_OF_MIDI[0] == V.BIN_OF_MIDI[1] == 0 and V.BIN_OF_MIDI[127] == V.VELOCITY_BINS - 1
    assert all(V.BIN_OF_MIDI[V.MIDI_OF_BIN[b]] == b for b in range(V.VELOCITY_BINS))
    assert list(V.BIN_OF_MIDI) == sorted(V.BIN_OF_MIDI)
