//! The ONNX model: loading, the model card, and the checks against the codec.
//!
//! The contract (docs/model-format.md): inputs `events` int64 [T,B] (0..309 events, 310 = START),
//! `control` float32 [T,B,16], in format 2 also `key` float32 [T,B,12] and `state` float32
//! [T,B,133] (`codec::features`), in format 3 also `beat` float32 [T,B,51] (`codec::beats`),
//! and `hidden` float32 [L,B,H]; outputs `logits` float32
//! [T,B,310] and `hidden_out` float32 [L,B,H]; `metadata_props["pianoforte"]` holds the JSON
//! model card.

use crate::codec::beats::BEAT_SIZE;
use crate::codec::features::{KEY_HALF_WINDOW_STEPS, KEY_SIZE, STATE_SIZE};
use crate::codec::{STEPS_PER_SECOND, VOCABULARY};
use crate::engine::runtime::{self, RuntimeError, RuntimeOptions};
use ort::session::Session;
use ort::value::{Outlet, Tensor, TensorElementType, ValueType};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// The model built into the binary (`models/pianoforte-gru.onnx` at build time).
pub static EMBEDDED_MODEL: &[u8] = include_bytes!("../../models/pianoforte-gru.onnx");

/// The metadata key of the model card.
pub const CARD_KEY: &str = "pianoforte";
/// The input-only token fed first, with a zero hidden state.
pub const START_TOKEN: i64 = VOCABULARY.size as i64;

