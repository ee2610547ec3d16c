//! pianoforte: expressive piano performance from recorded performances.
//!
//! - [`codec`]: the 310-event performance language (the single source of truth).
//! - [`midi_io`]: standard MIDI files in and out.
//! - [`dataset`]: folders of performances into token files for the trainer.
//! - [`runtime`]: finding and loading the ONNX Runtime library.
//! - [`model`]: the ONNX model, its card and the checks against the codec.
//! - [`control`]: the note-density control.
//! - [`sampling`]: temperature, top-p and a seedable generator.
//! - [`engine`]: the GRU state, priming and event-by-event generation with musical guards.
//! - [`eval`]: likelihood of performances under a model.
//! - [`render`]: piano-roll pictures.
//! - [`plugin`], [`editor`], [`clips`]: the VST3/CLAP plugin, its window, and MIDI clips of what it played.

pub mod codec;
pub mod control;
pub mod dataset;
pub mod engine;
pub mod eval;
pub mod midi_io;
pub mod model;
pub mod onnxruntime_library;
pub mod render;
pub mod runtime;
pub mod sampling;

pub mod clips;
pub mod editor;
pub mod plugin;

nice_plug::nice_export_clap!(plugin::Pianoforte);
nice_plug::nice_export_vst3!(plugin::Pianoforte);
