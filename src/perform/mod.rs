//! Perform my part (issue 20): a quantized piano part in, a pianist's performance out.
//!
//! - [`score`]: any MIDI file read as the part to play, with its tempo map and meters.
//! - [`features`]: what the performance model sees of each score note (the one definition).
//! - [`align`]: ASAP performances aligned to their scores, and the targets the model learns.
//! - [`model`]: the score-to-performance model (ONNX) and its card.
//! - [`render`]: its outputs played: every score note once, chords in order, the pedal.
//! - [`measure`]: how close a performance comes to the pianists who played the score.

pub mod align;
pub mod features;
pub mod measure;
pub mod model;
pub mod render;
pub mod score;
