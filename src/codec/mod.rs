//! The performance event language: 310 events shared by the dataset builder, the trainer,
//! the model file and the plugin. This module is the single source of truth for it
//! (`docs/events.md` is the written spec, `docs/spec/` the machine-readable one).
//!
//! - [`events`]: the vocabulary, typed events, ids and the readable text form.
//! - [`state`]: the streaming music state (keys down, pedal, velocity, clock, stuck-note guard).
//! - [`features`]: what a format-2 model sees beside the events (state features, key control) and
//!   the grammar (which events can follow).
//! - [`beats`]: where a moment lies in the beat and the bar (what a format-3 model also sees).
//! - [`encode`](mod@encode) and [`decode`](mod@decode): performance <-> events.
//! - [`midi`]: standard MIDI files in and out.
//! - [`spec`]: the JSON spec and shared test vectors the Python trainer reads.

pub mod beats;
pub mod decode;
pub mod density;
pub mod encode;
pub mod events;
pub mod features;
pub mod midi;
pub mod performance;
pub mod spec;
pub mod state;

pub use decode::decode;
pub use encode::{encode, encode_ids, to_step};
pub use events::{
    Event, MAX_PITCH, MAX_SHIFT_STEPS, MIN_PITCH, PITCHES, Pitch, STEPS_PER_SECOND, Shift, VELOCITY_BINS, VOCABULARY, VelocityBin,
    Vocabulary, from_ids, from_text, to_ids, to_text,
};
pub use performance::{Note, PedalChange, Performance};
pub use state::{Change, KeyDown, Keys, MAX_NOTE_SECONDS, MAX_NOTE_STEPS, MusicState};
