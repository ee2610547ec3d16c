//! State shared between the audio thread, the engine thread and the editor.
//!
//! The audio thread touches only [`RtShared`] (atomics) and the rtrb queues; the mutexes here are
//! for the engine thread and the editor.

use super::events::{Played, Timed};
use super::source::ModelInfo;
use crate::plugin::clips::{SharedGrid, Take};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use atomic_float::AtomicF64;

/// The queues of one activation.
pub struct Attachment {
    pub events: rtrb::Producer<Timed>,
    pub played: rtrb::Consumer<Played>,
    pub sample_rate: f64,
    pub max_buffer: u32,
}

pub enum Command {
    /// The plugin was activated: play into these queues.
    Attach(Box<Attachment>),
    /// The plugin was deactivated.
    Detach,
    /// Load a model file (None: the built-in model); a bad file keeps the current one.
    LoadModel(Option<PathBuf>),
    Shutdown,
}

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
    /// The key Key "Any" settled on in the performance being played (the model card's name).
    pub chosen_key: Option<String>,
    /// Why a fast render went on without what it waited for (a model or samples not ready).
    pub render_warning: Option<String>,
    /// The built-in piano: None while its samples load, Ok(what was loaded) or Err(why not, in
    /// words, with how to get the samples).
    pub piano: Option<Result<String, String>>,
    /// The song's tempo and meter the performance follows (Timing on Song tempo).
    pub following: Option<Following>,
    /// The name of the performed clip played instead of improvising (Perform my part).
    pub performing: Option<String>,
}

/// The song's time as the performance follows it, for the editor's piano roll.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Following {
    /// Quarter notes per minute.
    pub bpm: f64,
    pub meter: crate::engine::beat_clock::Meter,
    /// Clock seconds of one of its bar lines.
    pub bar_line: f64,
    /// Whether the model hears the beats (format 3); older models play in free time.
    pub model_hears_beats: bool,
}

impl Following {
    /// "126 BPM, 4/4" for people.
    pub fn describe(&self) -> String {
        let how = if self.model_hears_beats { "" } else { " (this model plays in free time)" };
        format!("{:.1} BPM, {}{how}", self.bpm, self.meter)
    }
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

/// Counters and the clock the audio thread publishes (lock-free, read by the engine thread and
/// the editor).
#[derive(Debug, Default)]
pub struct RtShared {
    /// The current performance; bumped by the engine thread (restart) or the audio thread (the
    /// musician takes over in "Continue my playing" mode).
    pub generation: AtomicU32,
    /// Performance-clock seconds at the end of the last processed buffer.
    pub clock_seconds: AtomicF64,
    /// Whether the last buffer was playing.
    pub playing: std::sync::atomic::AtomicBool,
    /// Late NOTE_ONs and pedal-downs skipped because the engine fell behind.
    pub skipped_late: AtomicU64,
    /// Events the host had no room for (or dropped because a buffer held too many).
    pub dropped_output: AtomicU64,
    /// Generated NOTE_ONs sent so far.
    pub notes_played: AtomicU64,
    /// Buffers processed.
    pub buffers: AtomicU64,
    /// The generation the last start began, its clock time in seconds and its song position in
    /// ms; written before the generation is bumped.
    pub start_generation: AtomicU32,
    pub start_seconds: AtomicF64,
    pub start_position_ms: AtomicI64,
    /// Song position of the last buffer in ms (-1: unknown).
    pub position_ms: AtomicI64,
    /// Clock seconds of the musician's note that last took over in "Continue my playing".
    pub takeover_seconds: AtomicF64,
    /// The engine has queued every event before `decided_until` (clock seconds) of
    /// `decided_generation`; infinity when it will queue nothing for it (listening, no model).
    pub decided_generation: AtomicU32,
    pub decided_until: AtomicF64,
    /// A fast render (declared offline, or faster than real time): the audio thread waits for
    /// the engine up to `wanted_until` (clock seconds). In a declared offline render the engine
    /// fills exactly to there (automation lands where it does in a bounce), else a lookahead
    /// ahead of the clock (where it lands in playback).
    pub fast: AtomicBool,
    pub offline: AtomicBool,
    pub wanted_until: AtomicF64,
    /// The engine thread runs (false once it has stopped, even by a panic).
    pub engine_alive: AtomicBool,
    /// Fast renders whose wait budget ran out (they went on without what they waited for).
    pub offline_timeouts: AtomicU64,
    /// Input events a buffer had no room for.
    pub dropped_input: AtomicU64,
    /// The piano samples are loading (an offline render waits for them, bounded).
    pub piano_loading: AtomicBool,
    /// The engine thread, to wake it without a lock.
    pub engine_thread: OnceLock<std::thread::Thread>,
}

impl RtShared {
    /// Wakes the engine thread (no allocation, no lock).
    pub fn wake_engine(&self) {
        if let Some(thread) = self.engine_thread.get() {
            thread.unpark();
        }
    }

    /// Publishes how far the engine has decided generation `generation`.
    pub fn publish_decided(&self, generation: u32, until: f64) {
        self.decided_until.store(until, Ordering::Release);
        self.decided_generation.store(generation, Ordering::Release);
    }
}
