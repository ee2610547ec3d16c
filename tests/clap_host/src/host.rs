//! The CLAP host: loads the plugin with clack-host, runs blocks with a simulated transport and
//! parameter automation, and records every output event.

use crate::trace::{TraceReader, trace_files};
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_host::events::Match;
use clack_host::events::event_types::{NoteOffEvent, NoteOnEvent, ParamValueEvent, TransportEvent, TransportFlags};
use clack_host::events::spaces::CoreEventSpace;
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Shared {
    callback: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback.store(true, Ordering::Release);
    }
}

pub struct TestHost;

impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();
}

/// One output event as the host received it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutKind {
    On {
        key: u8,
        velocity: u8,
    },
    Off {
        key: u8,
    },
    /// CC64 value.
    Pedal {
        value: u8,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutEvent {
    /// The sample rate of the activation it came in.
    pub rate: f64,
    /// Host sample (counted over every processed block of the run).
    pub host_sample: u64,
    /// The plugin's performance clock at this sample, as the host mirrors it.
    pub clock_sample: i64,
    /// Offset inside its block.
    pub time: u32,
    pub block: usize,
    pub channel: u8,
    pub kind: OutKind,
}

/// Something the host does at the start of a block.
#[derive(Debug, Clone)]
pub enum Action {
    Transport(bool),
    /// No transport information at all (a free-running host).
    NoTransport,
    Jump(f64),
    /// Set a parameter (by name) to a value given as text (converted by the plugin).
    Param(&'static str, &'static str),
    /// A note played into the plugin (channel 2): key, velocity, length in seconds.
    Note(u8, u8, f64),
    /// Deactivate and activate again with another sample rate (and block sizes).
    Reactivate(f64),
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub seconds: f64,
    pub actions: Vec<Action>,
    /// Measure notes per second in this segment (after a settling time) under this label.
    pub measure: Option<&'static str>,
}

pub fn seg(seconds: f64, actions: Vec<Action>) -> Segment {
    Segment { seconds, actions, measure: None }
}

#[derive(Debug, Clone)]
pub enum Sizes {
    Fixed(u32),
    /// Cycles through these sizes.
    Cycle(Vec<u32>),
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub sample_rate: f64,
    pub sizes: Sizes,
    pub segments: Vec<Segment>,
    /// Wait for the engine to have queued each block's events before processing it (so the
    /// comparison with the trace is exact); otherwise run paced to the wall clock.
    pub lockstep: bool,
    /// Wall-clock pacing factor when not lockstep (1.0 = real time).
    pub speed: f64,
    /// The plugin is expected to stay silent (no ONNX Runtime): do not wait for its engine.
    pub expect_silence: bool,
    /// Render offline (CLAP render extension): as fast as the plugin allows, no waiting here.
    pub offline: bool,
    /// The host takes at most this many output events per block (the rest are refused).
    pub output_limit: Option<usize>,
    /// How fast the song position moves while playing (1.0: with the samples; varispeed else).
    pub position_speed: f64,
    /// The transport gives beats only (no seconds timeline), as some hosts do.
    pub beats_only: bool,
    /// The channel of the musician's notes (0: the channel the plugin plays on).
    pub input_channel: u16,
    /// Keep the plugin's audio output (the built-in piano) in the run.
    pub record_audio: bool,
    /// The song's tempo and meter as the transport tells them (default 120 BPM, 4/4).
    pub tempo: TempoMap,
    /// The audio thread runs at real-time priority (SCHED_FIFO), as DAWs run theirs on Linux;
    /// the plugin's own threads keep theirs (they were started before, from the main thread).
    pub realtime: bool,
}

impl Scenario {
    pub fn new(name: &str, sample_rate: f64, sizes: Sizes, segments: Vec<Segment>) -> Scenario {
        Scenario {
            name: name.into(),
            sample_rate,
            sizes,
            segments,
            lockstep: true,
            speed: 0.0,
            expect_silence: false,
            offline: false,
            output_limit: None,
            position_speed: 1.0,
            beats_only: false,
            input_channel: 1,
            record_audio: false,
            tempo: TempoMap::default(),
            realtime: false,
        }
    }
}

/// Puts the calling thread at real-time priority (SCHED_FIFO 70, as JACK's clients run), or says
/// why it cannot.
fn run_at_realtime_priority() -> Result<(), String> {
    let param = libc::sched_param { sched_priority: 70 };
    // SAFETY: `param` is a valid sched_param; pthread_self() is the calling thread.
    match unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) } {
        0 => Ok(()),
        error => {
            Err(format!("cannot run the audio thread at real-time priority (SCHED_FIFO): {}", std::io::Error::from_raw_os_error(error)))
        }
    }
}

/// The host's output event list, refusing events beyond `limit` per block (a full host buffer).
pub struct LimitedOutput {
    pub events: EventBuffer,
    limit: Option<usize>,
    /// Events refused so far.
    pub refused: usize,
}

impl LimitedOutput {
    pub fn new(limit: Option<usize>) -> LimitedOutput {
        LimitedOutput { events: EventBuffer::with_capacity(1024), limit, refused: 0 }
    }
}

impl clack_host::events::io::OutputEventBuffer for LimitedOutput {
    fn try_push(&mut self, event: &clack_host::events::UnknownEvent) -> Result<(), clack_host::events::io::TryPushError> {
        if self.limit.is_some_and(|limit| self.events.len() as usize >= limit) {
            self.refused += 1;
            return Err(clack_host::events::io::TryPushError::new());
        }
        self.events.push(event);
        Ok(())
    }
}

