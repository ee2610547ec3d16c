"""What the instrument looks like after each event: the streaming music state.

The same semantics as the Rust engine's ``MusicState`` (checked against the shared vectors in
docs/spec/vectors.json by tests/test_state.py), so features the trainer derives from it match
what the plugin sees while it plays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import vocab as V


@dataclass
class MusicState:
    step: int = 0
    velocity_bin: int = V.INITIAL_VELOCITY_BIN
    pedal: bool = False
    last_onset_step: int | None = None
    keys: dict[int, tuple[int, int]] = field(default_factory=dict)  # MIDI pitch -> (onset step, velocity bin)

    def apply(self, token: int) -> None:
        """Advance by one event id (the START token is not an event and is refused)."""
        t = int(token)
        if t < V.NOTE_ON or t >= V.VOCAB_SIZE:
            raise ValueError(f"not an event id: {t}")
        if t < V.NOTE_OFF:
            # A repeated NOTE_ON of a sounding key ends the earlier note and starts a new one.
            self.keys[V.MIN_PITCH + t - V.NOTE_ON] = (self.step, self.velocity_bin)
            self.last_onset_step = self.step
        elif t < V.TIME_SHIFT:
            self.keys.pop(V.MIN_PITCH + t - V.NOTE_OFF, None)
        elif t < V.VELOCITY:
            self.step += t - V.TIME_SHIFT + 1
            # Stuck-note guard: a key held MAX_NOTE_STEPS is released by time alone.
            self.keys = {p: k for p, k in self.keys.items() if k[0] + V.MAX_NOTE_STEPS > self.step}
        elif t < V.PEDAL_DOWN:
            self.velocity_bin = t - V.VELOCITY
        else:
            self.pedal = t == V.PEDAL_DOWN

    def key_list(self) -> list[list[int]]:
        """[[pitch, onset_step, velocity_bin], ...] sorted by pitch (the vectors' form)."""
        return [[p, *self.keys[p]] for p in sorted(self.keys)]
