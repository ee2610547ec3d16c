//! The engine thread: owns the model, samples events ahead of the playhead and writes them with
//! their performance time into the queue the audio thread reads; collects what was played into
//! the take; listens to the musician in "Continue my playing" mode.
//!
//! Timing: the events of a performance are placed at `model time + offset` on the performance
//! clock. A (re)start sets the offset just ahead of the playhead. If the engine ever finds that an
//! event would already be due (it fell behind, say the machine was busy), the offset grows so the
//! music waits (a short fermata) instead of arriving late; anything that still arrives late is
//! skipped by the audio thread. Parameters are read at every model step.

use super::engine_source::{EngineSource, LoadError};
use super::events::{Midi, Played, Timed, played_performance};
use super::params::{Mode, PianoforteParams};
use super::shared::Shared;
use super::source::{Decoder, Source, StepControls, Synthetic};
use crate::codec::{self, Event, Keys, Pitch};
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Seconds of silence (all keys up) after which "Continue my playing" takes over.
pub const LISTEN_GAP_SECONDS: f64 = 1.0;
/// The musician's playing kept as the primer.
pub const PRIMER_SECONDS: f64 = 20.0;
/// Lookahead beyond the buffer-size part (see [`lookahead_seconds`]).
const BASE_LOOKAHEAD_SECONDS: f64 = 0.15;
/// Model events drawn in one go at most, before looking at commands again.
const MAX_STEPS_PER_TICK: usize = 2000;
/// Capacity of the queues to the audio thread and back.
pub const QUEUE_CAPACITY: usize = 8192;

/// How far ahead of the playhead the engine keeps the queue: enough for two of the host's
/// largest buffers plus a margin for a busy machine.
pub fn lookahead_seconds(sample_rate: f64, max_buffer: u32) -> f64 {
    BASE_LOOKAHEAD_SECONDS + 2.0 * max_buffer as f64 / sample_rate
}

/// How far after the playhead a (re)started performance begins.
fn start_margin_seconds(sample_rate: f64, max_buffer: u32) -> f64 {
    (max_buffer as f64 / sample_rate).min(0.05) + 0.01
}

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

/// Which source plays: the ONNX engine, or in a test build (feature `test-hooks`) with
/// `PIANOFORTE_SOURCE=synthetic`, the test pattern.
fn load_source(model: Option<&std::path::Path>, plugin_folder: Option<&std::path::Path>) -> Result<Box<dyn Source>, LoadError> {
    if cfg!(feature = "test-hooks") && std::env::var("PIANOFORTE_SOURCE").is_ok_and(|v| v == "synthetic") {
        return Ok(Box::new(Synthetic::new()));
    }
    EngineSource::load(model, plugin_folder).map(|s| Box::new(s) as Box<dyn Source>)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Nothing to play (no model, or an error).
    Idle,
    Playing,
    /// Continue mode: the musician plays; wait for a pause.
    Listening,
}

