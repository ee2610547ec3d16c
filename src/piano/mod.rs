//! A sampled grand piano: the Salamander Grand Piano V3 (Yamaha C5, Alexander Holm, CC BY 3.0),
//! fetched by `cargo xtask samples`, played by a real-time voice bank, or rendered offline to WAV.
//!
//! - [`SampleSet::load`]: find the folder ([`locate`]), decode the Ogg Vorbis files on worker
//!   threads, start each note at its hammer strike, align each velocity layer on the next louder
//!   one, shorten and fade. Never on the audio thread.
//! - [`Piano`]: events at sample offsets in, stereo blocks out; no allocation, lock or system call
//!   in [`Piano::render`]. 64 strings with stealing by short fades, two velocity layers crossfaded
//!   per note at the loudness of one velocity curve on every key (30 dB per decade of velocity),
//!   pitch shifted from the nearest sampled note (at most a semitone) with 4-point Hermite
//!   interpolation, dampers and sustain pedal (re-strikes fade the old string), release noises,
//!   stereo spread by key, flush-to-zero. Deterministic: the same events give bit-identical audio.
//!   Voices render in chunks of passes the compiler vectorises; one whose rest cannot reach
//!   -100 dBFS is not rendered (it keeps its slot, so stealing is unchanged).
//! - [`render`]: a whole [`Performance`](crate::codec::Performance) offline, and [`write_wav`]
//!   (32-bit float).
//!
//! Measured choices (`cargo bench --bench piano`; numbers and machine in docs/benchmarks.md):
//! - Layers: the 16 Salamander layers' mean onset loudness runs from -35.6 dB (v1) to -13.6 dB
//!   (v16) in uneven steps; [`layout::LAYERS`] takes the five nearest to even 5.5 dB steps.
//! - Length: one layer of 30 notes in full is 412 s of stereo (79 MB as 16-bit) and takes lewton
//!   1.2 s of CPU to decode. Notes are cut at [`MAX_SECONDS`] (7 s, faded over the last 1.5 s):
//!   the set, with 88 release noises, holds 187 MB and loads in about 3 CPU-seconds, 1.6 s on two
//!   idle cores (5 layers at 8 s: 206 MB, 1.95 s measured; at 10 s: 245 MB).
//! - Cost: at 16 notes/s with the pedal, p99 of [`Piano::render`] is about 3 % of the block's
//!   duration at 64 and 512 frames (48 kHz), 2.3x less than before issue 18.
//! - Level: 16 notes/s at velocity 127 peak at +10.2 dBFS at 0 dB in the loudest case measured
//!   (single notes over C2..C6, pedal held), hence [`DEFAULT_VOLUME_DB`] = -12 dB (-1.8 dBFS;
//!   `the_default_volume_keeps_16_loud_notes_a_second_under_full_scale` in tests/piano.rs).
//!
//! A [`Piano`] holds an `Arc` of its [`SampleSet`]: create and drop both off the audio thread.

mod cache;
mod denormal;
mod instrument;
pub mod layout;
mod load;
mod offline;
mod voice;

pub use cache::shared_samples;
pub use instrument::{DEFAULT_SPREAD, DEFAULT_VOLUME_DB, POLYPHONY, Piano, QUEUE, QueueFull};
pub use load::{ENV_VAR, FADE_SECONDS, LoadError, LoadOptions, MAX_SECONDS, SampleSet, locate};
pub use offline::{Stereo, render, render_with, write_wav, write_wav_file};

use denormal::flush;

/// A piano key is the codec's [`Pitch`] (A0 ..= C8): one definition of the 88 keys.
pub use crate::codec::Pitch;

/// A strike velocity, 1 ..= 127 (a MIDI note-on with velocity 0 is a note-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Velocity(u8);

impl Velocity {
    pub fn new(velocity: u8) -> Option<Velocity> {
        (1..=127).contains(&velocity).then_some(Velocity(velocity))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A volume in dB, finite and at most +24 dB.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Decibels(f32);

impl Decibels {
    pub const DEFAULT: Decibels = Decibels(DEFAULT_VOLUME_DB);

    pub fn new(db: f32) -> Option<Decibels> {
        (db.is_finite() && db <= 24.0).then_some(Decibels(db))
    }

    pub fn get(self) -> f32 {
        self.0
    }

    /// The linear gain (below -150 dB, zero).
    pub fn gain(self) -> f32 {
        if self.0 < -150.0 { 0.0 } else { 10f32.powf(self.0 / 20.0) }
    }
}

impl Default for Decibels {
    fn default() -> Self {
        Decibels::DEFAULT
    }
}

/// An audio sample rate, 8 kHz ..= 768 kHz.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct SampleRate(f32);

impl SampleRate {
    pub fn new(hz: f32) -> Option<SampleRate> {
        (8_000.0..=768_000.0).contains(&hz).then_some(SampleRate(hz))
    }

    pub fn hz(self) -> f32 {
        self.0
    }
}

#[cfg(test)]
mod tests;
