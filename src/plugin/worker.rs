//! The engine thread: owns the model, samples events ahead of the playhead and writes them with
//! their performance time into the queue the audio thread reads; collects what was played into
//! the take; listens to the musician in "Continue my playing" mode.
//!
//! Timing: the events of a performance are placed at `model time + offset` on the performance
//! clock. A start of the audio thread (transport start, jump, Play, new Seed) fixes the offset:
//! its clock time plus [`START_DELAY_SECONDS`], and the seed: the Seed parameter mixed with the
//! song position. Nothing here depends on when this thread runs, so a take is reproducible; in
//! real time an event the engine could not deliver in time is skipped by the audio thread; in a
//! fast render (`pace.rs`) the audio thread waits for it (in a declared offline render this thread
//! fills exactly to what it waits for). "Continue my playing" starts at the musician's pause as
//! heard on the performance clock, not when this thread notices it, so a bounce continues where
//! playback does. Parameters are read at every model step. Models load on a
//! thread of their own, so the performance goes on meanwhile and a file that never finishes
//! reading blocks nothing.

use super::clips::GridAnchor;
use super::engine_source::runtime_options;
use super::engine_source::{EngineSource, LoadError};
use super::events::{Midi, Played, Timed, played_performance};
use super::live_part::LivePart;
use super::params::{Mode, PianoforteParams, Timing};
use super::perform::ScoreSource;
use super::player::{START_DELAY_SECONDS, start_seed};
use super::shared::{Attachment, Command, Following, Shared, relock};
use super::source::{Decoder, Source, StepControls};
use crate::codec::{self, Event};
use crate::engine::beat_clock::{Meter, SongChange, SongPosition};
use crate::engine::model::LoadOptions;
use crate::perform::model::PerformModel;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// Seconds of silence (all keys up) after which "Continue my playing" takes over.
pub const LISTEN_GAP_SECONDS: f64 = 1.0;
/// How long before the pause is over the continuation is primed (so it is ready in real time).
const PRIME_AHEAD_SECONDS: f64 = 0.5;
/// The musician's playing kept as the primer.
pub const PRIMER_SECONDS: f64 = 20.0;
/// Lookahead beyond the buffer-size part (see [`lookahead_seconds`]).
const BASE_LOOKAHEAD_SECONDS: f64 = 0.25;
/// Model events drawn in one go at most, before looking at commands again.
const MAX_STEPS_PER_TICK: usize = 2000;
/// Capacity of the queues to the audio thread and back.
pub const QUEUE_CAPACITY: usize = 8192;

/// How far ahead of the playhead the engine keeps the queue: enough for two of the host's
/// largest buffers plus a margin for a busy machine.
pub fn lookahead_seconds(sample_rate: f64, max_buffer: u32) -> f64 {
    BASE_LOOKAHEAD_SECONDS + 2.0 * max_buffer as f64 / sample_rate
}

/// Which source plays: the ONNX engine, or in a test build (feature `test-hooks`) with
/// `PIANOFORTE_SOURCE=synthetic`, the test pattern.
fn load_source(model: Option<&std::path::Path>, plugin_folder: Option<&std::path::Path>) -> Result<Box<dyn Source>, LoadError> {
    #[cfg(feature = "test-hooks")]
    if let Some(source) = test_hooks::source() {
        return Ok(source);
    }
    EngineSource::load(model, plugin_folder).map(|s| Box::new(s) as Box<dyn Source>)
}

/// How a model path ("" = built in) becomes a source (tests load a synthetic one).
pub type LoadSource = fn(Option<&std::path::Path>, Option<&std::path::Path>) -> Result<Box<dyn Source>, LoadError>;

/// A model load finished on the loader thread.
struct Loaded {
    path: String,
    /// Asked for by the musician (remembered in the plugin state when it loads).
    chosen: bool,
    result: Result<Box<dyn Source>, LoadError>,
    runtime: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Nothing to play (no model, an error, or no start yet).
    Idle,
    Playing,
    /// Continue mode: the musician plays; wait for a pause.
    Listening,
    /// Perform my part: the track's part is performed as it is heard.
    PerformingPart,
}