/// Why a block is special for the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Stop,
    Jump,
    Bypass,
    Restart,
    Activation,
}

#[derive(Debug, Clone, Copy)]
pub struct CutAt {
    pub block: usize,
    #[allow(dead_code)]
    pub host_sample: u64,
    /// The plugin's performance clock there, in seconds.
    pub clock_seconds: f64,
    pub reason: Cut,
}

#[derive(Debug, Default)]
pub struct Run {
    pub events: Vec<OutEvent>,
    /// Blocks where everything generated must have ended at their first sample.
    pub cuts: Vec<CutAt>,
    /// (label, notes, seconds) for measured segments.
    pub measured: Vec<(&'static str, usize, f64)>,
    /// Input notes sent: (host sample, kind), and the same with the performance clock's sample.
    pub inputs: Vec<(u64, OutKind)>,
    pub input_clock: Vec<(i64, OutKind)>,
    /// process() per call: wall time, the calling thread's CPU time (seconds) and the block length.
    pub process_times: Vec<ProcessTime>,
    pub blocks: usize,
    pub final_clock: i64,
    pub sample_rates: Vec<(i64, f64)>,
    pub trace: Vec<crate::trace::Traced>,
    pub trace_files: Vec<PathBuf>,
    /// Blocks the lockstep wait gave up on (the engine did not get there in time).
    pub stalls: usize,
    pub wall_seconds: f64,
    /// CPU seconds of the plugin's engine thread during the run.
    pub engine_cpu_seconds: f64,
    pub sorted: bool,
    /// Output events the host refused (a full buffer).
    pub refused: usize,
    /// Context switches (wake-ups) of the engine thread during the run.
    pub engine_switches: u64,
    /// The plugin's audio output, left and right (when the scenario records it).
    pub audio: [Vec<f32>; 2],
    /// Blocks whose first sample starts a new performance: (block, clock sample, block length).
    pub starts: Vec<(usize, i64, u32)>,
}

pub struct Plugin {
    entry: PluginEntry,
    id: CString,
}

impl Plugin {
    pub fn load(path: &Path) -> Result<Plugin, String> {
        // SAFETY: loading a plugin runs its code; that is the point of this host.
        let entry = unsafe { PluginEntry::load(path) }.map_err(|e| format!("{}: {e:?}", path.display()))?;
        let factory = entry.get_plugin_factory().ok_or("no plugin factory")?;
        let descriptor = factory.plugin_descriptors().next().ok_or("the factory has no plugin")?;
        let id = descriptor.id().ok_or("plugin without id")?.to_owned();
        Ok(Plugin { entry, id })
    }

    pub fn id(&self) -> String {
        self.id.to_string_lossy().into_owned()
    }

    /// A new instance of the plugin.
    pub fn instance(&self) -> Result<PluginInstance<TestHost>, String> {
        PluginInstance::<TestHost>::new(|_| Shared { callback: AtomicBool::new(false) }, |_| (), &self.entry, &self.id, &host_info())
            .map_err(|e| format!("cannot instantiate: {e:?}"))
    }
}

/// Runs the plugin's main-thread callback when it asked for one.
pub fn service_callbacks(instance: &mut PluginInstance<TestHost>) {
    if instance.access_shared_handler(|s| s.callback.swap(false, Ordering::AcqRel)) {
        instance.call_on_main_thread_callback();
    }
}

fn host_info() -> HostInfo {
    HostInfo::new("pianoforte test host", "pianoforte", "https://example.invalid", "0.1").expect("valid host info")
}

/// (parameter name, text) -> (parameter id, CLAP value).
type ParamValues = HashMap<(String, String), (ClapId, f64)>;

/// Parameter ids by name, and the CLAP values of the texts the scenarios use.
fn param_values(instance: &mut PluginInstance<TestHost>, scenario: &Scenario) -> Result<ParamValues, String> {
    let handle = instance.plugin_handle();
    let params: PluginParams = handle.get_extension().ok_or("the plugin has no params extension")?;
    let mut ids = HashMap::new();
    let mut buffer = ParamInfoBuffer::new();
    for i in 0..params.count(&handle) {
        if let Some(info) = params.get_info(&handle, i, &mut buffer) {
            ids.insert(String::from_utf8_lossy(info.name).into_owned(), info.id);
        }
    }
    let mut values = HashMap::new();
    for segment in &scenario.segments {
        for action in &segment.actions {
            if let Action::Param(name, text) = action {
                let id = *ids.get(*name).ok_or_else(|| format!("no parameter named {name}; have {:?}", ids.keys()))?;
                let ctext = CString::new(*text).unwrap();
                let value =
                    params.text_to_value(&handle, id, &ctext).ok_or_else(|| format!("the plugin cannot read {text:?} for {name}"))?;
                values.insert((name.to_string(), text.to_string()), (id, value));
            }
        }
    }
    Ok(values)
}

/// One process() call: how long it took (wall), how much of that the calling thread ran (cpu:
/// the kernel's count, which leaves out time the thread waited, was preempted, or the VM's CPU was
/// stolen), and the block's length.
#[derive(Debug, Clone, Copy)]
pub struct ProcessTime {
    pub wall: f64,
    pub cpu: f64,
    pub frames: u32,
}

/// CPU seconds the calling thread has run (CLOCK_THREAD_CPUTIME_ID).
pub fn this_thread_cpu_seconds() -> f64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write; the clock id is a constant Linux knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// CPU seconds (user + system) of this process's thread named `name`.
pub fn thread_cpu_seconds(name: &str) -> f64 {
    let ticks = unsafe { libc_sysconf_clk_tck() };
    let mut total = 0.0;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            // Linux keeps 15 bytes of a thread's name.
            if comm.trim() != &name[..name.len().min(15)] {
                continue;
            }
            if let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) {
                // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
                if let Some(rest) = stat.rsplit(')').next() {
                    let fields: Vec<&str> = rest.split_whitespace().collect();
                    let utime: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0);
                    let stime: f64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
                    total += (utime + stime) / ticks;
                }
            }
        }
    }
    total
}

