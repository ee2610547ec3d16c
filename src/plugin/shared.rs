//! State shared between the audio thread, the engine thread and the editor.
//!
//! The audio thread touches only [`RtShared`] (atomics) and the rtrb queues; the mutexes here are
//! for the engine thread and the editor.

use super::player::RtShared;
use super::source::ModelInfo;
use super::worker::Command;
use crate::plugin::clips::{SharedGrid, Take};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, MutexGuard, PoisonError};

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
    /// The key Key "Any" settled on in the performance being played (an index of `KEY_NAMES`).
    pub chosen_key: Option<u8>,
    /// The built-in piano: None while its samples load, Ok(what was loaded) or Err(why not, in
    /// words, with how to get the samples).
    pub piano: Option<Result<String, String>>,
}

/// How the built-in piano reaches the audio thread: the loaded samples, and the queue of the
/// current activation into which a piano (made off the audio thread) is handed over.
#[derive(Default)]
pub struct PianoHandoff {
    pub samples: Option<std::sync::Arc<crate::piano::SampleSet>>,
    pub queue: Option<rtrb::Producer<crate::piano::Piano>>,
    pub sample_rate: f32,
}

impl PianoHandoff {
    /// Hands a piano for the current activation to the audio thread (when both are there).
    pub fn hand_over(&mut self) {
        let (Some(samples), Some(queue)) = (self.samples.as_ref(), self.queue.as_mut()) else {
            return;
        };
        if let Some(rate) = crate::piano::SampleRate::new(self.sample_rate) {
            let _ = queue.push(crate::piano::Piano::new(samples.clone(), rate));
        }
    }
}

/// Shared by the plugin, its engine thread and its editor.
#[derive(Default)]
pub struct Shared {
    pub rt: RtShared,
    pub status: Mutex<Status>,
    pub take: Mutex<Take>,
    /// The host's tempo, time signature and song position, published by the audio thread
    /// (lock-free) and copied into the take by the engine thread (see `clips.rs`).
    pub grid: SharedGrid,
    /// The last message about clips (saved, or why not).
    pub clip_message: Mutex<Option<Result<String, String>>>,
    /// Commands for the engine thread (set once it runs).
    pub commands: Mutex<Option<Sender<Command>>>,
    pub piano: Mutex<PianoHandoff>,
    /// Every thread this instance starts (joined when the host drops it).
    pub threads: super::threads::Threads,
}

impl Shared {
    /// Sends a command to the engine thread and wakes it; false when it does not run (yet).
    pub fn send(&self, command: Command) -> bool {
        let sent = relock(&self.commands).as_ref().is_some_and(|s| s.send(command).is_ok());
        self.rt.wake_engine();
        sent
    }

    pub fn status(&self) -> Status {
        relock(&self.status).clone()
    }

    pub fn update_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut relock(&self.status));
    }
}

/// Locks a mutex even when a thread panicked while holding it: the status and the command
/// sender stay usable (and the editor truthful) after an engine panic.
pub fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
