"""The event vocabulary and the note-density control, read from docs/spec/events.json.

The Rust codec is the single source of truth: it writes the spec file (and a Rust test keeps it
up to date), this module only derives the trainer's constants from it. No id or edge is typed
here. ``PIANOFORTE_SPEC`` overrides the path (e.g. for an installed, non-editable package).
"""

from __future__ import annotations

import json
import os

import numpy as np

# Vocabulary versions this trainer's code understands (its layout assumptions below).
KNOWN_VERSIONS = (1,)

SPEC_PATH = os.environ.get("PIANOFORTE_SPEC") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "spec", "events.json")
)


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise RuntimeError(
            f"pianoforte_train: the event spec {path} is missing; it is written by the Rust side "
            "(docs/spec/events.json in the repository); set PIANOFORTE_SPEC to its path"
        ) from None
    version = spec.get("vocabulary", {}).get("version")
    if version not in KNOWN_VERSIONS:
        raise RuntimeError(
            f"pianoforte_train: {path} has vocabulary version {version}; this trainer knows {KNOWN_VERSIONS}"
        )
    return spec


SPEC = _load(SPEC_PATH)
_voc, _den, _state = SPEC["vocabulary"], SPEC["density"], SPEC["music_state"]

VOCABULARY_VERSION = _voc["version"]
NOTE_ON = _voc["note_on_offset"]  # NOTE_ON  pitch MIN_PITCH + (id - NOTE_ON)
NOTE_OFF = _voc["note_off_offset"]  # NOTE_OFF pitch MIN_PITCH + (id - NOTE_OFF)
TIME_SHIFT = _voc["time_shift_offset"]  # TIME_SHIFT of (id - TIME_SHIFT + 1) steps
VELOCITY = _voc["velocity_offset"]  # velocity bin (id - VELOCITY)
PEDAL_DOWN = _voc["pedal_down"]
PEDAL_UP = _voc["pedal_up"]
VOCAB_SIZE = _voc["size"]  # events the model predicts
START = _voc["start_token"]  # input-only token
EMBED_SIZE = _voc["embed_size"]

MIN_PITCH, MAX_PITCH = _voc["min_pitch"], _voc["max_pitch"]
N_PITCHES = MAX_PITCH - MIN_PITCH + 1
VELOCITY_BINS = _voc["velocity_bins"]
MAX_SHIFT_STEPS = _voc["max_shift_steps"]
SHIFT_MAX = TIME_SHIFT + MAX_SHIFT_STEPS - 1  # the longest TIME_SHIFT
STEPS_PER_SECOND = _voc["steps_per_second"]

BIN_OF_MIDI = tuple(SPEC["velocity"]["bin_of_midi"])  # MIDI velocity 0..127 -> bin
MIDI_OF_BIN = tuple(SPEC["velocity"]["midi_of_bin"])  # bin -> MIDI velocity it decodes to

MAX_NOTE_STEPS = _state["max_note_steps"]  # stuck-note guard
INITIAL_VELOCITY_BIN = _state["initial_velocity_bin"]

# ---- control: note density ------------------------------------------------
DENSITY_EDGES = tuple(_den["edges"])  # notes/s
DENSITY_HALF_WINDOW = _den["half_window_steps"]  # window is [t - half, t + half)
DENSITY_WINDOW_SECONDS = _den["window_seconds"]
N_DENSITY_BINS = _den["bins"]
CONTROL_SIZE = _den["control_size"]
NO_CONTROL = _den["no_control_index"]

# The code below (and data.py) tells events apart by comparing ids with the offsets, so the
# ids must be contiguous ranges in this order; fail here rather than train on a misread spec.
if not (
    NOTE_ON == 0
    and NOTE_OFF == NOTE_ON + N_PITCHES
    and TIME_SHIFT == NOTE_OFF + N_PITCHES
    and VELOCITY == TIME_SHIFT + MAX_SHIFT_STEPS
    and PEDAL_DOWN == VELOCITY + VELOCITY_BINS
    and PEDAL_UP == PEDAL_DOWN + 1 == VOCAB_SIZE - 1
    and START == VOCAB_SIZE
    and EMBED_SIZE == START + 1
    and N_DENSITY_BINS == len(DENSITY_EDGES) + 1 == NO_CONTROL == CONTROL_SIZE - 1
    and DENSITY_WINDOW_SECONDS == 2 * DENSITY_HALF_WINDOW / STEPS_PER_SECOND
):
    raise RuntimeError(f"pianoforte_train: {SPEC_PATH} breaks the layout of vocabulary {VOCABULARY_VERSION}")

_EDGES = np.asarray(DENSITY_EDGES, dtype=np.float64)


def is_shift(tokens: np.ndarray) -> np.ndarray:
    return (tokens >= TIME_SHIFT) & (tokens < VELOCITY)


def shift_steps(tokens: np.ndarray) -> np.ndarray:
    """Number of steps each token advances (0 for non-shift tokens)."""
    t = tokens.astype(np.int64)
    return np.where(is_shift(tokens), t - (TIME_SHIFT - 1), 0)


def event_times(tokens: np.ndarray) -> np.ndarray:
    """Time of every event in steps: sum of TIME_SHIFT steps strictly before it."""
    steps = shift_steps(tokens)
    return np.cumsum(steps) - steps


def density_bins(tokens: np.ndarray, positions: np.ndarray | slice | None = None) -> np.ndarray:
    """Density bin (0..N_DENSITY_BINS-1) of the events of one whole document.

    density(k) = #NOTE_ON j with time_j in [time_k - half, time_k + half) / window seconds
    bin(k) = number of edges <= density(k).
    ``positions`` restricts the result to some events (the document is still
    used whole for counting).
    """
    tokens = np.asarray(tokens)
    times = event_times(tokens)
    on_times = times[tokens < NOTE_OFF]  # non-decreasing
    t = times if positions is None else times[positions]
    count = np.searchsorted(on_times, t + DENSITY_HALF_WINDOW, side="left") - np.searchsorted(
        on_times, t - DENSITY_HALF_WINDOW, side="left"
    )
    density = count / DENSITY_WINDOW_SECONDS
    return np.searchsorted(_EDGES, density, side="right").astype(np.int64)


def control_one_hot(bins: np.ndarray) -> np.ndarray:
    """[...] int bins (0..NO_CONTROL) -> [..., CONTROL_SIZE] float32 one-hot."""
    return np.eye(CONTROL_SIZE, dtype=np.float32)[bins]