/// Everything that can go wrong in the engine, in words for people.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// ONNX Runtime is missing or unusable.
    Runtime(RuntimeError),
    /// The model file cannot be read or is not a pianoforte model.
    Model { model: String, message: String },
    /// The model does not fit this build's codec or the ONNX contract: every mismatch, one per line.
    Mismatch { model: String, problems: Vec<String> },
    /// An invalid setting (temperature out of range, ...).
    Settings(String),
    /// ONNX Runtime failed while running.
    Ort(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Runtime(e) => write!(f, "{e}"),
            Error::Model { model, message } => write!(f, "{model}: {message}"),
            Error::Mismatch { model, problems } => {
                write!(f, "{model} does not match this build of pianoforte:")?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
            Error::Settings(message) => write!(f, "{message}"),
            Error::Ort(message) => write!(f, "ONNX Runtime: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<RuntimeError> for Error {
    fn from(e: RuntimeError) -> Error {
        Error::Runtime(e)
    }
}

impl<R> From<ort::Error<R>> for Error {
    fn from(e: ort::Error<R>) -> Error {
        Error::Ort(e.message().to_string())
    }
}

/// The control part of the model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlCard {
    pub kind: String,
    pub window_steps: i64,
    pub steps_per_second: f64,
    pub edges: Vec<f64>,
    pub size: usize,
    pub no_control_index: usize,
}

/// The key control part of a format-2 card: the control vector of each named key, measured on
/// the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyControlCard {
    pub kind: String,
    pub size: usize,
    pub half_window_steps: i64,
    pub keys: KeyTable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyTable {
    /// "C major" .. "B major", "C minor" .. "B minor".
    pub names: Vec<String>,
    pub vectors: Vec<Vec<f32>>,
}

/// The model formats this build runs.
pub const FORMAT_VERSIONS: [u32; 3] = [1, 2, 3];

fn format_1() -> u32 {
    1
}

/// The model card (`metadata_props["pianoforte"]`); fields beyond these are kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// 1: events and density control; 2: also the key control and the music-state features, and
    /// the model was trained with the grammar mask; 3: also the beat features.
    #[serde(default = "format_1")]
    pub format_version: u32,
    #[serde(default)]
    pub key_control: Option<KeyControlCard>,
    #[serde(default)]
    pub state_features: Option<serde_json::Value>,
    #[serde(default)]
    pub beat_features: Option<serde_json::Value>,
    pub vocabulary_version: u32,
    pub vocab_size: u32,
    pub start_token: u32,
    pub control: ControlCard,
    pub layers: usize,
    pub hidden: usize,
    #[serde(default)]
    pub training: serde_json::Value,
    #[serde(default)]
    pub validation: serde_json::Value,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ModelCard {
    /// Parses the card's JSON; the message names what is missing or malformed.
    pub fn parse(json: &str) -> Result<ModelCard, String> {
        serde_json::from_str(json).map_err(|e| format!("the model card (metadata `{CARD_KEY}`) is malformed: {e}"))
    }

    /// Every way the card disagrees with this build's codec and control, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let v = &VOCABULARY;
        if self.vocabulary_version != v.version {
            problems.push(format!(
                "vocabulary_version is {} in the model card, but this build's codec speaks vocabulary version {}",
                self.vocabulary_version, v.version
            ));
        }
        if self.vocab_size != v.size as u32 {
            problems.push(format!("vocab_size is {} in the model card, but the codec has {} events", self.vocab_size, v.size));
        }
        if self.start_token != v.size as u32 {
            problems.push(format!(
                "start_token is {} in the model card, but it must be {} (one past the last event)",
                self.start_token, v.size
            ));
        }
        let c = &self.control;
        if c.kind != "note_density" {
            problems.push(format!("control.kind is `{}`, but this build knows only `note_density`", c.kind));
        }
        if c.steps_per_second != STEPS_PER_SECOND {
            problems.push(format!(
                "control.steps_per_second is {}, but the codec's time step is {} per second",
                c.steps_per_second, STEPS_PER_SECOND
            ));
        }
        if c.window_steps <= 0 || c.window_steps % 2 != 0 {
            problems.push(format!("control.window_steps is {}, but it must be a positive even number", c.window_steps));
        }
        if c.edges.is_empty() || c.edges.iter().any(|e| !e.is_finite()) || c.edges.windows(2).any(|w| w[0] >= w[1]) {
            problems.push(format!("control.edges {:?} must be finite and strictly increasing", c.edges));
        }
        if c.edges.len() + 1 > c.size {
            problems.push(format!("control.size is {}, too small for {} density bins (edges + 1)", c.size, c.edges.len() + 1));
        }
        if c.no_control_index >= c.size || c.no_control_index <= c.edges.len() {
            problems.push(format!(
                "control.no_control_index is {}, but it must lie above the density bins 0..={} and below control.size {}",
                c.no_control_index,
                c.edges.len(),
                c.size
            ));
        }
        if self.layers == 0 || self.hidden == 0 {
            problems.push(format!("layers ({}) and hidden ({}) must be positive", self.layers, self.hidden));
        }
        if !FORMAT_VERSIONS.contains(&self.format_version) {
            problems.push(format!(
                "format_version is {}, but this build of pianoforte runs model formats 1, 2 and 3 (a newer pianoforte may run it)",
                self.format_version
            ));
        }
        if self.format_version >= 2 {
            match &self.key_control {
                None => problems.push(format!("a format-{} card needs `key_control`", self.format_version)),
                Some(k) => {
                    if k.kind != "pitch_class_histogram" || k.size != KEY_SIZE || k.half_window_steps != KEY_HALF_WINDOW_STEPS {
                        problems.push(format!(
                            "key_control is {} of size {} over +-{} steps, but this build computes pitch_class_histogram of size \
                             {KEY_SIZE} over +-{KEY_HALF_WINDOW_STEPS} steps",
                            k.kind, k.size, k.half_window_steps
                        ));
                    }
                    if k.keys.names.len() != 24 || k.keys.vectors.len() != 24 || k.keys.vectors.iter().any(|v| v.len() != KEY_SIZE) {
                        problems.push("key_control.keys must name 24 keys, each with a vector of 12 values".into());
                    }
                }
            }
            let ours = crate::codec::spec::events_spec()["state_features"].clone();
            if self.state_features.as_ref() != Some(&ours) {
                problems.push(format!(
                    "state_features in the model card differ from this build's codec (docs/spec/events.json): the model was \
                     trained on other inputs (card: {}, codec: {ours})",
                    self.state_features.as_ref().map_or("missing".into(), |v| v.to_string())
                ));
            }
        }
        if self.format_version >= 3 {
            let ours = crate::codec::spec::events_spec()["beat_features"].clone();
            if self.beat_features.as_ref() != Some(&ours) {
                problems.push(format!(
                    "beat_features in the model card differ from this build's codec (docs/spec/events.json) (card: {}, codec: {ours})",
                    self.beat_features.as_ref().map_or("missing".into(), |v| v.to_string())
                ));
            }
        }
        problems
    }

    /// The index of a key in the card's table ("D minor", "eb major", "F# minor"), if it has one.
    pub fn key_index(&self, name: &str) -> Option<usize> {
        let wanted = normalise_key_name(name)?;
        let keys = &self.key_control.as_ref()?.keys;
        keys.names.iter().position(|n| normalise_key_name(n).as_deref() == Some(wanted.as_str()))
    }

    /// The name of key `index` in the card's table (the inverse of [`ModelCard::key_index`]).
    pub fn key_name(&self, index: usize) -> Option<&str> {
        self.key_control.as_ref()?.keys.names.get(index).map(String::as_str)
    }

    /// Training steps, if the card says (0 for an untrained placeholder).
    pub fn training_steps(&self) -> Option<u64> {
        self.training.get("steps").and_then(|v| v.as_u64())
    }
}