/// Context switches of a named thread of this process so far (each wake-up is at least one).
pub fn thread_switches(name: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != &name[..name.len().min(15)] {
            continue;
        }
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines().filter(|l| l.contains("ctxt_switches:")) {
            total += line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    total
}

unsafe extern "C" {
    fn sysconf(name: i32) -> i64;
}

unsafe fn libc_sysconf_clk_tck() -> f64 {
    // _SC_CLK_TCK is 2 on Linux.
    let v = unsafe { sysconf(2) };
    if v > 0 { v as f64 } else { 100.0 }
}

/// The song's tempo over time, as the host's transport tells it: a tempo in BPM (quarter notes per
/// minute) at each of `points` (seconds of song time, in order), linear from one point to the next
/// (CLAP's `tempo_inc`: a steady change per sample), steady after the last; two points at the same
/// time are a sudden change there. The meter stays `numerator/denominator`.
#[derive(Debug, Clone, PartialEq)]
pub struct TempoMap {
    pub points: Vec<(f64, f64)>,
    pub numerator: u16,
    pub denominator: u16,
}

impl Default for TempoMap {
    /// 120 BPM, 4/4: what every scenario's transport said before tempo maps.
    fn default() -> Self {
        TempoMap::constant(120.0, 4, 4)
    }
}

impl TempoMap {
    pub fn constant(bpm: f64, numerator: u16, denominator: u16) -> TempoMap {
        TempoMap { points: vec![(0.0, bpm)], numerator, denominator }
    }

    /// From `from` BPM to `to` BPM, steadily in time, over the first `bars` bars; `to` afterwards.
    pub fn ramp(from: f64, to: f64, bars: f64, numerator: u16, denominator: u16) -> TempoMap {
        let mut map = TempoMap::constant(from, numerator, denominator);
        // The mean tempo of a steady ramp is the mean of its ends.
        let seconds = bars * map.bar_quarters() * 60.0 / ((from + to) / 2.0);
        map.points.push((seconds, to));
        map
    }

    /// `from` BPM, then `to` BPM from the first beat of bar `bar` (counted from 1) on.
    pub fn change_at_bar(from: f64, to: f64, bar: u32, numerator: u16, denominator: u16) -> TempoMap {
        let mut map = TempoMap::constant(from, numerator, denominator);
        let at = (bar - 1) as f64 * map.bar_quarters() * 60.0 / from;
        map.points.extend([(at, from), (at, to)]);
        map
    }

    /// Quarter notes in a bar.
    pub fn bar_quarters(&self) -> f64 {
        self.numerator as f64 * 4.0 / self.denominator as f64
    }

    /// Piece `index` of the map (from its point to the next): (its start, its tempo there, its change in
    /// BPM per second).
    fn piece(&self, index: usize) -> (f64, f64, f64) {
        let (t0, bpm0) = self.points[index];
        match self.points.get(index + 1) {
            Some(&(t1, bpm1)) if t1 > t0 => (t0, bpm0, (bpm1 - bpm0) / (t1 - t0)),
            _ => (t0, bpm0, 0.0),
        }
    }

    /// The index of the piece in force at `seconds` (the last point at or before it).
    fn piece_at(&self, seconds: f64) -> usize {
        self.points.iter().rposition(|&(t, _)| t <= seconds).unwrap_or(0)
    }

    /// The tempo (BPM) at `seconds`, and its change per second there.
    pub fn tempo_at(&self, seconds: f64) -> (f64, f64) {
        let (t0, bpm0, slope) = self.piece(self.piece_at(seconds));
        (bpm0 + slope * (seconds - t0), slope)
    }

    /// The song position in quarter notes at `seconds`: the exact integral of the tempo.
    pub fn quarters_at(&self, seconds: f64) -> f64 {
        if let [(_, bpm)] = self.points[..] {
            // As the steady 120 BPM transport always computed it (bit for bit).
            return seconds * bpm / 60.0;
        }
        let mut quarters = 0.0;
        for index in 0..=self.piece_at(seconds) {
            let (t0, bpm0, slope) = self.piece(index);
            let end = self.points.get(index + 1).map_or(seconds, |p| p.0.min(seconds));
            let d = (end - t0).max(0.0);
            quarters += (bpm0 * d + slope * d * d / 2.0) / 60.0;
        }
        quarters
    }
}

pub fn transport_event(playing: bool, pos_samples: i64, sample_rate: f64, beats_only: bool) -> TransportEvent {
    transport_at(&TempoMap::default(), playing, pos_samples, sample_rate, beats_only)
}

/// The transport at song position `pos_samples` of the tempo map `map`.
pub fn transport_at(map: &TempoMap, playing: bool, pos_samples: i64, sample_rate: f64, beats_only: bool) -> TransportEvent {
    let seconds = pos_samples as f64 / sample_rate;
    let (tempo, per_second) = map.tempo_at(seconds);
    let mut flags = TransportFlags::HAS_TEMPO | TransportFlags::HAS_BEATS_TIMELINE | TransportFlags::HAS_TIME_SIGNATURE;
    if !beats_only {
        flags |= TransportFlags::HAS_SECONDS_TIMELINE;
    }
    if playing {
        flags |= TransportFlags::IS_PLAYING;
    }
    let beats = map.quarters_at(seconds);
    let bar = map.bar_quarters();
    TransportEvent {
        header: EventHeader::new_core(0, clack_host::events::EventFlags::empty()),
        flags,
        song_pos_beats: BeatTime::from_float(beats),
        song_pos_seconds: SecondsTime::from_float(seconds),
        tempo,
        // BPM per sample, until the next transport event.
        tempo_inc: per_second / sample_rate,
        loop_start_beats: BeatTime::from_int(0),
        loop_end_beats: BeatTime::from_int(0),
        loop_start_seconds: SecondsTime::from_int(0),
        loop_end_seconds: SecondsTime::from_int(0),
        bar_start: BeatTime::from_float((beats / bar).floor() * bar),
        bar_number: (beats / bar).floor() as i32,
        time_signature_numerator: map.numerator,
        time_signature_denominator: map.denominator,
    }
}

/// Runs a scenario on a fresh plugin instance.
pub fn run(plugin: &Plugin, scenario: &Scenario, trace_dir: &Path, model: Option<&Path>) -> Result<Run, String> {
    let mut instance =
        PluginInstance::<TestHost>::new(|_| Shared { callback: AtomicBool::new(false) }, |_| (), &plugin.entry, &plugin.id, &host_info())
            .map_err(|e| format!("cannot instantiate: {e:?}"))?;
    if let Some(model) = model {
        set_fields(&mut instance, &[("model-path", &model.display().to_string())])?;
    }
    let values = param_values(&mut instance, scenario)?;
    let max_frames = match &scenario.sizes {
        Sizes::Fixed(n) => *n,
        Sizes::Cycle(v) => *v.iter().max().unwrap(),
    };
    let mut run = Run { sorted: true, ..Run::default() };
    let mut sample_rate = scenario.sample_rate;
    let known_traces = trace_files(trace_dir).len();

    let mut state = RunState {
        playing: false,
        transport: true,
        pos: 0.0,
        clock: 0,
        host_sample: 0,
        play_param: false,
        seed: f64::NAN,
        bypass: false,
        continue_mode: false,
        size_index: 0,
        pending_offs: Vec::new(),
    };
    // The first activation's first block ends whatever a previous life left sounding.
    run.cuts.push(CutAt { block: 0, host_sample: 0, clock_seconds: 0.0, reason: Cut::Activation });
    let started = Instant::now();
    let cpu_before = thread_cpu_seconds("pianoforte-engine");
    let switches_before = thread_switches("pianoforte-engine");
    let mut segment_index = 0;
    let mut trace: Option<TraceReader> = None;
    while segment_index < scenario.segments.len() {
        if scenario.offline {
            use clack_extensions::render::{PluginRender, RenderMode};
            let handle = instance.plugin_handle();
            let render: PluginRender = handle.get_extension().ok_or("the plugin has no render extension")?;
            render.set(&handle, RenderMode::Offline).map_err(|e| format!("cannot render offline: {e}"))?;
        }
        let config = PluginAudioConfiguration { sample_rate, min_frames_count: 1, max_frames_count: max_frames };
        let processor = instance.activate(|_, _| (), config).map_err(|e| format!("cannot activate: {e:?}"))?;
        run.sample_rates.push((state.clock, sample_rate));
        // The engine thread opens a new trace file for this activation.
        let deadline = Instant::now() + Duration::from_secs(if scenario.expect_silence { 2 } else { 60 });
        let files = loop {
            let files = trace_files(trace_dir);
            if files.len() > known_traces + run.trace_files.len() || Instant::now() > deadline {
                break files;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if let Some(mut t) = trace.take() {
            t.poll();
            run.trace.extend(t.events);
        }
        let path = files.last().cloned().filter(|_| files.len() > known_traces + run.trace_files.len());
        let mut reader = match (path, scenario.expect_silence) {
            (Some(path), _) => {
                run.trace_files.push(path.clone());
                TraceReader::new(path)
            }
            (None, true) => TraceReader::new(trace_dir.join("none")),
            (None, false) => {
                return Err(format!("the plugin wrote no trace file into {} (is PIANOFORTE_TRACE_DIR passed on?)", trace_dir.display()));
            }
        };
        // Wait until the engine has queued something (model loaded).
        if !scenario.expect_silence {
            let deadline = Instant::now() + Duration::from_secs(120);
            while reader.horizon().is_none() && Instant::now() < deadline {
                reader.poll();
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.horizon().is_none() {
                return Err("the engine queued nothing within 120 s (model not loaded? see the plugin's log)".into());
            }
        }
        let done = AtomicBool::new(false);
        let shared_state = std::thread::scope(|scope| {
            let audio = scope.spawn(|| {
                if scenario.realtime {
                    run_at_realtime_priority()?;
                }
                let mut processor = processor.start_processing().map_err(|e| format!("cannot start processing: {e:?}"))?;
                let result = process_segments(
                    &mut processor,
                    scenario,
                    &mut segment_index,
                    &mut state,
                    &mut run,
                    &mut reader,
                    &values,
                    sample_rate,
                    max_frames,
                );
                done.store(true, Ordering::Release);
                result.map(|next_rate| (processor.stop_processing(), next_rate))
            });
            // The main thread answers the plugin's main-thread callbacks meanwhile.
            while !done.load(Ordering::Acquire) {
                if instance.access_shared_handler(|s| s.callback.swap(false, Ordering::AcqRel)) {
                    instance.call_on_main_thread_callback();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            audio.join().map_err(|_| "the audio thread panicked".to_string())?
        });
        let (stopped, next_rate) = shared_state?;
        instance.deactivate(stopped);
        trace = Some(reader);
        if let Some(rate) = next_rate {
            state.clock = (state.clock as f64 * rate / sample_rate).round() as i64;
            sample_rate = rate;
            run.cuts.push(CutAt {
                block: run.blocks,
                host_sample: state.host_sample,
                clock_seconds: state.clock as f64 / sample_rate,
                reason: Cut::Activation,
            });
        }
        if instance.access_shared_handler(|s| s.callback.swap(false, Ordering::AcqRel)) {
            instance.call_on_main_thread_callback();
        }
    }
    let cpu_after = thread_cpu_seconds("pianoforte-engine");
    run.engine_cpu_seconds = cpu_after - cpu_before;
    run.engine_switches = thread_switches("pianoforte-engine").saturating_sub(switches_before);
    run.wall_seconds = started.elapsed().as_secs_f64();
    // Let the engine thread write its last lines, then read them.
    std::thread::sleep(Duration::from_millis(50));
    if let Some(mut t) = trace.take() {
        t.poll();
        run.trace.extend(t.events);
    }
    run.final_clock = state.clock;
    drop(instance);
    Ok(run)
}

struct RunState {
    playing: bool,
    transport: bool,
    /// Song position in samples (fractional under varispeed).
    pos: f64,
    clock: i64,
    host_sample: u64,
    play_param: bool,
    /// The Seed parameter's value as sent (NaN: the default).
    seed: f64,
    bypass: bool,
    continue_mode: bool,
    size_index: usize,
    /// Input NOTE_OFFs to send: (host sample, key).
    pending_offs: Vec<(u64, u8)>,
}

/// An output event as (channel, kind); None for events the checks ignore.
pub fn decode_output(event: &clack_host::events::UnknownEvent) -> Option<(u8, OutKind)> {
    match event.as_core_event()? {
        CoreEventSpace::NoteOn(e) => Some((
            e.channel().into_specific().unwrap_or(0) as u8,
            OutKind::On { key: e.key().into_specific().unwrap_or(0) as u8, velocity: (e.velocity() * 127.0).round() as u8 },
        )),
        CoreEventSpace::NoteOff(e) => {
            Some((e.channel().into_specific().unwrap_or(0) as u8, OutKind::Off { key: e.key().into_specific().unwrap_or(0) as u8 }))
        }
        CoreEventSpace::Midi(e) => {
            let data = e.data();
            match data[0] & 0xf0 {
                0xb0 if data[1] == 64 => Some((data[0] & 0x0f, OutKind::Pedal { value: data[2] })),
                0x90 if data[2] > 0 => Some((data[0] & 0x0f, OutKind::On { key: data[1], velocity: data[2] })),
                0x80 | 0x90 => Some((data[0] & 0x0f, OutKind::Off { key: data[1] })),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Processes segments until the end or a reactivation; returns the new sample rate then.
#[allow(clippy::too_many_arguments)]
fn process_segments(
    processor: &mut StartedPluginAudioProcessor<TestHost>,
    scenario: &Scenario,
    segment_index: &mut usize,
    state: &mut RunState,
    run: &mut Run,
    reader: &mut TraceReader,
    values: &HashMap<(String, String), (ClapId, f64)>,
    sample_rate: f64,
    max_frames: u32,
) -> Result<Option<f64>, String> {
    let mut outputs = vec![vec![0.0f32; max_frames as usize]; 2];
    let mut output_ports = AudioPorts::with_capacity(2, 1);
    let mut in_events = EventBuffer::with_capacity(64);
    let mut out_events = LimitedOutput::new(scenario.output_limit);
    let wall_start = Instant::now();
    let sample_start = state.host_sample;
    let mut first_segment = true;
    // The first block of an activation starts a performance when it plays.
    let mut activation_block = true;
    while *segment_index < scenario.segments.len() {
        let segment = &scenario.segments[*segment_index];
        let mut cut_reason: Option<Cut> = None;
        for action in &segment.actions {
            match action {
                Action::Reactivate(rate) if first_segment => {
                    // Already reactivated: this segment starts the new activation.
                    let _ = rate;
                }
                Action::Reactivate(rate) => return Ok(Some(*rate)),
                _ => {}
            }
        }
        first_segment = false;
        let was_running = !state.bypass && ((state.playing && state.transport) || state.play_param);
        let mut param_events: Vec<ParamValueEvent> = Vec::new();
        let mut seed_changed = false;
        for action in &segment.actions {
            match action {
                Action::Transport(playing) => {
                    state.transport = true;
                    state.playing = *playing;
                }
                Action::NoTransport => {
                    state.transport = false;
                    state.playing = false;
                }
                Action::Jump(seconds) => {
                    state.pos = (seconds * sample_rate).round();
                    if was_running {
                        cut_reason = Some(Cut::Jump);
                    }
                }
                Action::Param(name, text) => {
                    let (id, value) = values[&(name.to_string(), text.to_string())];
                    match *name {
                        "Play" => state.play_param = value > 0.5,
                        "Bypass" => state.bypass = value > 0.5,
                        "Seed" => {
                            // Only a different seed is a new performance.
                            seed_changed = value != state.seed;
                            state.seed = value;
                        }
                        "Mode" => state.continue_mode = text.starts_with("Continue"),
                        _ => {}
                    }
                    param_events.push(ParamValueEvent::new(0, id, Pckn::match_all(), value));
                }
                Action::Note(key, velocity, length) => {
                    let on =
                        NoteOnEvent::new(0, Pckn::new(0u16, scenario.input_channel, *key as u16, Match::All), *velocity as f64 / 127.0);
                    in_events.push(&on);
                    // In "Continue my playing" mode the musician takes over: the generated
                    // performance ends in this block.
                    if state.continue_mode && (was_running || state.play_param || state.playing) {
                        cut_reason = cut_reason.or(Some(Cut::Restart));
                    }
                    run.inputs.push((state.host_sample, OutKind::On { key: *key, velocity: *velocity }));
                    run.input_clock.push((state.clock, OutKind::On { key: *key, velocity: *velocity }));
                    state.pending_offs.push((state.host_sample + (length * sample_rate).round() as u64, *key));
                }
                Action::Reactivate(_) => {}
            }
        }
        let running = !state.bypass && ((state.playing && state.transport) || state.play_param);
        if was_running && !running {
            cut_reason = Some(if state.bypass { Cut::Bypass } else { Cut::Stop });
        }
        // Every start is a new performance (docs/plugin.md): from stopped, a jump, a new seed,
        // a new activation while playing.
        let start = running && (!was_running || activation_block || seed_changed || cut_reason == Some(Cut::Jump));
        if start && cut_reason.is_none() {
            cut_reason = Some(Cut::Restart);
        }
        activation_block = false;
        for e in &param_events {
            in_events.push(e);
        }
        let segment_samples = (segment.seconds * sample_rate).round() as u64;
        let segment_end = state.host_sample + segment_samples;
        let measure_from = state.host_sample + (2.0f64.min(segment.seconds / 3.0) * sample_rate) as u64;
        let mut measured_notes = 0usize;
        let mut first_block = true;
        let generation_at_start = reader.horizon().map(|h| h.0).unwrap_or(0);
        let mut restart_pending = start && scenario.lockstep;
        while state.host_sample < segment_end {
            let size = match &scenario.sizes {
                Sizes::Fixed(n) => *n,
                Sizes::Cycle(v) => v[state.size_index % v.len()],
            };
            state.size_index += 1;
            let frames = size.min((segment_end - state.host_sample) as u32).max(1);
            // Input NOTE_OFFs due in this block.
            let mut i = 0;
            while i < state.pending_offs.len() {
                let (at, key) = state.pending_offs[i];
                if at < state.host_sample + frames as u64 {
                    let time = at.saturating_sub(state.host_sample) as u32;
                    let off = NoteOffEvent::new(time, Pckn::new(0u16, scenario.input_channel, key as u16, Match::All), 0.0);
                    in_events.push(&off);
                    run.inputs.push((state.host_sample + time as u64, OutKind::Off { key }));
                    run.input_clock.push((state.clock + time as i64, OutKind::Off { key }));
                    state.pending_offs.swap_remove(i);
                } else {
                    i += 1;
                }
            }
            in_events.sort();
            let running = !state.bypass && ((state.playing && state.transport) || state.play_param);
            if start && first_block {
                run.starts.push((run.blocks, state.clock, frames));
            }
            // A start's first block is processed before the engine knows of the start: nothing
            // to wait for there (in real time its notes after the start delay may come too late).
            if scenario.lockstep && running && !(start && first_block) {
                // The engine should have queued everything up to the end of this block.
                let target = (state.clock + frames as i64) as f64 / sample_rate;
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    reader.poll();
                    // After a start, wait for the new performance.
                    let ok = match reader.horizon() {
                        Some((g, t)) => t >= target && (!restart_pending || g > generation_at_start),
                        None => false,
                    };
                    if ok {
                        break;
                    }
                    if Instant::now() > deadline {
                        run.stalls += 1;
                        if run.stalls >= 5 {
                            return Err(format!(
                                "the engine stalled in {} blocks (5 s each); the last at host sample {}",
                                run.stalls, state.host_sample
                            ));
                        }
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                if restart_pending && reader.horizon().is_some_and(|h| h.0 > generation_at_start) {
                    restart_pending = false;
                }
            } else if !scenario.lockstep && scenario.speed > 0.0 {
                // Real-time pacing.
                let due = (state.host_sample - sample_start) as f64 / sample_rate / scenario.speed;
                let now = wall_start.elapsed().as_secs_f64();
                if due > now {
                    std::thread::sleep(Duration::from_secs_f64(due - now));
                }
            }
            let transport = state
                .transport
                .then(|| transport_at(&scenario.tempo, state.playing, state.pos.round() as i64, sample_rate, scenario.beats_only));
            let mut output_audio = output_ports.with_output_buffers([AudioPortBuffer {
                latency: 0,
                channels: AudioPortBufferType::f32_output_only(outputs.iter_mut().map(|b| &mut b[..frames as usize])),
            }]);
            out_events.events.clear();
            let cpu_began = this_thread_cpu_seconds();
            let began = Instant::now();
            processor
                .process(
                    &InputAudioBuffers::empty(),
                    &mut output_audio,
                    &in_events.as_input(),
                    &mut OutputEvents::from_buffer(&mut out_events),
                    Some(state.host_sample),
                    transport.as_ref(),
                )
                .map_err(|e| format!("process failed: {e:?}"))?;
            let wall = began.elapsed().as_secs_f64();
            run.process_times.push(ProcessTime { wall, cpu: this_thread_cpu_seconds() - cpu_began, frames });
            if scenario.record_audio {
                for (recorded, output) in run.audio.iter_mut().zip(&outputs) {
                    recorded.extend_from_slice(&output[..frames as usize]);
                }
            }
            in_events.clear();
            if first_block {
                if let Some(reason) = cut_reason {
                    run.cuts.push(CutAt {
                        block: run.blocks,
                        host_sample: state.host_sample,
                        clock_seconds: state.clock as f64 / sample_rate,
                        reason,
                    });
                }
                first_block = false;
            }
            let mut last_time = 0;
            for event in out_events.events.iter() {
                let time = event.header().time();
                if time < last_time {
                    run.sorted = false;
                }
                last_time = time;
                let Some((channel, kind)) = decode_output(event) else {
                    continue;
                };
                if channel == 0 && matches!(kind, OutKind::On { .. }) && state.host_sample + time as u64 >= measure_from {
                    measured_notes += 1;
                }
                run.events.push(OutEvent {
                    rate: sample_rate,
                    host_sample: state.host_sample + time as u64,
                    clock_sample: state.clock + time as i64,
                    time,
                    block: run.blocks,
                    channel,
                    kind,
                });
            }
            run.blocks += 1;
            state.host_sample += frames as u64;
            if state.playing && state.transport {
                state.pos += frames as f64 * scenario.position_speed;
            }
            if running {
                state.clock += frames as i64;
            }
        }
        run.refused += std::mem::take(&mut out_events.refused);
        if let Some(label) = segment.measure {
            let seconds = (segment_end - measure_from) as f64 / sample_rate;
            run.measured.push((label, measured_notes, seconds));
        }
        *segment_index += 1;
    }
    Ok(None)
}

/// Saves the state of one instance (after changing parameters) and loads it into another: the
/// parameters and the remembered settings (clips folder, model path) must come back.
pub fn state_round_trip(plugin: &Plugin) -> Result<Vec<String>, String> {
    use clack_extensions::state::PluginState;
    let new_instance = || {
        PluginInstance::<TestHost>::new(|_| Shared { callback: AtomicBool::new(false) }, |_| (), &plugin.entry, &plugin.id, &host_info())
            .map_err(|e| format!("cannot instantiate: {e:?}"))
    };
    let mut a = new_instance()?;
    let handle = a.plugin_handle();
    let params: PluginParams = handle.get_extension().ok_or("no params extension")?;
    let state: PluginState = handle.get_extension().ok_or("no state extension")?;
    let mut ids = HashMap::new();
    let mut buffer = ParamInfoBuffer::new();
    for i in 0..params.count(&handle) {
        if let Some(info) = params.get_info(&handle, i, &mut buffer) {
            ids.insert(String::from_utf8_lossy(info.name).into_owned(), info.id);
        }
    }
    let settings = [("Temperature", "0.5"), ("Density", "12"), ("Mode", "Continue my playing"), ("Lowest key", "C2"), ("Seed", "42")];
    let mut events = EventBuffer::new();
    let mut wanted = Vec::new();
    for (name, text) in settings {
        let id = *ids.get(name).ok_or_else(|| format!("no parameter {name}"))?;
        let value = params.text_to_value(&handle, id, &CString::new(text).unwrap()).ok_or_else(|| format!("{name}: cannot read {text}"))?;
        events.push(&ParamValueEvent::new(0, id, Pckn::match_all(), value));
        wanted.push((name, id, value));
    }

    {
        let mut inactive = a.inactive_plugin_handle().ok_or("the instance is active")?;
        params.flush(&mut inactive, &events.as_input(), &mut OutputEvents::void());
    }
    let handle = a.plugin_handle();
    let mut saved = Vec::new();
    state.save(&handle, &mut saved).map_err(|e| format!("save: {e:?}"))?;
    // nice-plug's CLAP state: the JSON's length (u64, little endian), then the JSON.
    let body = match saved.get(..8).map(|h| u64::from_le_bytes(h.try_into().unwrap())) {
        Some(n) if n as usize == saved.len() - 8 => &saved[8..],
        _ => &saved[..],
    };
    let text = String::from_utf8_lossy(body).into_owned();
    for key in ["clips-folder", "model-path", "clip-seconds", "performed-clip"] {
        if !text.contains(key) {
            return Err(format!("the saved state has no {key}: {text}"));
        }
    }
    // Remembered settings: change them in the saved state, as if the user had.
    let folder = "/tmp/pianoforte state test clips";
    let edited = text.replace(r#""clips-folder":"\"\"""#, &format!(r#""clips-folder":"\"{folder}\"""#));
    if edited == text {
        return Err(format!("unexpected state layout: {text}"));
    }
    if std::env::var_os("PIANOFORTE_SHOW_STATE").is_some() {
        println!("{edited}");
    }
    let mut b = new_instance()?;
    let handle_b = b.plugin_handle();
    // Extension pointers belong to their instance.
    let params: PluginParams = handle_b.get_extension().ok_or("no params extension")?;
    let state: PluginState = handle_b.get_extension().ok_or("no state extension")?;
    let mut edited_state = if body.len() == saved.len() { Vec::new() } else { (edited.len() as u64).to_le_bytes().to_vec() };
    edited_state.extend_from_slice(edited.as_bytes());
    state.load(&handle_b, &mut edited_state.as_slice()).map_err(|e| format!("load: {e:?}"))?;
    let mut notes = Vec::new();
    for (name, id, value) in wanted {
        let got = params.get_value(&handle_b, id).ok_or("get_value")?;
        if (got - value).abs() > 1e-6 {
            return Err(format!("{name}: {value} saved, {got} restored"));
        }
        notes.push(format!("{name} restored"));
    }
    let mut again = Vec::new();
    state.save(&handle_b, &mut again).map_err(|e| format!("save: {e:?}"))?;
    if !String::from_utf8_lossy(&again).contains(folder) {
        return Err("the clips folder did not survive a save and a load".into());
    }
    notes.push("clips folder restored".into());
    Ok(notes)
}

/// Sets remembered settings (persisted fields such as "model-path") the way a host restores them:
/// save the state, change the fields, load it back.
pub fn set_fields(instance: &mut PluginInstance<TestHost>, fields: &[(&str, &str)]) -> Result<(), String> {
    use clack_extensions::state::PluginState;
    let handle = instance.plugin_handle();
    let state: PluginState = handle.get_extension().ok_or("no state extension")?;
    let mut saved = Vec::new();
    state.save(&handle, &mut saved).map_err(|e| format!("save: {e:?}"))?;
    let header = saved.get(..8).map(|h| u64::from_le_bytes(h.try_into().unwrap()));
    let has_header = header == Some(saved.len() as u64 - 8);
    let mut text = String::from_utf8_lossy(if has_header { &saved[8..] } else { &saved[..] }).into_owned();
    for (key, value) in fields {
        let start = text.find(&format!("\"{key}\":\"")).ok_or_else(|| format!("no field {key} in the state"))?;
        let value_start = start + key.len() + 4;
        // The field's value is a JSON string holding JSON: find its closing quote.
        let mut end = value_start;
        let bytes = text.as_bytes();
        while end < bytes.len() && !(bytes[end] == b'"' && bytes[end - 1] != b'\\') {
            end += 1;
        }
        let encoded = format!("\\\"{}\\\"", value.replace('\\', "/"));
        text.replace_range(value_start..end, &encoded);
    }
    let mut data = if has_header { (text.len() as u64).to_le_bytes().to_vec() } else { Vec::new() };
    data.extend_from_slice(text.as_bytes());
    state.load(&handle, &mut data.as_slice()).map_err(|e| format!("load: {e:?} ({text})"))
}

/// Closes a plugin right after it started to work (its model loading, its engine filling the
/// queue): the host must get control back at once, whatever the engine thread is doing.
pub fn destroy_while_busy(plugin: &Plugin) -> Result<String, String> {
    let mut instance =
        PluginInstance::<TestHost>::new(|_| Shared { callback: AtomicBool::new(false) }, |_| (), &plugin.entry, &plugin.id, &host_info())
            .map_err(|e| format!("cannot instantiate: {e:?}"))?;
    let frames = 512u32;
    let config = PluginAudioConfiguration { sample_rate: 48_000.0, min_frames_count: 1, max_frames_count: frames };
    let processor = instance.activate(|_, _| (), config).map_err(|e| format!("cannot activate: {e:?}"))?;
    let mut processor = processor.start_processing().map_err(|e| format!("cannot start processing: {e:?}"))?;
    let mut outputs = vec![vec![0.0f32; frames as usize]; 2];
    let mut output_ports = AudioPorts::with_capacity(2, 1);
    let mut out_events = EventBuffer::with_capacity(1024);
    for block in 0..20u64 {
        let transport = transport_event(true, (block * frames as u64) as i64, 48_000.0, false);
        let mut output_audio = output_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(outputs.iter_mut().map(|b| &mut b[..])),
        }]);
        processor
            .process(
                &InputAudioBuffers::empty(),
                &mut output_audio,
                &InputEvents::empty(),
                &mut out_events.as_output(),
                Some(block * frames as u64),
                Some(&transport),
            )
            .map_err(|e| format!("process failed: {e:?}"))?;
    }
    instance.deactivate(processor.stop_processing());
    let began = Instant::now();
    drop(instance);
    let took = began.elapsed();
    if took > Duration::from_secs(3) {
        return Err(format!("closing the plugin took {:.1} s", took.as_secs_f64()));
    }
    Ok(format!("closed in {:.0} ms", took.as_secs_f64() * 1e3))
}
