//! State shared between the audio thread, the engine thread and the editor.
//!
//! The audio thread touches only [`RtShared`] (atomics) and the rtrb queues; the mutexes here are
//! for the engine thread and the editor.

use super::player::RtShared;
use super::source::ModelInfo;
use super::worker::Command;
use crate::plugin::clips::{SavedClip, Take};
use std::sync::Mutex;
use std::sync::mpsc::Sender;

/// What the editor shows about the engine, in words.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The engine thread has started (it starts with the first activation).
    pub started: bool,
    /// ONNX Runtime: Ok(library path) once loaded, Err(reason) when it cannot be.
    pub runtime: Option<Result<String, String>>,
    /// The model playing now.
    pub model: Option<ModelInfo>,
    /// Where the model playing now came from ("built in" or a path).
    pub model_origin: String,
    /// A model is being loaded.
    pub loading: Option<String>,
    /// Why the last model could not be loaded (the previous one keeps playing).
    pub model_error: Option<String>,
    /// An error while playing (the engine stopped; the plugin is silent).
    pub engine_error: Option<String>,
    /// "Listening" in Continue mode while the musician plays.
    pub listening: bool,
    /// Wall-clock seconds the engine thread spent computing, and the seconds it has existed.
    pub busy_seconds: f64,
    pub alive_seconds: f64,
}

/// Shared by the plugin, its engine thread and its editor.
#[derive(Default)]
pub struct Shared {
    pub rt: RtShared,
    pub status: Mutex<Status>,
    pub take: Mutex<Take>,
    pub clips: Mutex<Vec<SavedClip>>,
    /// The last message about clips (saved, or why not).
    pub clip_message: Mutex<Option<Result<String, String>>>,
    /// Commands for the engine thread (set once it runs).
    pub commands: Mutex<Option<Sender<Command>>>,
}

impl Shared {
    /// Sends a command to the engine thread; false when it does not run (yet).
    pub fn send(&self, command: Command) -> bool {
        match self.commands.lock() {
            Ok(guard) => guard.as_ref().is_some_and(|s| s.send(command).is_ok()),
            Err(_) => false,
        }
    }

    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn update_status(&self, f: impl FnOnce(&mut Status)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}
