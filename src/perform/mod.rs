//! Perform my part (issue 20): a quantized piano part in, a pianist's performance out.
//!
//! - [`score`]: any MIDI file read as the part to play, with its tempo map and meters.
//! - [`features`]: what the performance model sees of each score note (the one definition).
//! - [`align`]: ASAP performances aligned to their scores, and the targets the model learns.
//! - [`model`]: the score-to-performance model (ONNX) and its card.
//! - [`render`]: its outputs played: every score note once, chords in order, the pedal.
//! - [`live`]: a part performed as it is heard, with a fixed look-ahead (the plugin's live mode).
//! - [`measure`]: how close a performance comes to the pianists who played the score.
//! - [`stats`]: the means, spreads, medians and correlations both of those count with.

pub mod align;
pub mod features;
pub mod live;
pub mod measure;
pub mod model;
pub mod render;
pub mod score;
pub mod stats;

use crate::codec::Performance;

/// How pianists' spread is drawn around the model's outputs by default (`perform --temperature`).
pub const DEFAULT_TEMPERATURE: f64 = 0.5;

/// Performs `score` with `model`: its outputs for every note, played by [`render`].
pub fn perform(score: &score::Score, model: &mut model::PerformModel, options: render::RenderOptions) -> Result<Performance, String> {
    let outputs = model.run(&features::features(score))?;
    Ok(render::render(score, &outputs, options))
}
