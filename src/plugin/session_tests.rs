//! The engine thread and the audio thread together, without a host: a [`Session`] runs the real
//! [`Worker`] on its own thread with a synthetic source and drives the [`Player`] buffer by
//! buffer, the way `Pianoforte::process` does.

use super::clips::GridAnchor;
use super::engine_source::LoadError;
use super::events::{Midi, Played, Timed};
use super::pace::Pace;
use super::params::{KEY_ANY, KEY_FOLLOW, KEY_NAMES, Mode, PianoforteParams, Timing};
use super::player::{Controls, InEvent, InKind, OutKind, Player, Sink, TransportView};
use super::shared::{Attachment, Command, Shared, relock};
use super::source::{ModelInfo, Source, StepControls};
use super::synthetic::Synthetic;
use super::worker::{LoadSource, QUEUE_CAPACITY, Worker};
use crate::engine::beat_clock::{Meter, SongChange, SongPosition};
use crate::engine::control::KeyControl;
use nice_plug::prelude::{EnumParam, IntParam, IntRange};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const RATE: f64 = 48_000.0;

fn continue_params() -> PianoforteParams {
    PianoforteParams { mode: EnumParam::new("Mode", Mode::Continue), ..PianoforteParams::default() }
}

fn synthetic(_model: Option<&Path>, _folder: Option<&Path>) -> Result<Box<dyn Source>, LoadError> {
    Ok(Box::new(Synthetic::new()))
}

/// What reaches the piano, by clock sample.
#[derive(Default)]
struct Piano {
    heard: Vec<(u64, Midi)>,
    base: u64,
}

impl Sink<u8> for Piano {
    fn play(&mut self, timing: u32, midi: Midi) {
        self.heard.push((self.base + timing as u64, midi));
    }
    fn send(&mut self, _timing: u32, _event: &OutKind<u8>) -> bool {
        true
    }
}

struct Session {
    shared: Arc<Shared>,
    params: Arc<PianoforteParams>,
    player: Player<u8>,
    queue: rtrb::Consumer<Timed>,
    played: rtrb::Producer<Played>,
    pace: Pace,
    piano: Piano,
}

impl Session {
    fn new(params: PianoforteParams, load: LoadSource, max_buffer: u32, pace: Pace) -> Session {
        let (shared, params) = (Arc::new(Shared::default()), Arc::new(params));
        let (sender, receiver) = std::sync::mpsc::channel();
        *relock(&shared.commands) = Some(sender);
        let worker = Worker::with_loader(shared.clone(), params.clone(), receiver, None, load);
        shared.rt.engine_alive.store(true, Ordering::Release);
        shared.threads.spawn("test-engine", move || worker.run()).unwrap();
        let (events, queue) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let (played, collected) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        shared.send(Command::Attach(Box::new(Attachment { events, played: collected, sample_rate: RATE, max_buffer })));
        Session { shared, params, player: Player::new(RATE), queue, played, pace, piano: Piano::default() }
    }

    /// One buffer of `frames` with the musician's `inputs`.
    fn buffer(&mut self, frames: u32, inputs: &[InEvent<u8>], controls: Controls) {
        let fast = self.pace.buffer_begins(Instant::now(), frames as f64 / RATE);
        self.shared.rt.fast.store(fast, Ordering::Release);
        self.shared.rt.offline.store(self.pace.declared_offline(), Ordering::Release);
        let transport = TransportView { playing: true, pos_samples: Some(self.piano.base as i64) };
        let (queue, played) = (Some(&mut self.queue), Some(&mut self.played));
        self.player.process(frames, transport, controls, inputs, queue, played, &self.shared.rt, &mut self.pace, &mut self.piano);
        self.piano.base += frames as u64;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.shared.send(Command::Shutdown);
        self.shared.threads.join_all();
    }
}

/// A fast render of `seconds` in buffers of `frames`, the musician playing `phrase` (clock
/// sample, key, down) in Continue mode; what the piano played.
fn continue_render(frames: u32, seconds: f64, phrase: &[(u64, u8, bool)], load: LoadSource) -> Vec<(u64, Midi)> {
    let params = continue_params();
    let mut session = Session::new(params, load, frames, Pace::offline());
    let controls = Controls { play: true, continue_mode: true, ..Controls::default() };
    let mut inputs = Vec::new();
    while (session.piano.base as f64) < seconds * RATE {
        let (start, end) = (session.piano.base, session.piano.base + frames as u64);
        inputs.clear();
        for &(at, key, down) in phrase.iter().filter(|(at, ..)| (start..end).contains(at)) {
            let kind = if down { InKind::NoteOn { key, velocity: 80 } } else { InKind::NoteOff { key } };
            inputs.push(InEvent { timing: (at - start) as u32, kind, raw: key });
        }
        session.buffer(frames, &inputs, controls);
    }
    assert_eq!(session.shared.rt.offline_timeouts.load(Ordering::Relaxed), 0, "a wait ran out");
    std::mem::take(&mut session.piano.heard)
}

