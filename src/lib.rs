//! pianoforte: expressive piano performance from recorded performances.
//!
//! The folders follow the data, and dependencies point down this pipeline only
//! (docs/architecture.md):
//!
//! - [`codec`]: the 310-event language (the single source of truth), the streaming music state,
//!   encode/decode, MIDI files in and out.
//! - [`engine`]: ONNX Runtime, the model and its card, controls, sampling, and the engine that
//!   draws events one at a time.
//! - [`plugin`] (feature `plugin`): the VST3/CLAP plugin: parameters, the engine thread, the
//!   real-time player, the editor and clips.
//! - [`perform`]: a score in, a pianist's performance out: scores, their alignment to
//!   performances and the score-conditioned performance model.
//! - [`cli`]: the `pianoforte` command line, one file per command.
//! - [`files`]: reading the files the program takes whole (MIDI, models), refusing pipes and
//!   devices.

pub mod cli;
pub mod codec;
pub mod engine;
pub mod files;
pub mod perform;
pub mod piano;
#[cfg(feature = "plugin")]
pub mod plugin;

#[cfg(feature = "plugin")]
nice_plug::nice_export_clap!(plugin::Pianoforte);
#[cfg(feature = "plugin")]
nice_plug::nice_export_vst3!(plugin::Pianoforte);