static TRACE_COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Worker {
    shared: Arc<Shared>,
    params: Arc<PianoforteParams>,
    commands: Receiver<Command>,
    plugin_folder: Option<PathBuf>,
    load_source: LoadSource,
    source: Option<Box<dyn Source>>,
    /// A performed clip played instead of the model's improvisation (Perform my part), and the
    /// `performed-clip` setting it was opened for.
    score: Option<ScoreSource>,
    score_clip: String,
    /// The track's part performed live, and the performance model (loaded when first needed).
    live: Option<LivePart>,
    perform_model: Option<PerformModel>,
    /// The model path that is playing ("" = built in).
    source_path: Option<String>,
    /// The model path last asked for (by the editor, or restored with the plugin's state).
    requested: Option<String>,
    /// A model load in flight, and the reason a chosen model failed while the built-in one loads.
    loading: Option<Receiver<Loaded>>,
    fallback_reason: Option<String>,
    attachment: Option<Attachment>,
    lookahead: f64,
    state: State,
    generation: u32,
    /// The last start of the audio thread whose performance this thread began.
    begun: Option<u32>,
    mode: Mode,
    decoder: Decoder,
    offset: f64,
    /// Before this clock time nothing starts (a start that was begun late, in real time).
    join_at: f64,
    /// The tempo and meter the performance follows (`None`: free time).
    following: Option<(f64, Meter)>,
    scratch: Vec<(f64, Midi)>,
    pending: VecDeque<Timed>,
    heard: VecDeque<Played>,
    /// The musician as heard so far: their last event, the keys they hold, and the pause the
    /// continuation was primed for.
    last_input: f64,
    held_input: u128,
    primed_for: Option<f64>,
    /// Clock seconds of the musician's note that began the listening.
    takeover: f64,
    /// Fast-render waits whose budget ran out, as last reported.
    timeouts_reported: u64,
    trace: Option<std::io::BufWriter<std::fs::File>>,
    ready_traced: bool,
    /// When the first performance began (the test hooks' panic counts from there).
    first_begun: Option<Instant>,
    busy: Duration,
    started: Instant,
    last_status: Instant,
}

impl Worker {
    pub fn new(shared: Arc<Shared>, params: Arc<PianoforteParams>, commands: Receiver<Command>, plugin_folder: Option<PathBuf>) -> Worker {
        Worker::with_loader(shared, params, commands, plugin_folder, load_source)
    }

    pub fn with_loader(
        shared: Arc<Shared>,
        params: Arc<PianoforteParams>,
        commands: Receiver<Command>,
        plugin_folder: Option<PathBuf>,
        load_source: LoadSource,
    ) -> Worker {
        Worker {
            shared,
            params,
            commands,
            plugin_folder,
            load_source,
            source: None,
            score: None,
            score_clip: String::new(),
            live: None,
            perform_model: None,
            source_path: None,
            requested: None,
            loading: None,
            fallback_reason: None,
            attachment: None,
            lookahead: 0.3,
            state: State::Idle,
            generation: 0,
            // Generation 0 is the state before any start (a start makes it 1 or more).
            begun: Some(0),
            mode: Mode::Free,
            decoder: Decoder::default(),
            offset: 0.0,
            join_at: f64::NEG_INFINITY,
            following: None,
            scratch: Vec::with_capacity(16),
            pending: VecDeque::with_capacity(64),
            heard: VecDeque::new(),
            last_input: f64::NEG_INFINITY,
            held_input: 0,
            primed_for: None,
            takeover: f64::NEG_INFINITY,
            timeouts_reported: 0,
            trace: None,
            ready_traced: false,
            first_begun: None,
            busy: Duration::ZERO,
            started: Instant::now(),
            last_status: Instant::now(),
        }
    }