#[test]
fn continue_my_playing_continues_at_the_pause_in_any_fast_render() {
    let s = |seconds: f64| (seconds * RATE) as u64;
    let phrase = [(s(0.5), 60, true), (s(1.0), 60, false), (s(1.2), 64, true), (s(1.6), 64, false)];
    let reference = continue_render(512, 4.0, &phrase, synthetic);
    // The continuation begins 1 s after the last key went up, plus the start delay.
    let continued = s(1.6 + super::worker::LISTEN_GAP_SECONDS + super::player::START_DELAY_SECONDS);
    let generated_after_phrase: Vec<_> = reference.iter().filter(|(at, _)| *at > s(1.6)).collect();
    let first = generated_after_phrase.iter().find(|(_, m)| matches!(m, Midi::NoteOn { .. })).expect("no continuation");
    assert!(first.0 >= continued && first.0 < continued + s(0.5), "continuation at {} s", first.0 as f64 / RATE);
    assert!(generated_after_phrase.iter().all(|(at, _)| *at >= continued), "nothing plays during the pause");
    for frames in [512, 64, 1000] {
        assert_eq!(continue_render(frames, 4.0, &phrase, synthetic), reference, "buffers of {frames}");
    }
}

static MODEL_MAY_LOAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A model that loads when the test says so.
fn gated_synthetic(model: Option<&Path>, folder: Option<&Path>) -> Result<Box<dyn Source>, LoadError> {
    while !MODEL_MAY_LOAD.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    synthetic(model, folder)
}

#[test]
fn a_model_that_arrives_while_the_musician_plays_waits_for_their_pause() {
    let params = continue_params();
    let mut session = Session::new(params, gated_synthetic, 480, Pace::offline());
    let controls = Controls { play: true, continue_mode: true, ..Controls::default() };
    // The musician plays from the first sample, holding a key for 2 s; the model loads after 0.5 s.
    session.buffer(480, &[InEvent { timing: 0, kind: InKind::NoteOn { key: 60, velocity: 80 }, raw: 60 }], controls);
    while session.piano.base < 24_000 {
        session.buffer(480, &[], controls);
    }
    MODEL_MAY_LOAD.store(true, Ordering::Release);
    let began = Instant::now();
    while session.shared.status().model.is_none() && began.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    while session.piano.base < 96_000 {
        let release = (session.piano.base == 96_000 - 480).then_some(InEvent { timing: 0, kind: InKind::NoteOff { key: 60 }, raw: 60 });
        session.buffer(480, release.as_slice(), controls);
    }
    while session.piano.base < (4.0 * RATE) as u64 {
        session.buffer(480, &[], controls);
    }
    // Nothing but the musician's note before the pause ends (1 s after the release at 1.99 s).
    let generated: Vec<_> =
        session.piano.heard.iter().filter(|(_, m)| !matches!(m, Midi::NoteOn { key: 60, .. } | Midi::NoteOff { key: 60 })).collect();
    let pause_ends = 95_520 + (super::worker::LISTEN_GAP_SECONDS * RATE) as u64;
    assert!(!generated.is_empty() && generated.iter().all(|(at, _)| *at >= pause_ends), "{:?}", &generated[..generated.len().min(4)]);
}

/// A fast render of `seconds` of Play in buffers of 512: what the piano played.
fn play_render(params: PianoforteParams, seconds: f64) -> Vec<(u64, Midi)> {
    let mut session = Session::new(params, synthetic, 512, Pace::offline());
    let controls = Controls { play: true, ..Controls::default() };
    while (session.piano.base as f64) < seconds * RATE {
        session.buffer(512, &[], controls);
    }
    std::mem::take(&mut session.piano.heard)
}

