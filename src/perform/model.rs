//! The score-to-performance model: a bidirectional GRU over a score's notes (exported by
//! `python -m pianoforte_train perform`), run through ONNX Runtime. For each note it gives
//! [`TARGETS`]: velocity, the local tempo against the score's, the onset's deviation from the
//! beat, the articulation and whether the pedal is pressed there.

use super::align::{TARGET_COUNT, TARGETS};
use super::features::{FEATURE_COUNT, FEATURE_VERSION, FEATURES};
use crate::engine::model::{CARD_KEY, LoadOptions, check_outlet, read_model_file};
use crate::engine::runtime;
use ort::session::Session;
use ort::value::{Tensor, TensorElementType};
use std::path::Path;

/// The model built into the program.
pub static EMBEDDED_PERFORM_MODEL: &[u8] = include_bytes!("../../models/pianoforte-perform.onnx");
/// The kind its card must name.
pub const KIND: &str = "score-performance";

pub struct PerformModel {
    session: Session,
    /// The card (ONNX metadata `pianoforte`), as JSON.
    pub card: serde_json::Value,
    pub name: String,
}

impl PerformModel {
    /// The built-in model, or the file at `path`; checked against the features this program writes.
    pub fn load(path: Option<&Path>, options: &LoadOptions) -> Result<PerformModel, String> {
        let (owned, name);
        let bytes: &[u8] = match path {
            Some(p) => {
                name = p.display().to_string();
                owned = read_model_file(p).map_err(|e| format!("{name}: {e}"))?;
                &owned
            }
            None => {
                name = "the built-in performance model (models/pianoforte-perform.onnx)".to_string();
                EMBEDDED_PERFORM_MODEL
            }
        };
        let fail = |message: String| format!("{name}: {message}");
        let environment = runtime::environment(&options.runtime).map_err(|e| e.to_string())?;
        let build = || -> Result<Session, ort::Error> {
            Session::builder(environment)?
                .with_log_level(ort::logging::LogLevel::Error)?
                .with_intra_threads(options.threads.max(1))?
                .with_inter_threads(1)?
                .commit_from_memory(bytes)
        };
        let session = build().map_err(|e| fail(format!("ONNX Runtime cannot load it as a model: {}", e.message())))?;
        let metadata = session.metadata().map_err(|e| fail(e.message().to_string()))?;
        let json = metadata.custom(CARD_KEY).ok_or_else(|| fail(format!("no `{CARD_KEY}` model card in its metadata")))?;
        drop(metadata);
        let card: serde_json::Value = serde_json::from_str(&json).map_err(|e| fail(format!("its card is not JSON: {e}")))?;
        let mut problems = card_problems(&card);
        if !problems.is_empty() {
            return Err(fail(problems.join("; ")));
        }
        check_outlet(
            session.inputs(),
            "input",
            "features",
            TensorElementType::Float32,
            &[Some(1), None, Some(FEATURE_COUNT as i64)],
            &mut problems,
        );
        check_outlet(
            session.outputs(),
            "output",
            "outputs",
            TensorElementType::Float32,
            &[Some(1), None, Some(TARGET_COUNT as i64)],
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(fail(problems.join("; ")));
        }
        Ok(PerformModel { session, card, name })
    }

    /// The model's outputs for every note of a score (its feature rows, in order).
    pub fn run(&mut self, features: &[[f32; FEATURE_COUNT]]) -> Result<Vec<[f32; TARGET_COUNT]>, String> {
        let input = Tensor::from_array(([1, features.len(), FEATURE_COUNT], features.concat())).map_err(|e| e.to_string())?;
        let outputs = self.session.run(ort::inputs!["features" => input]).map_err(|e| e.to_string())?;
        let (_, values) = outputs["outputs"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        Ok(values.chunks_exact(TARGET_COUNT).map(|row| std::array::from_fn(|i| row[i])).collect())
    }
}

/// Why a card does not fit this program, if it does not.
fn card_problems(card: &serde_json::Value) -> Vec<String> {
    let mut problems = Vec::new();
    match card["kind"].as_str() {
        Some(KIND) => {}
        Some(other) => return vec![format!("it is not a score-to-performance model (its card's kind is `{other}`, not `{KIND}`)")],
        None => return vec!["it is not a score-to-performance model (its card names no kind: an event model is for `generate`)".into()],
    }
    if card["feature_version"] != FEATURE_VERSION {
        problems.push(format!(
            "it was trained on features of version {}, this program writes version {FEATURE_VERSION}",
            card["feature_version"]
        ));
    }
    let names = |key: &str| card[key].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>()).unwrap_or_default();
    if names("features") != FEATURES {
        problems.push("its features are not the ones this program writes".into());
    }
    if names("targets") != TARGETS {
        problems.push(format!("its outputs are not {}", TARGETS.join(", ")));
    }
    problems
}
