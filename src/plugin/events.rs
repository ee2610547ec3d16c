//! The small vocabulary the plugin's threads exchange: MIDI-level events with their time on the
//! performance clock.
//!
//! The performance clock counts seconds of playing: it runs while the plugin plays (host transport
//! or the Play switch) and stands still otherwise, so a clip of "the last 30 s" holds 30 s of music.

/// One MIDI-level event of the performance (channel 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Midi {
    NoteOn { key: u8, velocity: u8 },
    NoteOff { key: u8 },
    /// Sustain pedal (CC64): down is 127, up is 0.
    Pedal { down: bool },
}

/// An event the engine thread has sampled, for the audio thread to play at `time`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    /// Seconds on the performance clock.
    pub time: f64,
    /// The performance it belongs to; the audio thread drops events of older generations.
    pub generation: u32,
    pub midi: Midi,
}

/// An event the audio thread has actually sent (or received from the player), for the take, the
/// piano roll and the primer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Played {
    /// Seconds on the performance clock, to the sample.
    pub time: f64,
    pub midi: Midi,
    /// Played into the plugin by the musician (and passed through), rather than generated.
    pub input: bool,
}