/// "d minor", "Eb major", "D# Minor" -> a canonical "D minor" / "Eb major" / "Eb minor"; sharps and
/// flats of the same pitch class are the same key.
pub fn normalise_key_name(name: &str) -> Option<String> {
    let mut parts = name.split_whitespace();
    let (note, mode) = (parts.next()?, parts.next()?.to_ascii_lowercase());
    if parts.next().is_some() || !(mode == "major" || mode == "minor") {
        return None;
    }
    let (pc, rest) = crate::codec::events::parse_note_letter(note)?;
    if !rest.is_empty() {
        return None;
    }
    Some(format!("{} {mode}", crate::codec::events::PITCH_CLASS_NAMES[pc.rem_euclid(12) as usize]))
}

/// The inputs of one model call besides the hidden state, time-major (T x B rows): `events`
/// [T,B], `control` [T,B,control.size], from format 2 on `key` [T,B,12] and `state`
/// [T,B,STATE_SIZE], in format 3 `beat` [T,B,BEAT_SIZE] (what a format does not read is ignored).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub events: &'a [i64],
    pub control: &'a [f32],
    pub key: &'a [f32],
    pub state: &'a [f32],
    pub beat: &'a [f32],
}

/// The inputs of each format, in the order of [`Inputs`] with `hidden` last.
pub fn input_names(format: u32) -> &'static [&'static str] {
    match format {
        1 => &["events", "control", "hidden"],
        2 => &["events", "control", "key", "state", "hidden"],
        _ => &["events", "control", "key", "state", "beat", "hidden"],
    }
}

/// Which model to load.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ModelSource {
    /// The model built into the binary.
    #[default]
    Embedded,
    File(PathBuf),
}

impl ModelSource {
    pub fn from_option(path: Option<PathBuf>) -> ModelSource {
        path.map_or(ModelSource::Embedded, ModelSource::File)
    }

    /// How the model is named in messages.
    pub fn name(&self) -> String {
        match self {
            ModelSource::Embedded => "the embedded model (models/pianoforte-gru.onnx)".into(),
            ModelSource::File(path) => path.display().to_string(),
        }
    }
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub runtime: RuntimeOptions,
    /// ONNX Runtime intra-op threads (1: the calling thread only, no thread pool).
    pub threads: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { runtime: RuntimeOptions::default(), threads: 1 }
    }
}

/// A loaded, checked model.
pub struct Model {
    pub(crate) session: Session,
    pub card: ModelCard,
    pub name: String,
    /// Size of the ONNX file in bytes.
    pub bytes: usize,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model").field("name", &self.name).field("card", &self.card).finish_non_exhaustive()
    }
}

fn shape_text(shape: &[i64]) -> String {
    let dims: Vec<String> = shape.iter().map(|&d| if d < 0 { "?".into() } else { d.to_string() }).collect();
    format!("[{}]", dims.join(","))
}

/// Checks one input or output against its expected element type and dimensions (`None`: any size).
pub(crate) fn check_outlet(
    outlets: &[Outlet],
    kind: &str,
    name: &str,
    ty: TensorElementType,
    dims: &[Option<i64>],
    problems: &mut Vec<String>,
) {
    let Some(outlet) = outlets.iter().find(|o| o.name() == name) else {
        let names: Vec<&str> = outlets.iter().map(|o| o.name()).collect();
        problems.push(format!("the model has no {kind} `{name}` (its {kind}s: {})", names.join(", ")));
        return;
    };
    let ValueType::Tensor { ty: actual, shape, .. } = outlet.dtype() else {
        problems.push(format!("{kind} `{name}` is not a tensor"));
        return;
    };
    if *actual != ty {
        problems.push(format!("{kind} `{name}` has element type {actual}, expected {ty}"));
    }
    let expected: Vec<i64> = dims.iter().map(|d| d.unwrap_or(-1)).collect();
    let fits = shape.len() == dims.len()
        && shape.iter().zip(dims).all(|(&have, want)| match want {
            Some(w) => have < 0 || have == *w,
            None => true,
        });
    if !fits {
        problems.push(format!("{kind} `{name}` has shape {}, expected {}", shape_text(shape), shape_text(&expected)));
    }
}

/// The largest model file read (a GRU of any sensible size is far below).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// Reads a model file, refusing what is not a plain file and what is too large to be a model.
pub(crate) fn read_model_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    crate::files::read_plain_file(path, MAX_MODEL_BYTES, "a model")
}

