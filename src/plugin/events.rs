//! The small vocabulary the plugin's threads exchange: MIDI-level events with their time on the
//! performance clock.
//!
//! The performance clock counts seconds of playing: it runs while the plugin plays (host transport
//! or the Play switch) and stands still otherwise, so a clip of "the last 30 s" holds 30 s of music.

use crate::codec::{Keys, Note, PedalChange, Performance, Pitch};

/// One MIDI-level event of the performance (channel 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Midi {
    NoteOn {
        key: u8,
        velocity: u8,
    },
    NoteOff {
        key: u8,
    },
    /// Sustain pedal (CC64): down is 127, up is 0.
    Pedal {
        down: bool,
    },
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

/// A note of played events: key, velocity, onset and release on the performance clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayedNote {
    pub key: u8,
    pub velocity: u8,
    pub start: f64,
    pub end: f64,
    pub input: bool,
}

/// Pairs played events (in time order, up to `end`) into notes and pedal spans, with the
/// codec's key pairing: a NOTE_ON of a sounding key ends the earlier note first; notes and a
/// pedal still down at `end` end there. Pedal spans are (down, up) times, up None while still down.
pub fn pair_played<'a>(
    played: impl IntoIterator<Item = &'a Played>,
    end: f64,
    mut note: impl FnMut(PlayedNote),
    mut pedal: impl FnMut(f64, Option<f64>),
) {
    let mut keys: Keys<(f64, u8, bool)> = Keys::new();
    let mut pedal_since = None;
    let mut close = |key: u8, (start, velocity, input): (f64, u8, bool), end: f64| note(PlayedNote { key, velocity, start, end, input });
    for e in played.into_iter().take_while(|e| e.time <= end) {
        match e.midi {
            Midi::NoteOn { key, velocity } => {
                if let Some(earlier) = keys.press(key, (e.time, velocity, e.input)) {
                    close(key, earlier, e.time);
                }
            }
            Midi::NoteOff { key } => {
                if let Some(press) = keys.release(key) {
                    close(key, press, e.time);
                }
            }
            Midi::Pedal { down: true } => _ = pedal_since.get_or_insert(e.time),
            Midi::Pedal { down: false } => {
                if let Some(since) = pedal_since.take() {
                    pedal(since, Some(e.time));
                }
            }
        }
    }
    keys.release_all(|key, press| close(key, press, end));
    if let Some(since) = pedal_since {
        pedal(since, None);
    }
}

/// The performance of played events between `from` and `to` (clock seconds, events in time
/// order), times relative to `from`: notes sounding at `from` start there, notes still sounding
/// at `to` end there, a pedal held at `from` goes down at 0. Keys outside the piano are left out.
pub fn played_performance<'a>(played: impl IntoIterator<Item = &'a Played>, from: f64, to: f64) -> Performance {
    let (mut notes, mut pedal) = (Vec::new(), Vec::new());
    let clip = |t: f64| (t.clamp(from, to) - from).max(0.0);
    pair_played(
        played,
        to,
        |n| {
            if Pitch::new(n.key).is_some() && n.end >= from {
                notes.push(Note { pitch: n.key, velocity: n.velocity, start: clip(n.start), end: clip(n.end) });
            }
        },
        |down, up| {
            if up.is_none_or(|up| up >= from) {
                pedal.push(PedalChange { time: clip(down), down: true });
                pedal.extend(up.map(|up| PedalChange { time: clip(up), down: false }));
            }
        },
    );
    notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
    Performance { notes, pedal, duration: (to - from).max(0.0) }
}