    /// Runs until `Shutdown` (or the plugin is gone). Sleeps between ticks; commands, starts and
    /// offline waits of the audio thread wake it.
    pub fn run(mut self) {
        let _ = self.shared.rt.engine_thread.set(std::thread::current());
        self.shared.update_status(|s| s.started = true);
        while !self.shared.threads.stopping() {
            std::thread::park_timeout(self.sleep());
            loop {
                match self.commands.try_recv() {
                    Ok(command) => {
                        if !self.handle(command) {
                            return;
                        }
                    }
                    Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
            let began = Instant::now();
            self.poll_loading();
            self.tick();
            self.busy += began.elapsed();
            if self.last_status.elapsed() > Duration::from_millis(250) {
                self.report_status();
            }
            #[cfg(feature = "test-hooks")]
            test_hooks::maybe_panic(self.first_begun);
        }
    }

    /// What the editor shows of this thread: its load, the key Key "Any" chose, and fast-render
    /// waits whose budget ran out (also logged).
    fn report_status(&mut self) {
        self.last_status = Instant::now();
        let (busy, alive) = (self.busy.as_secs_f64(), self.started.elapsed().as_secs_f64());
        // The key the model settled on, while it improvises (not while a part is performed).
        let improvising = self.score.is_none() && self.state != State::PerformingPart;
        let chosen_key = self.source.as_ref().filter(|_| improvising).and_then(|s| s.chosen_key());
        let timeouts = self.shared.rt.offline_timeouts.load(Ordering::Relaxed);
        let render_warning = (timeouts > std::mem::replace(&mut self.timeouts_reported, timeouts)).then(|| {
            let message = format!(
                "a render faster than real time went on without the model or the piano samples: they were not ready within {} s ({timeouts} time(s) so far)",
                super::pace::RENDER_WAIT_BUDGET.as_secs()
            );
            nice_plug::nice_log!("pianoforte: {message}");
            message
        });
        self.shared.update_status(|s| {
            s.busy_seconds = busy;
            s.alive_seconds = alive;
            s.chosen_key = chosen_key;
            if render_warning.is_some() {
                s.render_warning = render_warning;
            }
        });
    }

    fn fast(&self) -> bool {
        self.shared.rt.fast.load(Ordering::Acquire)
    }

    /// How long to sleep: often enough to keep the queue a lookahead ahead while playing in real
    /// time, rarely when there is nothing to do (the audio thread wakes us when it starts).
    fn sleep(&self) -> Duration {
        let playing = self.shared.rt.playing.load(Ordering::Relaxed);
        match self.state {
            _ if self.loading.is_some() => Duration::from_millis(10),
            State::Playing if playing && !self.shared.rt.offline.load(Ordering::Relaxed) => {
                Duration::from_secs_f64((self.lookahead / 8.0).clamp(0.002, 0.010))
            }
            State::Listening | State::PerformingPart if playing => Duration::from_millis(5),
            _ => Duration::from_millis(250),
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
                self.attachment = Some(*attachment);
                self.open_trace();
                // A performance begins at the audio thread's next start, or its listening when
                // the musician took over before this reached us (`tick` sees what changed).
                self.state = State::Idle;
                self.follow_model_path(true);
            }
            Command::LoadModel(path) => {
                let path = path.map(|p| p.display().to_string()).unwrap_or_default();
                self.requested = Some(path.clone());
                self.load(path, true);
            }
        }
        true
    }

    /// Plays the performed clip of the `performed-clip` setting when it changed (a clip dropped on
    /// the editor, Improvise again, a project or preset restored), from the playhead. A clip that
    /// cannot be read is said in words, and the model improvises.
    fn follow_performed_clip(&mut self) {
        // One lock a tick, compared in place: the setting rarely changes, so it is copied only when it did.
        let wanted = match self.params.performed_clip.lock() {
            Ok(stored) if *stored == self.score_clip => return,
            Ok(stored) => stored.clone(),
            Err(_) => String::new(), // as `performed_clip()` reads a poisoned setting: improvise
        };
        self.score = if wanted.is_empty() { None } else { self.open_performed_clip(&wanted) };
        self.score_clip = wanted;
        let name = self.score.as_ref().map(|s| s.name().to_string());
        self.shared.update_status(|s| s.performing = name);
        if self.state != State::Idle {
            self.start_now(true);
        }
    }

    /// The performed clip at `path`; one that cannot be read is said in words (the clips' line).
    fn open_performed_clip(&self, path: &str) -> Option<ScoreSource> {
        ScoreSource::open(std::path::Path::new(path))
            .map_err(|e| *relock(&self.shared.clip_message) = Some(Err(format!("the performed clip cannot be played: {e}"))))
            .ok()
    }

    /// What plays: the performed score, else the model.
    fn playing(&mut self) -> Option<&mut (dyn Source + 'static)> {
        match &mut self.score {
            Some(score) => Some(score),
            None => self.source.as_deref_mut(),
        }
    }

    /// The Mode parameter's mode; a performed score or part is played, never continued.
    fn mode(&self) -> Mode {
        if self.score.is_some() || self.params.perform.value() { Mode::Free } else { self.params.mode.value() }
    }

    /// Loads the model path of the parameters when it changed (a preset, undo or state restored
    /// into a running instance), or at an activation when nothing plays yet. A path that failed
    /// is not tried again until it changes.
    fn follow_model_path(&mut self, activating: bool) {
        let wanted = self.params.model_path();
        let changed = self.requested.as_deref() != Some(wanted.as_str());
        let missing = activating && self.source.is_none() && self.loading.is_none();
        if changed || missing {
            self.requested = Some(wanted.clone());
            self.load(wanted, false);
        }
    }

    /// Starts loading a model ("" = built in) on a thread of its own; [`Self::poll_loading`]
    /// installs it. A load asked for while another runs replaces it.
    fn load(&mut self, path: String, chosen: bool) {
        let label = if path.is_empty() { "the built-in model".to_string() } else { path.clone() };
        self.shared.update_status(|s| s.loading = Some(label));
        let (sender, receiver) = std::sync::mpsc::channel();
        let (plugin_folder, load_source) = (self.plugin_folder.clone(), self.load_source);
        #[cfg(feature = "test-hooks")]
        let shared = self.shared.clone();
        let spawned = self.shared.threads.spawn("pianoforte-loader", move || {
            let model = (!path.is_empty()).then(|| PathBuf::from(&path));
            #[cfg(feature = "test-hooks")]
            test_hooks::slow_load(&shared.threads);
            let result = load_source(model.as_deref(), plugin_folder.as_deref());
            let runtime = crate::engine::runtime::loaded_library().map(|p| p.display().to_string());
            let _ = sender.send(Loaded { path, chosen, result, runtime });
        });
        match spawned {
            Ok(()) => self.loading = Some(receiver),
            Err(e) => self.shared.update_status(|s| {
                s.loading = None;
                s.model_error = Some(e);
            }),
        }
    }

    fn poll_loading(&mut self) {
        let Some(receiver) = self.loading.as_ref() else {
            return;
        };
        match receiver.try_recv() {
            Ok(loaded) => {
                self.loading = None;
                self.install(loaded);
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => {
                self.loading = None;
                self.shared.update_status(|s| {
                    s.loading = None;
                    s.model_error = Some("the model loader stopped unexpectedly".into());
                });
            }
        }
    }

    /// Takes a finished load: the new model plays from now (a new performance), or the reason it
    /// failed is shown and the current one plays on (the built-in one when nothing played yet).
    fn install(&mut self, loaded: Loaded) {
        let Loaded { path, chosen, result, runtime } = loaded;
        let label = if path.is_empty() { "the built-in model".to_string() } else { path.clone() };
        match result {
            Ok(source) => {
                let info = source.info();
                self.source = Some(source);
                self.source_path = Some(path.clone());
                let reason = self.fallback_reason.take();
                self.shared.update_status(|s| {
                    s.model = Some(info);
                    s.model_origin = if path.is_empty() { "built in".into() } else { path.clone() };
                    s.model_error = reason;
                    s.engine_error = None;
                });
                if chosen && let Ok(mut stored) = self.params.model_path.lock() {
                    *stored = path;
                }
                match self.state {
                    // A new model plays from now (unless a performed clip plays instead); one
                    // that arrives while listening plays the continuation (primed again with it).
                    State::Playing if self.score.is_none() => self.start_now(true),
                    State::Listening => self.primed_for = None,
                    State::Idle | State::Playing | State::PerformingPart => {}
                }
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
                if chosen {
                    // The editor's choice failed: the parameters keep the model that plays.
                    self.requested = Some(self.params.model_path());
                }
                if self.source.is_none() && !path.is_empty() && !runtime_missing {
                    // Keep the reason the chosen model failed in view while the built-in one plays.
                    self.fallback_reason = Some(format!("{label}: {message}"));
                    self.load(String::new(), false);
                }
            }
        }
        self.shared.update_status(|s| {
            if self.loading.is_none() {
                s.loading = None;
            }
            if let Some(path) = &runtime {
                s.runtime = Some(Ok(path.clone()));
            }
        });
    }

    /// In a test build (feature `test-hooks`), every event the worker queues goes to a trace file
    /// in `PIANOFORTE_TRACE_DIR`, for the host tests to check sample by sample.
    fn open_trace(&mut self) {
        self.trace = None;
        self.ready_traced = false;
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

    /// Tells the trace, once, that the model and the piano samples are loaded (or have failed)
    /// and the engine waits for a start: the host tests wait for this before they play.
    fn trace_ready(&mut self) {
        if self.ready_traced || self.source.is_none() || self.shared.rt.piano_loading.load(Ordering::Acquire) {
            return;
        }
        if let Some(trace) = self.trace.as_mut() {
            let _ = writeln!(trace, "{}\t-inf\tuntil\t0\t0", self.generation);
            let _ = trace.flush();
            self.ready_traced = true;
        }
    }

    fn flush_trace(&mut self) {
        if let Some(t) = self.trace.as_mut() {
            let _ = t.flush();
        }
    }

    fn controls(&self) -> StepControls {
        let (key_low, key_high) = self.params.key_range();
        StepControls {
            temperature: self.params.temperature.value(),
            motifs: self.params.motifs.value(),
            tightness: self.params.tightness.value(),
            density: self.params.density_setting(),
            key_low,
            key_high,
            tonality: self.tonality(),
        }
    }

    /// The Key parameter as the model's key: a named key through the model card's own table
    /// (Any when the model has no such key).
    fn tonality(&self) -> crate::engine::control::KeyControl {
        use crate::engine::control::KeyControl;
        match self.params.key.value() {
            k @ 1..=24 => {
                let name = super::params::KEY_NAMES[k as usize - 1];
                self.source.as_ref().and_then(|s| s.key_index(name)).map_or(KeyControl::Any, KeyControl::Key)
            }
            super::params::KEY_FOLLOW => {
                // The pitch classes the musician played lately (zeros, i.e. no key, before any).
                let mut counts = [0.0f32; 12];
                for p in self.heard.iter().filter(|p| p.input) {
                    if let Midi::NoteOn { key, .. } = p.midi {
                        counts[key as usize % 12] += 1.0;
                    }
                }
                KeyControl::PitchClasses(counts)
            }
            _ => KeyControl::Any,
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

    /// Begins the performance of the audio thread's last start: at its clock time (plus the
    /// start delay), seeded by the Seed parameter and its song position.
    fn begin_start(&mut self) {
        let rt = &self.shared.rt;
        let at = rt.start_seconds.load(Ordering::Acquire) + START_DELAY_SECONDS;
        let seed = start_seed(self.params.seed.value(), rt.start_position_ms.load(Ordering::Acquire));
        self.begin(at, seed);
        // In real time, a start begun after its first note was due (the model arrived late)
        // joins the performance where it is now: what is past is dropped here, not counted late.
        let now = self.now();
        if !self.fast() && now > at {
            self.join_at = now + START_DELAY_SECONDS;
        }
    }

    /// Begins a performance from the playhead (a new model, the musician's pause in Continue
    /// mode); a new generation when `bump`.
    fn start_now(&mut self, bump: bool) {
        if bump {
            self.generation = self.shared.rt.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        }
        let seed = start_seed(self.params.seed.value(), self.shared.rt.position_ms.load(Ordering::Acquire));
        self.begin(self.now() + START_DELAY_SECONDS, seed);
    }

    fn begin(&mut self, at: f64, seed: u64) {
        self.first_begun.get_or_insert_with(Instant::now);
        if self.params.perform.value() {
            return self.begin_part(at - START_DELAY_SECONDS, seed);
        }
        self.mode = self.mode();
        if self.prime(seed, at) {
            self.play_from(at);
        }
    }

    /// Perform my part from clock second `from` on: the track's notes heard since then are the
    /// part; the song's tempo and position place them in beats.
    fn begin_part(&mut self, from: f64, seed: u64) {
        if self.perform_model.is_none() {
            let options = LoadOptions { runtime: runtime_options(self.plugin_folder.as_deref()), threads: 1 };
            match PerformModel::load(None, &options) {
                Ok(model) => self.perform_model = Some(model),
                Err(e) => return self.fail(format!("Perform my part: {e}")),
            }
        }
        let anchor = self.shared.grid.load().unwrap_or_default();
        let (bpm, meter) = self.song_tempo(&anchor);
        let place = if anchor.positioned() { (anchor.beats, anchor.clock) } else { (0.0, from) };
        let mut live = LivePart::new(bpm, meter, place, seed, self.generation);
        for played in self.heard.iter().filter(|p| p.time >= from) {
            live.hear(played);
        }
        self.live = Some(live);
        self.pending.clear();
        self.state = State::PerformingPart;
        self.shared.update_status(|s| s.listening = false);
    }

    /// Performs what the part decides now, and queues what is decided for good.
    fn perform_part(&mut self, heard_until: f64) {
        let (Some(live), Some(model)) = (self.live.as_mut(), self.perform_model.as_mut()) else { return };
        if let Err(e) = live.decide(heard_until, model, &mut self.pending) {
            return self.fail(format!("Perform my part stopped: {e}"));
        }
        self.push_pending(LivePart::decided_until(heard_until));
    }

    /// The song's tempo and meter: the host's, else the Tempo parameter and 4/4.
    fn song_tempo(&self, anchor: &GridAnchor) -> (f64, Meter) {
        let meter = Meter::new(anchor.numerator as u16, anchor.denominator as u16).unwrap_or(Meter::FOUR_FOUR);
        let bpm = if anchor.bpm > 0.0 { anchor.bpm } else { self.params.tempo.value() as f64 };
        (bpm, meter)
    }

    /// Where the song is at clock time `at` with Timing on Song tempo: its tempo and meter and,
    /// while the host's transport plays, its position; without a position bar 1 begins at `at`.
    /// `None` in free time.
    fn song_at(&self, at: f64) -> Option<SongPosition> {
        if self.params.timing.value() == Timing::Free {
            return None;
        }
        let anchor = self.shared.grid.load().unwrap_or_default();
        let (bpm, meter) = self.song_tempo(&anchor);
        let (quarters, bar_start_quarters) =
            if anchor.positioned() { (anchor.beats + (at - anchor.clock) * bpm / 60.0, anchor.bar_start) } else { (0.0, 0.0) };
        Some(SongPosition { quarters, bar_start_quarters, bpm, meter })
    }

    /// Tempo automation and meter changes (the host's, or the Tempo parameter's when the host
    /// tells none) reach the performance, from its next beat.
    fn follow_tempo(&mut self) {
        let Some(following) = self.following else { return };
        let anchor = self.shared.grid.load();
        let (bpm, meter) = self.song_tempo(&anchor.unwrap_or_default());
        if (bpm, meter) == following {
            return;
        }
        let at = anchor.map_or(self.now(), |a| a.clock);
        // Where the host says the song is, when it says: that keeps a ramp's beats in place.
        let change = match anchor.filter(GridAnchor::positioned) {
            Some(a) => SongChange::At(SongPosition { quarters: a.beats, bar_start_quarters: a.bar_start, bpm, meter }),
            None => SongChange::Tempo { bpm, meter },
        };
        let seconds = at - self.offset;
        if let Some(source) = self.playing() {
            source.change_song(seconds, change);
        }
        self.following = Some((bpm, meter));
        let bar_line = match anchor.filter(GridAnchor::positioned) {
            Some(a) => a.clock - (a.beats - a.bar_start) * 60.0 / bpm,
            None => self.shared.status().following.map_or(at, |f| f.bar_line),
        };
        self.publish_following(bar_line);
    }

    /// Tells the editor which tempo and meter the performance follows, and where a bar line is.
    fn publish_following(&self, bar_line: f64) {
        let model_hears_beats = self.source.as_ref().is_some_and(|s| s.hears_beats());
        let following = self.following.map(|(bpm, meter)| Following { bpm, meter, bar_line, model_hears_beats });
        self.shared.update_status(|status| status.following = following);
    }

    /// Restarts the source with `seed`, primed with [`Self::primer`] and the controls of now;
    /// false (and idle) when there is no model or it fails.
    fn prime(&mut self, seed: u64, at: f64) -> bool {
        let primer = self.primer();
        let controls = self.controls();
        let song = self.song_at(at);
        self.following = song.map(|s| (s.bpm, s.meter));
        // The musician's last event, which ends the primer, was heard this long before `at`.
        let gap = if primer.is_empty() { 0.0 } else { self.heard.back().map_or(0.0, |p| (at - p.time).max(0.0)) };
        self.publish_following(song.map_or(at, |s| at - s.seconds_into_bar()));
        let Some(source) = self.playing() else {
            self.state = State::Idle;
            return false;
        };
        source.follow(song, gap);
        match source.restart(&primer, seed, &controls) {
            Ok(()) => true,
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// Plays the primed source from clock time `at`.
    fn play_from(&mut self, at: f64) {
        self.pending.clear();
        self.decoder = Decoder::default();
        self.offset = at;
        self.join_at = f64::NEG_INFINITY;
        self.state = State::Playing;
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
        self.trace_ready();
        self.follow_model_path(false);
        self.follow_performed_clip();
        // How far the musician's events are all in the played queue: read before taking them.
        let heard_until = self.heard_until();
        self.collect_played();
        let rt = &self.shared.rt;
        let generation = rt.generation.load(Ordering::Acquire);
        let mode = self.mode();
        let start = rt.start_generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            self.pending.clear();
            self.state = State::Idle;
            if generation != start && mode == Mode::Continue {
                // The musician plays: listen, then continue from what was played.
                self.state = State::Listening;
                self.takeover = rt.takeover_seconds.load(Ordering::Acquire);
                self.shared.update_status(|s| s.listening = true);
            } else if generation != start {
                self.start_now(false);
            }
        } else if mode != self.mode && mode == Mode::Free && self.state == State::Listening {
            self.start_now(true);
        }
        self.mode = mode;
        // Perform my part switched while playing: the new way from now.
        let performing = self.state == State::PerformingPart;
        if self.state != State::Idle && performing != self.params.perform.value() {
            self.start_now(true);
        }
        // A start of the audio thread not begun yet (it may have come before this activation's
        // Attach reached us, or while the model loaded).
        if self.start_waiting() && (self.score.is_some() || self.source.is_some() || self.params.perform.value()) {
            self.begun = Some(generation);
            self.begin_start();
        }
        match self.state {
            State::Idle => {}
            State::Listening => self.listen(heard_until),
            State::Playing => {
                self.follow_tempo();
                self.fill();
            }
            State::PerformingPart => self.perform_part(heard_until),
        }
        self.publish_decided(heard_until);
        self.flush_trace();
    }

    /// Clock seconds before which every event of the musician is in the played queue: the end of
    /// the buffer a fast render waits in (its inputs are queued before it waits), else the end of
    /// the last buffer.
    fn heard_until(&self) -> f64 {
        let rt = &self.shared.rt;
        let clock = rt.clock_seconds.load(Ordering::Acquire);
        if self.fast() { rt.wanted_until.load(Ordering::Acquire).max(clock) } else { clock }
    }

    /// Continue my playing: once the musician has let go of every key for
    /// [`LISTEN_GAP_SECONDS`] (as heard on the clock, up to `heard_until`), the continuation plays
    /// from the end of that pause. It is primed a little before, so it is ready in real time.
    fn listen(&mut self, heard_until: f64) {
        // The note that began this listening must have reached us, every key be up, and a model
        // be there to continue (a fast render waits for it: see `publish_decided`).
        let Some(pause_ends) = self.pause_ends() else {
            return;
        };
        if self.source.is_none() {
            return;
        }
        if heard_until < pause_ends - PRIME_AHEAD_SECONDS {
            return;
        }
        if self.primed_for != Some(self.last_input) {
            // Seeded by the Seed parameter and the pause's clock time: the same everywhere.
            let seed = start_seed(self.params.seed.value(), (pause_ends * 1000.0).round() as i64);
            self.first_begun.get_or_insert_with(Instant::now);
            if !self.prime(seed, pause_ends + START_DELAY_SECONDS) {
                return;
            }
            self.primed_for = Some(self.last_input);
        }
        if heard_until >= pause_ends {
            self.primed_for = None;
            self.play_from(pause_ends + START_DELAY_SECONDS);
        }
    }

    /// When the musician's pause will be long enough to continue (they have let go of every key),
    /// as far as they have been heard.
    fn pause_ends(&self) -> Option<f64> {
        (self.last_input >= self.takeover && self.held_input == 0).then_some(self.last_input + LISTEN_GAP_SECONDS)
    }

    /// Whether the performance now playing is a start of the audio thread not begun yet.
    fn start_waiting(&self) -> bool {
        self.generation == self.shared.rt.start_generation.load(Ordering::Acquire) && self.begun != Some(self.generation)
    }

    /// Tells the audio thread how far the performance is in the queue (offline it waits for it).
    fn publish_decided(&self, heard_until: f64) {
        let until = match self.state {
            State::Playing => self.pending.front().map_or(self.decoder.seconds() + self.offset, |e| e.time),
            // A start waits for a model that is loading: so does a fast render.
            _ if self.start_waiting() && self.loading.is_some() => f64::NEG_INFINITY,
            // Nothing plays before the musician's pause, known as far as they were heard; the
            // continuation waits for a model that is loading.
            State::Listening if self.source.is_none() && self.loading.is_some() => {
                heard_until.min(self.pause_ends().unwrap_or(f64::INFINITY))
            }
            State::Listening => heard_until,
            State::PerformingPart => self.pending.front().map_or(f64::INFINITY, |e| e.time).min(LivePart::decided_until(heard_until)),
            State::Idle => f64::INFINITY,
        };
        self.shared.rt.publish_decided(self.generation, until);
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
        // The host's grid (tempo, time signature, bars) for the clips.
        take.observe_grid(self.shared.grid.load());
        for _ in 0..available {
            let Ok(played) = attachment.played.pop() else {
                break;
            };
            take.push(played);
            if played.input {
                self.last_input = played.time;
                match played.midi {
                    Midi::NoteOn { key, .. } => self.held_input |= 1 << (key & 0x7f),
                    Midi::NoteOff { key } => self.held_input &= !(1 << (key & 0x7f)),
                    Midi::Pedal { .. } => {}
                }
                if self.state == State::PerformingPart
                    && let Some(live) = self.live.as_mut()
                {
                    live.hear(&played);
                }
                self.heard.push_back(played);
                while self.heard.front().is_some_and(|f| played.time - f.time > PRIMER_SECONDS * 2.0) || self.heard.len() > 8192 {
                    self.heard.pop_front();
                }
            }
        }
    }

    /// Moves the pending events before `until` into the audio thread's queue (and the trace);
    /// false when the queue is full.
    fn push_pending(&mut self, until: f64) -> bool {
        while let Some(&event) = self.pending.front().filter(|e| e.time < until) {
            let Some(attachment) = self.attachment.as_mut() else {
                return false;
            };
            if attachment.events.push(event).is_err() {
                return false;
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
        true
    }

    /// Draws events until the queue reaches the lookahead.
    fn fill(&mut self) {
        // Offline exactly what the audio thread waits for, so automation lands where it did; else
        // a lookahead ahead, as in playback (a fast render waits until it is there).
        let rt = &self.shared.rt;
        let horizon =
            if rt.offline.load(Ordering::Acquire) { rt.wanted_until.load(Ordering::Acquire) } else { self.now() + self.lookahead };
        let mut steps = 0;
        loop {
            // What was decoded but did not fit yet goes first.
            if !self.push_pending(f64::INFINITY) {
                return;
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
            let Some(source) = self.playing() else {
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
                let time = t + self.offset;
                if time < self.join_at && matches!(midi, Midi::NoteOn { .. } | Midi::Pedal { down: true }) {
                    continue;
                }
                self.pending.push_back(Timed { time, generation: self.generation, midi });
            }
            self.scratch = scratch;
        }
    }
}

/// Faults the host tests inject into a test build.
#[cfg(feature = "test-hooks")]
mod test_hooks {
    use crate::plugin::source::Source;
    use crate::plugin::synthetic::Synthetic;
    use crate::plugin::threads::Threads;
    use std::time::{Duration, Instant};

    /// `PIANOFORTE_SOURCE=synthetic`: a deterministic pattern instead of the model.
    pub fn source() -> Option<Box<dyn Source>> {
        std::env::var("PIANOFORTE_SOURCE").is_ok_and(|v| v == "synthetic").then(|| Box::new(Synthetic::new()) as Box<dyn Source>)
    }

    /// `PIANOFORTE_TEST_SLOW_LOAD=SECONDS`: every model load takes that much longer (a slow
    /// disk), ending early when the plugin closes.
    pub fn slow_load(threads: &Threads) {
        let seconds = std::env::var("PIANOFORTE_TEST_SLOW_LOAD").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let until = Instant::now() + Duration::from_secs_f64(seconds.max(0.0));
        while Instant::now() < until && !threads.stopping() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `PIANOFORTE_TEST_PANIC=SECONDS`: the engine thread panics that long after its first
    /// performance began.
    pub fn maybe_panic(first_begun: Option<Instant>) {
        let after = std::env::var("PIANOFORTE_TEST_PANIC").ok().and_then(|v| v.parse::<f64>().ok());
        if let (Some(after), Some(began)) = (after, first_begun)
            && began.elapsed() > Duration::from_secs_f64(after)
        {
            panic!("injected by PIANOFORTE_TEST_PANIC");
        }
    }
}