#[test]
fn a_project_that_was_performing_a_dropped_clip_plays_it_when_reopened() {
    use crate::codec::{Note, Performance};
    // The clip a drop saved: three notes at 0.5 s, 1.0 s and 1.5 s of its own time.
    let notes = [(60, 0.5), (64, 1.0), (67, 1.5)].map(|(pitch, start)| Note { pitch, velocity: 81, start, end: start + 0.3 });
    let folder = std::env::temp_dir().join(format!("pianoforte-performed-clip-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("my part, performed.mid");
    std::fs::write(&path, crate::codec::midi::write(&Performance { notes: notes.to_vec(), pedal: Vec::new(), duration: 2.0 })).unwrap();
    let params = PianoforteParams::default();
    params.set_performed_clip(&path.display().to_string());
    let heard = play_render(params, 3.0);
    let onsets: Vec<(u64, u8)> =
        heard.iter().filter_map(|&(at, m)| if let Midi::NoteOn { key, .. } = m { Some((at, key)) } else { None }).collect();
    // From the start (plus the start delay), exactly the clip's notes: not the synthetic pattern.
    let start = (super::player::START_DELAY_SECONDS * RATE) as u64;
    let expected: Vec<(u64, u8)> = notes.iter().map(|n| (start + (n.start * RATE).round() as u64, n.pitch)).collect();
    assert_eq!(onsets, expected);
    // A missing clip is said in words, and the model improvises.
    let params = PianoforteParams::default();
    params.set_performed_clip(&folder.join("gone.mid").display().to_string());
    let heard = play_render(params, 2.0);
    assert!(heard.iter().any(|(_, m)| matches!(m, Midi::NoteOn { .. })), "nothing played");
    let _ = std::fs::remove_dir_all(&folder);
}

static ASKED_FOR: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn recording(model: Option<&Path>, _folder: Option<&Path>) -> Result<Box<dyn Source>, LoadError> {
    relock(&ASKED_FOR).push(model.map(|p| p.display().to_string()).unwrap_or_default());
    Ok(Box::new(Synthetic::new()))
}

#[test]
fn a_model_path_restored_into_a_running_instance_is_loaded() {
    let mut session = Session::new(PianoforteParams::default(), recording, 512, Pace::default());
    let wait_for_model = |session: &mut Session, origin: &str| {
        let began = Instant::now();
        while session.shared.status().model_origin != origin && began.elapsed() < Duration::from_secs(5) {
            session.buffer(512, &[], Controls::default());
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(session.shared.status().model_origin, origin);
    };
    wait_for_model(&mut session, "built in");
    // A preset load, undo or state paste writes the persisted path while the plugin runs.
    let restored = "/presets/another-model.onnx";
    *session.params.model_path.lock().unwrap() = restored.to_string();
    wait_for_model(&mut session, restored);
    assert_eq!(relock(&ASKED_FOR).iter().filter(|p| *p == restored).count(), 1, "loaded once, not at every tick");
}

#[test]
fn dropping_a_session_joins_every_thread_it_started() {
    let session = Session::new(PianoforteParams::default(), synthetic, 512, Pace::default());
    let shared = session.shared.clone();
    drop(session);
    assert_eq!(shared.threads.count(), 0);
    assert!(shared.threads.spawn("after", || {}).is_err());
}

#[test]
fn closing_the_plugin_ends_a_drag_in_flight_and_joins_it() {
    // Issue 18: a host that unloads the library while a clip is being dragged out must find no
    // thread of ours running. The platform's part holds the pointer until it is told to stop.
    let session = Session::new(PianoforteParams::default(), synthetic, 512, Pace::default());
    let shared = session.shared.clone();
    let holding = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let held = holding.clone();
    let drag = super::drag::spawn(
        &shared,
        || Ok(std::env::temp_dir().join("in-flight.mid")),
        move |_, stop| {
            held.store(true, Ordering::Release);
            while !stop() {
                std::thread::sleep(Duration::from_millis(1));
            }
            super::drag::DragEnd::Cancelled
        },
    )
    .unwrap();
    let began = Instant::now();
    while !holding.load(Ordering::Acquire) && began.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(holding.load(Ordering::Acquire), "the drag never took the pointer");
    // The editor may still hold its handle on the drag; the plugin goes first.
    drop(session);
    assert_eq!(shared.threads.count(), 0, "a thread outlived the plugin");
    assert!(began.elapsed() < Duration::from_secs(5));
    drop(drag);
}

/// What the worker told the source about the song: `follow` at each start, then tempo changes.
#[derive(Debug, Clone, PartialEq)]
enum SongCall {
    Follow(Option<SongPosition>),
    Change { seconds: f64, change: SongChange },
}

/// What one test's sources were asked: the key of the last model step, and the song.
struct Asked {
    tonality: std::sync::Mutex<Option<KeyControl>>,
    song: std::sync::Mutex<Vec<SongCall>>,
}

impl Asked {
    const fn new() -> Asked {
        Asked { tonality: std::sync::Mutex::new(None), song: std::sync::Mutex::new(Vec::new()) }
    }
}

/// The synthetic source, with a card of its own key order, telling its test what it was asked
/// (tests run side by side: each has its own [`Asked`]).
struct Spy(Synthetic, &'static Asked);

impl Source for Spy {
    fn info(&self) -> ModelInfo {
        self.0.info()
    }
    fn restart(&mut self, primer: &[crate::codec::Event], seed: u64, controls: &StepControls) -> Result<(), String> {
        self.0.restart(primer, seed, controls)
    }
    fn next(&mut self, controls: &StepControls) -> Result<crate::codec::Event, String> {
        *relock(&self.1.tonality) = Some(controls.tonality);
        self.0.next(controls)
    }
    /// The card's table, B minor first: "D minor" is its index 9, not the parameter's 14.
    fn key_index(&self, name: &str) -> Option<u8> {
        KEY_NAMES.iter().position(|n| *n == name).map(|i| 23 - i as u8)
    }
    fn follow(&mut self, song: Option<SongPosition>, _primer_gap: f64) {
        relock(&self.1.song).push(SongCall::Follow(song));
    }
    fn change_song(&mut self, seconds: f64, change: SongChange) {
        relock(&self.1.song).push(SongCall::Change { seconds, change });
    }
}

static KEY_TEST: Asked = Asked::new();
static SONG_TEST: Asked = Asked::new();

fn key_spy(_model: Option<&Path>, _folder: Option<&Path>) -> Result<Box<dyn Source>, LoadError> {
    Ok(Box::new(Spy(Synthetic::new(), &KEY_TEST)))
}

fn song_spy(_model: Option<&Path>, _folder: Option<&Path>) -> Result<Box<dyn Source>, LoadError> {
    Ok(Box::new(Spy(Synthetic::new(), &SONG_TEST)))
}

#[test]
fn the_key_parameter_reaches_the_model_through_its_cards_own_table() {
    let d_minor = KEY_NAMES.iter().position(|n| *n == "D minor").unwrap() as i32 + 1;
    let key = IntParam::new("Key", d_minor, IntRange::Linear { min: KEY_ANY, max: KEY_FOLLOW });
    let mut session = Session::new(PianoforteParams { key, ..PianoforteParams::default() }, key_spy, 512, Pace::offline());
    let controls = Controls { play: true, ..Controls::default() };
    while session.piano.base < 48_000 {
        session.buffer(512, &[], controls);
    }
    assert_eq!(*relock(&KEY_TEST.tonality), Some(KeyControl::Key(9)));
}

/// A host whose transport plays from bar 3 (quarter 8) at 126 BPM in 4/4, then at 84 BPM from
/// `change_at` seconds on; what the source was told.
fn follow_a_song(timing: Timing, change_at: f64) -> Vec<SongCall> {
    relock(&SONG_TEST.song).clear();
    let params = PianoforteParams { timing: EnumParam::new("Timing", timing), ..PianoforteParams::default() };
    let mut session = Session::new(params, song_spy, 480, Pace::offline());
    let (mut quarters, mut bpm) = (8.0, 126.0);
    while session.piano.base < (2.0 * RATE) as u64 {
        let clock = session.piano.base as f64 / RATE;
        if clock >= change_at {
            bpm = 84.0;
        }
        let bar_start = (quarters / 4.0_f64).floor() * 4.0;
        let anchor = GridAnchor { clock, bpm, numerator: 4, denominator: 4, beats: quarters, bar_start, bar_number: 0 };
        session.shared.grid.publish(&anchor);
        session.buffer(480, &[], Controls { play: true, ..Controls::default() });
        quarters += 480.0 / RATE * bpm / 60.0;
    }
    std::mem::take(&mut relock(&SONG_TEST.song))
}

#[test]
fn the_performance_follows_the_hosts_tempo_meter_and_position_and_its_changes() {
    let delay = super::player::START_DELAY_SECONDS;
    let calls = follow_a_song(Timing::Song, 1.0);
    let SongCall::Follow(Some(song)) = calls[0] else { panic!("{calls:?}") };
    assert_eq!((song.bpm, song.meter, song.bar_start_quarters), (126.0, Meter::FOUR_FOUR, 8.0));
    assert!((song.quarters - (8.0 + delay * 126.0 / 60.0)).abs() < 1e-9, "where the song is when the performance begins: {song:?}");
    let SongCall::Change { seconds, change: SongChange::At(host) } = calls[1] else { panic!("{calls:?}") };
    assert_eq!((host.bpm, host.meter), (84.0, Meter::FOUR_FOUR), "{calls:?}");
    assert!((seconds - (1.0 - delay)).abs() < 0.011, "the change reaches the performance where the host made it: {seconds}");
    assert_eq!(calls.len(), 2, "{calls:?}");
    // Free time: the source hears no song and no change.
    assert_eq!(follow_a_song(Timing::Free, 1.0), vec![SongCall::Follow(None)]);
}
