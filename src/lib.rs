//! pianoforte: expressive piano performance from recorded performances.
//!
//! - [`codec`]: the 310-event performance language (the single source of truth).
//! - [`midi_io`]: standard MIDI files in and out.
//! - [`dataset`]: folders of performances into token files for the trainer.

pub mod codec;
pub mod dataset;
pub mod midi_io;
