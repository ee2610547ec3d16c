"""Vocabulary v1 and the note-density control (see docs/model-format.md).

Everything here is the contract with the Rust side: change nothing without
bumping the vocabulary / model-card version.
"""

from __future__ import annotations

import numpy as np

VOCABULARY_VERSION = 1

NOTE_ON = 0  # 0..=87   NOTE_ON  pitch 21 + i
NOTE_OFF = 88  # 88..=175 NOTE_OFF pitch 21 + (i - 88)
TIME_SHIFT = 176  # 176..=275 TIME_SHIFT (i - 175) steps of 10 ms
VELOCITY = 276  # 276..=307 velocity bin (i - 276)
PEDAL_DOWN = 308
PEDAL_UP = 309
VOCAB_SIZE = 310  # events the model predicts
START = 310  # input-only token
EMBED_SIZE = 311

N_PITCHES = 88
LOWEST_PITCH = 21
MAX_SHIFT_STEPS = 100
SHIFT_100 = TIME_SHIFT + MAX_SHIFT_STEPS - 1  # id 275
STEPS_PER_SECOND = 100

# ---- control: note density ------------------------------------------------
DENSITY_EDGES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 27, 33)  # notes/s
DENSITY_HALF_WINDOW = 200  # steps: window is [t - 200, t + 200)
DENSITY_WINDOW_SECONDS = 2 * DENSITY_HALF_WINDOW / STEPS_PER_SECOND  # 4.0
N_DENSITY_BINS = len(DENSITY_EDGES) + 1  # 15
CONTROL_SIZE = 16
NO_CONTROL = 15

_EDGES = np.asarray(DENSITY_EDGES, dtype=np.float64)


def is_shift(tokens: np.ndarray) -> np.ndarray:
    return (tokens >= TIME_SHIFT) & (tokens < VELOCITY)


def shift_steps(tokens: np.ndarray) -> np.ndarray:
    """Number of 10 ms steps each token advances (0 for non-shift tokens)."""
    t = tokens.astype(np.int64)
    return np.where(is_shift(tokens), t - (TIME_SHIFT - 1), 0)


def event_times(tokens: np.ndarray) -> np.ndarray:
    """Time of every event in steps: sum of TIME_SHIFT steps strictly before it."""
    steps = shift_steps(tokens)
    return np.cumsum(steps) - steps


def density_bins(tokens: np.ndarray, positions: np.ndarray | slice | None = None) -> np.ndarray:
    """Density bin (0..14) of the events of one whole document.

    density(k) = #NOTE_ON j with time_j in [time_k - 200, time_k + 200) / 4.0
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
    """[...] int bins (0..15, 15 = no control) -> [..., 16] float32 one-hot."""
    return np.eye(CONTROL_SIZE, dtype=np.float32)[bins]


def describe(token: int) -> str:
    token = int(token)
    if token < NOTE_OFF:
        return f"ON({token + LOWEST_PITCH})"
    if token < TIME_SHIFT:
        return f"OFF({token - NOTE_OFF + LOWEST_PITCH})"
    if token < VELOCITY:
        return f"SHIFT({(token - TIME_SHIFT + 1) * 10}ms)"
    if token < PEDAL_DOWN:
        return f"VEL({token - VELOCITY})"
    if token == PEDAL_DOWN:
        return "PEDAL_DOWN"
    if token == PEDAL_UP:
        return "PEDAL_UP"
    if token == START:
        return "START"
    raise ValueError(f"token {token} out of range")