impl Model {
    /// Loads a model (the embedded one or a file) and checks it against the codec and the contract.
    pub fn load(source: &ModelSource, options: &LoadOptions) -> Result<Model, Error> {
        let name = source.name();
        let owned;
        let bytes: &[u8] = match source {
            ModelSource::Embedded => EMBEDDED_MODEL,
            ModelSource::File(path) => {
                owned = read_model_file(path).map_err(|message| Error::Model { model: name.clone(), message })?;
                &owned
            }
        };
        Model::from_bytes(bytes, name, options)
    }

    /// Loads a model from the bytes of an ONNX file.
    pub fn from_bytes(bytes: &[u8], name: String, options: &LoadOptions) -> Result<Model, Error> {
        if options.threads == 0 {
            return Err(Error::Settings("threads must be at least 1".into()));
        }
        let environment = runtime::environment(&options.runtime)?;
        let model_error = |message: String| Error::Model { model: name.clone(), message };
        let build = || -> Result<Session, ort::Error> {
            let mut builder = Session::builder(environment)?
                .with_log_level(ort::logging::LogLevel::Error)?
                .with_intra_threads(options.threads)?
                .with_inter_threads(1)?
                .with_intra_op_spinning(false)?;
            builder.commit_from_memory(bytes)
        };
        let session = build().map_err(|e| model_error(format!("ONNX Runtime cannot load it as a model: {}", e.message())))?;
        let metadata = session.metadata().map_err(|e| model_error(e.message().to_string()))?;
        let json = metadata.custom(CARD_KEY).ok_or_else(|| {
            model_error(format!(
                "no `{CARD_KEY}` model card in the ONNX metadata_props (export models with `python -m pianoforte_train export`)"
            ))
        })?;
        drop(metadata);
        let card = ModelCard::parse(&json).map_err(model_error)?;
        let mut problems = card.problems();
        let (l, h) = (Some(card.layers as i64), Some(card.hidden as i64));
        let (inputs, outputs) = (session.inputs(), session.outputs());
        check_outlet(inputs, "input", "events", TensorElementType::Int64, &[None, None], &mut problems);
        check_outlet(inputs, "input", "control", TensorElementType::Float32, &[None, None, Some(card.control.size as i64)], &mut problems);
        check_outlet(inputs, "input", "hidden", TensorElementType::Float32, &[l, None, h], &mut problems);
        check_outlet(outputs, "output", "logits", TensorElementType::Float32, &[None, None, Some(VOCABULARY.size as i64)], &mut problems);
        check_outlet(outputs, "output", "hidden_out", TensorElementType::Float32, &[l, None, h], &mut problems);
        let expected = input_names(card.format_version);
        for (name, size) in [("key", KEY_SIZE), ("state", STATE_SIZE), ("beat", BEAT_SIZE)] {
            if expected.contains(&name) {
                check_outlet(inputs, "input", name, TensorElementType::Float32, &[None, None, Some(size as i64)], &mut problems);
            }
        }
        for extra in inputs.iter().filter(|o| !expected.contains(&o.name())) {
            problems.push(format!(
                "the model has an unexpected input `{}` (format {} has {})",
                extra.name(),
                card.format_version,
                expected.join(", ")
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Mismatch { model: name, problems });
        }
        let mut model = Model { session, card, name, bytes: bytes.len() };
        // The declared shapes may leave dimensions open: run one step to see the real ones.
        let (key, state, beat) = (vec![0.0; KEY_SIZE], vec![0.0; STATE_SIZE], vec![0.0; BEAT_SIZE]);
        let inputs = Inputs { events: &[START_TOKEN], control: &model.no_control_row(), key: &key, state: &state, beat: &beat };
        let (logits, hidden) = model.run(&inputs, &model.zero_hidden(1), 1, 1)?;
        if logits.len() != VOCABULARY.size as usize || hidden.len() != model.card.layers * model.card.hidden {
            return Err(Error::Mismatch {
                model: model.name,
                problems: vec![format!(
                    "one step gives {} logits and {} hidden values, expected {} and {} x {}",
                    logits.len(),
                    hidden.len(),
                    VOCABULARY.size,
                    model.card.layers,
                    model.card.hidden
                )],
            });
        }
        Ok(model)
    }

    /// A zero hidden state for `batch` sequences ([L, B, H], flattened).
    pub fn zero_hidden(&self, batch: usize) -> Vec<f32> {
        vec![0.0; self.card.layers * batch * self.card.hidden]
    }

    /// One control row meaning "no control".
    pub fn no_control_row(&self) -> Vec<f32> {
        let mut row = vec![0.0; self.card.control.size];
        row[self.card.control.no_control_index] = 1.0;
        row
    }

    /// Runs T steps of B sequences in one call (`hidden` [L,B,H]). Returns the logits [T,B,310]
    /// and the new hidden state, flattened. Allocates; the engine's per-event path does not use this.
    pub fn run(&mut self, inputs: &Inputs, hidden: &[f32], t: usize, b: usize) -> Result<(Vec<f32>, Vec<f32>), Error> {
        let (c, l, h) = (self.card.control.size, self.card.layers, self.card.hidden);
        let Inputs { events, control, key, state, beat } = *inputs;
        let format = self.card.format_version;
        if events.len() != t * b
            || control.len() != t * b * c
            || hidden.len() != l * b * h
            || (format >= 2 && (key.len() != t * b * KEY_SIZE || state.len() != t * b * STATE_SIZE))
            || (format >= 3 && beat.len() != t * b * BEAT_SIZE)
        {
            return Err(Error::Settings(format!(
                "model input sizes do not fit T={t}, B={b}: {} events, {} control, {} key, {} state, {} beat, {} hidden values",
                events.len(),
                control.len(),
                key.len(),
                state.len(),
                beat.len(),
                hidden.len()
            )));
        }
        let events = Tensor::from_array(([t, b], events.to_vec()))?;
        let control = Tensor::from_array(([t, b, c], control.to_vec()))?;
        let hidden = Tensor::from_array(([l, b, h], hidden.to_vec()))?;
        let features = |size: usize, values: &[f32]| Tensor::from_array(([t, b, size], values.to_vec()));
        let outputs = match format {
            1 => self.session.run(ort::inputs!["events" => events, "control" => control, "hidden" => hidden])?,
            2 => self.session.run(ort::inputs![
                "events" => events, "control" => control, "key" => features(KEY_SIZE, key)?, "state" => features(STATE_SIZE, state)?,
                "hidden" => hidden
            ])?,
            _ => self.session.run(ort::inputs![
                "events" => events, "control" => control, "key" => features(KEY_SIZE, key)?, "state" => features(STATE_SIZE, state)?,
                "beat" => features(BEAT_SIZE, beat)?, "hidden" => hidden
            ])?,
        };
        let (_, logits) = outputs["logits"].try_extract_tensor::<f32>()?;
        let (_, hidden_out) = outputs["hidden_out"].try_extract_tensor::<f32>()?;
        Ok((logits.to_vec(), hidden_out.to_vec()))
    }

    /// The sampling the card recommends (`sampling`: `temperature`, `top_p`, `memory`, `tightness`, chosen
    /// by measurement), else the engine's defaults.
    pub fn recommended_sampling(&self) -> crate::engine::sampling::Sampling {
        let mut sampling = crate::engine::sampling::Sampling::default();
        if let Some(card) = self.card.extra.get("sampling") {
            if let Some(t) = card.get("temperature").and_then(|v| v.as_f64()) {
                sampling.temperature = t as f32;
            }
            if let Some(p) = card.get("top_p") {
                sampling.top_p = p.as_f64().map(|p| p as f32);
            }
            if let Some(m) = card.get("memory").and_then(|v| v.as_f64()) {
                sampling.memory = m as f32;
            }
            if let Some(t) = card.get("tightness").and_then(|v| v.as_f64()) {
                sampling.tightness = t as f32;
            }
        }
        if sampling.check().is_err() {
            return crate::engine::sampling::Sampling::default();
        }
        sampling
    }

    /// The card's model format (1, 2 or 3).
    pub fn format(&self) -> u32 {
        self.card.format_version
    }

    /// Whether the model reads the key control and the music-state features (format 2 on).
    pub fn has_features(&self) -> bool {
        self.card.format_version >= 2
    }

    /// Whether the model reads the beat features (format 3).
    pub fn has_beats(&self) -> bool {
        self.card.format_version >= 3
    }

    /// The key control vector of key `index` of the card's table.
    pub fn key_vector(&self, index: usize) -> Option<&[f32]> {
        self.card.key_control.as_ref()?.keys.vectors.get(index).map(|v| v.as_slice())
    }

    /// A one-line description for people.
    pub fn describe(&self) -> String {
        let trained = match self.card.training_steps() {
            Some(0) => ", UNTRAINED placeholder".to_string(),
            Some(steps) => format!(", {steps} training steps"),
            None => String::new(),
        };
        format!(
            "{} (format {}, GRU {} x {}, {:.1} MB{trained})",
            self.name,
            self.card.format_version,
            self.card.layers,
            self.card.hidden,
            self.bytes as f64 / 1e6
        )
    }
}