static TRACE_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Worker {
    shared: Arc<Shared>,
    params: Arc<PianoforteParams>,
    commands: Receiver<Command>,
    plugin_folder: Option<PathBuf>,
    source: Option<Box<dyn Source>>,
    /// The model path that is playing ("" = built in).
    source_path: Option<String>,
    attachment: Option<Attachment>,
    lookahead: f64,
    margin: f64,
    state: State,
    generation: u32,
    seed: i32,
    mode: Mode,
    decoder: Decoder,
    offset: f64,
    scratch: Vec<(f64, Midi)>,
    pending: VecDeque<Timed>,
    heard: VecDeque<Played>,
    held: Keys<()>,
    last_input: f64,
    trace: Option<std::io::BufWriter<std::fs::File>>,
    busy: Duration,
    started: Instant,
    last_status: Instant,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, params: Arc<PianoforteParams>, commands: Receiver<Command>, plugin_folder: Option<PathBuf>) -> Worker {
        Worker {
            shared,
            params,
            commands,
            plugin_folder,
            source: None,
            source_path: None,
            attachment: None,
            lookahead: 0.3,
            margin: 0.02,
            state: State::Idle,
            generation: 0,
            seed: 1,
            mode: Mode::Free,
            decoder: Decoder::default(),
            offset: 0.0,
            scratch: Vec::with_capacity(16),
            pending: VecDeque::with_capacity(64),
            heard: VecDeque::new(),
            held: Keys::new(),
            last_input: f64::NEG_INFINITY,
            trace: None,
            busy: Duration::ZERO,
            started: Instant::now(),
            last_status: Instant::now(),
        }
    }

    /// Runs until `Shutdown` (or the plugin is gone).
    pub fn run(mut self) {
        self.shared.update_status(|s| s.started = true);
        loop {
            // Wake often enough to keep the queue a lookahead ahead, rarely enough to cost
            // nothing: an eighth of the lookahead, 2..10 ms.
            let timeout = if self.attachment.is_some() && self.state != State::Idle {
                Duration::from_secs_f64((self.lookahead / 8.0).clamp(0.002, 0.010))
            } else {
                Duration::from_millis(20)
            };
            let mut next = match self.commands.recv_timeout(timeout) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            while let Some(command) = next.take() {
                if !self.handle(command) {
                    return;
                }
                next = self.commands.try_recv().ok();
            }
            let began = Instant::now();
            self.tick();
            self.busy += began.elapsed();
            if self.last_status.elapsed() > Duration::from_millis(250) {
                self.last_status = Instant::now();
                let (busy, alive) = (self.busy.as_secs_f64(), self.started.elapsed().as_secs_f64());
                self.shared.update_status(|s| {
                    s.busy_seconds = busy;
                    s.alive_seconds = alive;
                });
            }
        }
    }

    /// false: stop the thread.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Shutdown => return false,
            Command::Detach => {
                self.attachment = None;
                self.flush_trace();
                self.trace = None;
            }
            Command::Attach(attachment) => {
                self.lookahead = lookahead_seconds(attachment.sample_rate, attachment.max_buffer);
                self.margin = start_margin_seconds(attachment.sample_rate, attachment.max_buffer);
                self.attachment = Some(*attachment);
                self.open_trace();
                let wanted = self.params.model_path();
                if self.source.is_none() || self.source_path.as_deref() != Some(wanted.as_str()) {
                    self.load(&wanted, true);
                }
                self.restart(true);
            }
            Command::LoadModel(path) => {
                let path = path.map(|p| p.display().to_string()).unwrap_or_default();
                if self.load(&path, false) {
                    if let Ok(mut stored) = self.params.model_path.lock() {
                        *stored = path;
                    }
                    if self.attachment.is_some() {
                        self.restart(true);
                    }
                }
            }
        }
        true
    }

    /// Loads a model ("" = built in). With `fallback`, a bad user model falls back to the built-in
    /// one when nothing plays yet. Returns whether `path` loaded.
    fn load(&mut self, path: &str, fallback: bool) -> bool {
        let label = if path.is_empty() { "the built-in model".to_string() } else { path.to_string() };
        self.shared.update_status(|s| s.loading = Some(label.clone()));
        let model = (!path.is_empty()).then(|| PathBuf::from(path));
        let result = load_source(model.as_deref(), self.plugin_folder.as_deref());
        let runtime = crate::engine::runtime::loaded_library().map(|p| p.display().to_string());
        let loaded = match result {
            Ok(source) => {
                let info = source.info();
                self.source = Some(source);
                self.source_path = Some(path.to_string());
                self.shared.update_status(|s| {
                    s.model = Some(info);
                    s.model_origin = if path.is_empty() { "built in".into() } else { path.to_string() };
                    s.model_error = None;
                    s.engine_error = None;
                });
                true
            }
            Err(LoadError { runtime: runtime_missing, message }) => {
                nice_plug::nice_log!("pianoforte: cannot load {label}: {message}");
                self.shared.update_status(|s| {
                    if runtime_missing {
                        s.runtime = Some(Err(message.clone()));
                    } else {
                        s.model_error = Some(format!("{label}: {message}"));
                    }
                });
                false
            }
        };
        self.shared.update_status(|s| {
            s.loading = None;
            if let Some(path) = &runtime {
                s.runtime = Some(Ok(path.clone()));
            }
        });
        if !loaded && fallback && self.source.is_none() && !path.is_empty() {
            // Keep the reason the user's model failed in view while the built-in one plays.
            let reason = self.shared.status().model_error;
            if self.load("", false) {
                self.shared.update_status(|s| s.model_error = reason);
            }
        }
        loaded
    }

    /// In a test build (feature `test-hooks`), every event the worker queues goes to a trace file
    /// in `PIANOFORTE_TRACE_DIR`, for the host tests to check sample by sample.
    fn open_trace(&mut self) {
        self.trace = None;
        let Some(dir) = std::env::var_os("PIANOFORTE_TRACE_DIR").filter(|_| cfg!(feature = "test-hooks")) else {
            return;
        };
        let n = TRACE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(dir).join(format!("trace-{}-{n}.tsv", std::process::id()));
        if let Ok(file) = std::fs::File::create(&path) {
            let mut writer = std::io::BufWriter::new(file);
            let _ = writeln!(writer, "generation\ttime\tkind\tkey\tvalue");
            self.trace = Some(writer);
        }
    }

    fn flush_trace(&mut self) {
        if let Some(t) = self.trace.as_mut() {
            let _ = t.flush();
        }
    }

    fn controls(&self) -> StepControls {
        let (lowest, highest) = (Pitch::LOWEST.midi() as i32, Pitch::HIGHEST.midi() as i32);
        let (a, b) = (self.params.key_low.value(), self.params.key_high.value());
        StepControls {
            temperature: self.params.temperature.value(),
            density: self.params.density_setting(),
            key_low: a.min(b).clamp(lowest, highest) as u8,
            key_high: a.max(b).clamp(lowest, highest) as u8,
        }
    }

    fn now(&self) -> f64 {
        self.shared.rt.clock_seconds.load(Ordering::Acquire)
    }

    /// The primer for a (re)start: in Continue mode what the musician played last, else nothing.
    fn primer(&self) -> Vec<Event> {
        if self.mode != Mode::Continue || self.heard.is_empty() {
            return Vec::new();
        }
        let end = self.heard.back().map_or(0.0, |p| p.time);
        let from = self.heard.front().map_or(0.0, |p| p.time).max(end - PRIMER_SECONDS);
        codec::encode(&played_performance(&self.heard, from, end))
    }

    /// Starts a new performance (a new generation when `bump`) just ahead of the playhead.
    fn restart(&mut self, bump: bool) {
        if bump {
            self.generation = self.shared.rt.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        }
        self.seed = self.params.seed.value();
        self.mode = self.params.mode.value();
        self.pending.clear();
        self.decoder = Decoder::default();
        self.offset = self.now() + self.margin;
        let primer = self.primer();
        let Some(source) = self.source.as_mut() else {
            self.state = State::Idle;
            return;
        };
        match source.restart(&primer, self.seed as u64) {
            Ok(()) => self.state = State::Playing,
            Err(e) => self.fail(e),
        }
        self.shared.update_status(|s| s.listening = false);
    }

    fn fail(&mut self, message: String) {
        nice_plug::nice_log!("pianoforte: {message}");
        self.state = State::Idle;
        // A new generation: the audio thread ends whatever sounds.
        self.generation = self.shared.rt.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        self.shared.update_status(|s| s.engine_error = Some(message));
    }

    fn tick(&mut self) {
        if self.attachment.is_none() {
            return;
        }
        self.collect_played();
        let generation = self.shared.rt.generation.load(Ordering::Acquire);
        let mode = self.params.mode.value();
        if generation != self.generation {
            // The audio thread started a new performance: the musician plays (Continue mode).
            self.generation = generation;
            self.pending.clear();
            if mode == Mode::Continue && self.source.is_some() {
                self.state = State::Listening;
                self.shared.update_status(|s| s.listening = true);
            } else {
                self.restart(false);
            }
        } else if self.source.is_some()
            && (self.params.seed.value() != self.seed || (mode != self.mode && mode == Mode::Free && self.state == State::Listening))
        {
            self.restart(true);
        }
        self.mode = mode;
        match self.state {
            State::Idle => {}
            State::Listening => {
                let quiet = self.now() - self.last_input >= LISTEN_GAP_SECONDS;
                if quiet && self.held.is_empty() {
                    self.restart(false);
                }
            }
            State::Playing => self.fill(),
        }
        self.flush_trace();
    }

    /// Moves what the audio thread played into the take (and the musician's notes into `heard`).
    fn collect_played(&mut self) {
        let Some(attachment) = self.attachment.as_mut() else {
            return;
        };
        let available = attachment.played.slots();
        if available == 0 {
            return;
        }
        let Ok(mut take) = self.shared.take.lock() else {
            return;
        };
        for _ in 0..available {
            let Ok(played) = attachment.played.pop() else {
                break;
            };
            take.push(played);
            if played.input {
                match played.midi {
                    Midi::NoteOn { key, .. } => _ = self.held.press(key, ()),
                    Midi::NoteOff { key } => _ = self.held.release(key),
                    Midi::Pedal { .. } => {}
                }
                self.last_input = played.time;
                self.heard.push_back(played);
                while self.heard.front().is_some_and(|f| played.time - f.time > PRIMER_SECONDS * 2.0) || self.heard.len() > 8192 {
                    self.heard.pop_front();
                }
            }
        }
    }

    /// Draws events until the queue reaches the lookahead.
    fn fill(&mut self) {
        let horizon = self.now() + self.lookahead;
        let mut steps = 0;
        loop {
            // What was decoded but did not fit yet goes first.
            while let Some(&event) = self.pending.front() {
                let Some(attachment) = self.attachment.as_mut() else {
                    return;
                };
                if attachment.events.push(event).is_err() {
                    return;
                }
                self.pending.pop_front();
                if let Some(trace) = self.trace.as_mut() {
                    let (kind, key, value) = match event.midi {
                        Midi::NoteOn { key, velocity } => ("on", key, velocity),
                        Midi::NoteOff { key } => ("off", key, 0),
                        Midi::Pedal { down } => ("pedal", 64, if down { 127 } else { 0 }),
                    };
                    // `{}` writes the shortest text that reads back as the same f64.
                    let _ = writeln!(trace, "{}\t{}\t{kind}\t{key}\t{value}", event.generation, event.time);
                }
            }
            if self.decoder.seconds() + self.offset >= horizon || steps >= MAX_STEPS_PER_TICK {
                // The trace also tells how far the performance is decided (silence included).
                if steps > 0
                    && let Some(trace) = self.trace.as_mut()
                {
                    let until = self.decoder.seconds() + self.offset;
                    let _ = writeln!(trace, "{}\t{until}\tuntil\t0\t0", self.generation);
                }
                return;
            }
            let controls = self.controls();
            let Some(source) = self.source.as_mut() else {
                return;
            };
            let event = match source.next(&controls) {
                Ok(event) => event,
                Err(e) => return self.fail(format!("the engine stopped: {e}")),
            };
            steps += 1;
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            self.decoder.feed(event, |t, midi| scratch.push((t, midi)));
            for &(t, midi) in &scratch {
                let mut time = t + self.offset;
                // Fell behind: let the music wait rather than arrive late.
                let earliest = self.now() + self.margin.min(0.02);
                if time < earliest {
                    self.offset += earliest - time;
                    time = earliest;
                }
                self.pending.push_back(Timed { time, generation: self.generation, midi });
            }
            self.scratch = scratch;
        }
    }
}
