//! A performance as notes and pedal changes with times in seconds: what the codec encodes, what
//! MIDI files are read into and written from.

use serde::{Deserialize, Serialize};

/// One played note, times in seconds from the start of the performance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub pitch: u8,
    pub velocity: u8,
    pub start: f64,
    pub end: f64,
}

/// A change of the sustain pedal (CC64 >= 64 is down).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PedalChange {
    pub time: f64,
    pub down: bool,
}

/// A piano performance: what the codec encodes and what MIDI files are read into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    /// Sorted by start time.
    pub notes: Vec<Note>,
    /// Sorted by time; only real state changes.
    pub pedal: Vec<PedalChange>,
    /// Length in seconds (at least the last event's time).
    pub duration: f64,
}
