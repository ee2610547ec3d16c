//! The audio thread's side: takes the engine's timed events from the queue and places each one on
//! its exact sample inside the host's buffer.
//!
//! Rules (docs/plugin.md):
//! - An event at performance time `t` plays at clock sample `round(t * sample_rate)`; the clock
//!   counts samples while playing and stands still otherwise. Nothing is quantized to a grid.
//! - An event whose sample has already passed (the engine fell behind) is late: a late NOTE_ON or
//!   pedal-down is skipped (counted), a late NOTE_OFF or pedal-up of a sounding note or a pressed
//!   pedal is sent at the buffer's first sample. So nothing sticks and nothing comes in a burst.
//! - On stop, bypass, reset or a jump of the host's transport, every generated note that sounds
//!   gets its NOTE_OFF and the pedal is lifted at the first sample of that same buffer.
//! - Every start (transport start, jump, loop, Play on, a new Seed, activation while playing) is
//!   a new performance: the player bumps the generation and publishes the clock sample and song
//!   position of the start; the engine thread places the new performance at that clock sample
//!   plus [`START_DELAY_SECONDS`] and seeds it from the Seed parameter and the position, so the
//!   same start plays the same take (docs/plugin.md, "Using pianoforte in a session").
//! - A new generation ends the old performance the same way; queued events of older generations
//!   are dropped, events of a newer one (the engine restarted on its own) are taken up.
//! - Offline (the host renders faster than real time), the player waits, bounded, until the
//!   engine has queued everything up to the end of the buffer: a bounce plays what playback plays.
//! - A NOTE_OFF or pedal-up the host had no room for is sent again at the next buffer.
//! - The musician's own events pass through unchanged, at their own sample.
//!
//! Nothing here allocates, locks or blocks: the output list is allocated once in [`Player::new`]
//! and sorted in place.

use super::events::{Midi, Played, Timed};
use crate::codec::Keys;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use atomic_float::AtomicF64;

/// No key / no owner.
const NONE: u8 = u8::MAX;
/// Output events one buffer can hold (generated and passed through); more are dropped and counted.
pub const MAX_OUT_EVENTS: usize = 4096;
/// A host position that goes back by more than this many samples is a jump (a loop, a click on
/// the timeline); so is one that moves forward by more than [`JUMP_FORWARD_BUFFERS`] buffers. In
/// between is playing, at whatever speed (varispeed, scrubbing, positions derived from beats).
const JUMP_TOLERANCE_SAMPLES: i64 = 2;
const JUMP_FORWARD_BUFFERS: i64 = 4;
/// A performance begins this long after its start, so the engine has its first events ready.
pub const START_DELAY_SECONDS: f64 = 0.05;
/// Offline, the longest the player waits for the engine in one buffer.
pub const OFFLINE_WAIT: Duration = Duration::from_secs(2);

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
    /// Keys the musician holds down now.
    pub held_keys: AtomicU32,
    /// The engine has queued every event before `decided_until` (clock seconds) of
    /// `decided_generation`; infinity when it will queue nothing for it (listening, no model).
    pub decided_generation: AtomicU32,
    pub decided_until: AtomicF64,
    /// Offline: the clock seconds the audio thread waits for.
    pub wanted_until: AtomicF64,
    /// The engine thread runs (false once it has stopped, even by a panic).
    pub engine_alive: AtomicBool,
    /// Offline buffers whose wait for the engine ran out.
    pub offline_timeouts: AtomicU64,
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

/// Whether generation `a` is newer than `b` (generations wrap).
pub fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// The seed of a start: the Seed parameter mixed with the song position (ms), so every start
/// from the same place plays the same take and another place plays another one.
pub fn start_seed(seed: i32, position_ms: i64) -> u64 {
    // SplitMix64 of both: nearby positions give unrelated seeds.
    let mut x = (seed as u32 as u64) << 32 ^ position_ms as u64;
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What the player needs from the parameters each buffer (read from atomics by the caller).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Controls {
    /// The Play switch: play even while the host's transport stands still.
    pub play: bool,
    pub bypass: bool,
    /// "Continue my playing": a note from the musician ends the generated performance.
    pub continue_mode: bool,
    pub key_low: u8,
    pub key_high: u8,
    pub velocity_min: u8,
    pub velocity_max: u8,
    /// The Seed parameter: a new one starts a new performance.
    pub seed: i32,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            seed: 1,
            play: false,
            bypass: false,
            continue_mode: false,
            key_low: crate::codec::Pitch::LOWEST.midi(),
            key_high: crate::codec::Pitch::HIGHEST.midi(),
            velocity_min: 1,
            velocity_max: 127,
        }
    }
}

/// The host's transport as far as the player cares.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TransportView {
    pub playing: bool,
    /// Song position in samples at the start of the buffer, when the host tells it.
    pub pos_samples: Option<i64>,
    /// The host renders offline (faster than real time): the player waits for the engine.
    pub offline: bool,
}

/// What an input event means to the player (everything is passed through regardless).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InKind {
    NoteOn { key: u8, velocity: u8 },
    NoteOff { key: u8 },
    Pedal { down: bool },
    Other,
}

/// An event from the host: its sample in the buffer, its meaning, and the raw event to forward.
#[derive(Debug, Clone, Copy)]
pub struct InEvent<T: Copy> {
    pub timing: u32,
    pub kind: InKind,
    pub raw: T,
}

/// An event to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutKind<T: Copy> {
    /// Generated (channel 1).
    Gen(Midi),
    /// The musician's event, forwarded unchanged.
    Thru(T),
}

#[derive(Debug, Clone, Copy)]
struct Out<T: Copy> {
    timing: u32,
    seq: u32,
    kind: OutKind<T>,
}

/// Where the player sends its events (the host's output list); `false` when it has no room.
pub trait Sink<T: Copy> {
    fn send(&mut self, timing: u32, event: &OutKind<T>) -> bool;
}

/// The audio thread's state.
pub struct Player<T: Copy> {
    sample_rate: f64,
    /// Performance clock in samples at the start of the next buffer.
    clock: i64,
    generation: u32,
    /// Source pitch (as the engine sampled it) -> output key it sounds on, or NONE.
    key_of: [u8; 128],
    /// Output key -> source pitch of the generated note sounding on it, or NONE.
    owner_of: [u8; 128],
    /// Keys the musician holds down.
    held: Keys<()>,
    pedal_down: bool,
    /// Generated NOTE_OFFs and a pedal-up the host had no room for, sent at the next buffer.
    owed_offs: Keys<()>,
    owed_pedal_up: bool,
    /// The musician holds the sustain pedal: it is theirs, generated pedal events wait.
    input_pedal: bool,
    was_running: bool,
    /// The host position and length of the last playing buffer (for jump detection).
    last_pos: Option<(i64, i64)>,
    seed: i32,
    /// Cut at the next buffer (after reset / activation).
    cut_pending: bool,
    out: Vec<Out<T>>,
    seq: u32,
    dropped: u64,
}

impl<T: Copy> Player<T> {
    /// Allocates everything the player will ever need.
    pub fn new(sample_rate: f64) -> Self {
        Player {
            sample_rate,
            clock: 0,
            generation: 0,
            key_of: [NONE; 128],
            owner_of: [NONE; 128],
            held: Keys::new(),
            pedal_down: false,
            owed_offs: Keys::new(),
            owed_pedal_up: false,
            input_pedal: false,
            was_running: false,
            last_pos: None,
            seed: 1,
            cut_pending: false,
            out: Vec::with_capacity(MAX_OUT_EVENTS),
            seq: 0,
            dropped: 0,
        }
    }

    /// A new sample rate (between activations): the performance clock keeps its time in seconds.
    pub fn set_sample_rate(&mut self, sample_rate: f64) {
        if sample_rate != self.sample_rate && self.sample_rate > 0.0 {
            self.clock = (self.clock as f64 * sample_rate / self.sample_rate).round() as i64;
        }
        self.sample_rate = sample_rate;
    }

    /// The host reset the plugin (or re-activated it): whatever sounded before ends in the next
    /// buffer, and transport tracking starts afresh.
    pub fn reset(&mut self) {
        self.cut_pending = true;
        self.last_pos = None;
        self.held = Keys::new();
        // The first buffer that plays after this is a start (a new performance).
        self.was_running = false;
    }

    /// Performance-clock seconds at the start of the next buffer.
    pub fn clock_seconds(&self) -> f64 {
        self.clock as f64 / self.sample_rate
    }

    /// The performance now playing.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Generated notes sounding now.
    pub fn sounding(&self) -> usize {
        self.owner_of.iter().filter(|&&o| o != NONE).count()
    }

    pub fn pedal_is_down(&self) -> bool {
        self.pedal_down
    }

    fn push(&mut self, timing: u32, kind: OutKind<T>) {
        if self.out.len() < self.out.capacity() {
            self.out.push(Out { timing, seq: self.seq, kind });
            self.seq = self.seq.wrapping_add(1);
        } else {
            self.dropped += 1;
        }
    }

    /// Ends every generated note and lifts the pedal at `timing`. `lift_always` sends the
    /// pedal-up even when the pedal is (as far as we know) already up.
    fn cut(&mut self, timing: u32, lift_always: bool) {
        for key in 0..128u8 {
            let source = self.owner_of[key as usize];
            if source != NONE {
                self.owner_of[key as usize] = NONE;
                self.key_of[source as usize] = NONE;
                self.push(timing, OutKind::Gen(Midi::NoteOff { key }));
            }
        }
        if self.pedal_down || lift_always {
            self.pedal_down = false;
            self.push(timing, OutKind::Gen(Midi::Pedal { down: false }));
        }
    }

    /// Processes one buffer of `frames` samples: `inputs` are the host's events (in time order),
    /// `queue` the engine's events, `played` receives what was sent (for the take), `sink` the host.
    #[allow(clippy::too_many_arguments)]
    pub fn process(
        &mut self,
        frames: u32,
        transport: TransportView,
        controls: Controls,
        inputs: &[InEvent<T>],
        queue: Option<&mut rtrb::Consumer<Timed>>,
        mut played: Option<&mut rtrb::Producer<Played>>,
        shared: &RtShared,
        sink: &mut impl Sink<T>,
    ) {
        self.out.clear();
        self.seq = 0;
        let n = frames as i64;
        let running = !controls.bypass && (transport.playing || controls.play);

        // What the host could not take last time goes first.
        for key in 0..128u8 {
            if self.owed_offs.release(key).is_some() && self.owner_of[key as usize] == NONE {
                self.push(0, OutKind::Gen(Midi::NoteOff { key }));
            }
        }
        if std::mem::take(&mut self.owed_pedal_up) && !self.pedal_down {
            self.push(0, OutKind::Gen(Midi::Pedal { down: false }));
        }

        // Stop, bypass, reset, jump: cut at the first sample. A stop or a reset also sends a
        // pedal-up when the pedal is already up, for receivers that missed something.
        let stopped = self.cut_pending || (self.was_running && !running);
        let mut jumped = false;
        if running
            && self.was_running
            && transport.playing
            && let (Some(pos), Some((last, last_frames))) = (transport.pos_samples, self.last_pos)
        {
            jumped = pos < last - JUMP_TOLERANCE_SAMPLES || pos > last + JUMP_FORWARD_BUFFERS * last_frames.max(1) + JUMP_TOLERANCE_SAMPLES;
        }
        if stopped || jumped {
            self.cut(0, stopped);
            self.cut_pending = false;
        }
        self.last_pos = match (transport.playing, transport.pos_samples) {
            (true, Some(pos)) => Some((pos, n)),
            _ => None,
        };
        let position_ms = transport.pos_samples.map_or(-1, |pos| (pos as f64 * 1000.0 / self.sample_rate).round() as i64);
        shared.position_ms.store(position_ms, Ordering::Relaxed);

        // A start: a new performance from this buffer's first sample.
        let mut generation = shared.generation.load(Ordering::Acquire);
        let seed_changed = controls.seed != self.seed;
        self.seed = controls.seed;
        if running && (!self.was_running || jumped || seed_changed) {
            shared.start_seconds.store(self.clock as f64 / self.sample_rate, Ordering::Relaxed);
            shared.start_position_ms.store(position_ms.max(0), Ordering::Relaxed);
            generation = shared.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
            shared.start_generation.store(generation, Ordering::Release);
            shared.wake_engine();
        }

        // The musician's events pass through; in "Continue" mode a note ends the generated
        // performance (the engine thread listens, then continues from what was played).
        for input in inputs {
            let timing = input.timing.min(frames.saturating_sub(1));
            if let InKind::NoteOn { key, .. } = input.kind {
                // The musician takes this key over: a generated note on it ends first.
                let key = key & 0x7f;
                let source = self.owner_of[key as usize];
                if source != NONE {
                    self.owner_of[key as usize] = NONE;
                    self.key_of[source as usize] = NONE;
                    self.push(timing, OutKind::Gen(Midi::NoteOff { key }));
                }
            }
            self.push(timing, OutKind::Thru(input.raw));
            let midi = match input.kind {
                InKind::NoteOn { key, velocity } => {
                    let key = key & 0x7f;
                    self.held.press(key, ());
                    if running && controls.continue_mode {
                        generation = shared.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
                        shared.wake_engine();
                    }
                    Some(Midi::NoteOn { key, velocity })
                }
                InKind::NoteOff { key } => {
                    self.held.release(key);
                    Some(Midi::NoteOff { key: key & 0x7f })
                }
                InKind::Pedal { down } => {
                    self.input_pedal = down;
                    Some(Midi::Pedal { down })
                }
                InKind::Other => None,
            };
            if let (Some(midi), true, Some(played)) = (midi, running, played.as_deref_mut()) {
                let time = (self.clock + timing as i64) as f64 / self.sample_rate;
                let _ = played.push(Played { time, midi, input: true });
            }
        }
        shared.held_keys.store(self.held.count() as u32, Ordering::Relaxed);
        if generation != self.generation {
            self.cut(0, false);
            self.generation = generation;
        }

        if running && let Some(queue) = queue {
            if transport.offline {
                self.wait_for_engine(frames, shared);
            }
            self.take_from_queue(queue, frames, controls, shared);
        }

        // One ordered list for the host (it wants events in time order).
        self.out.sort_unstable_by_key(|o| (o.timing, o.seq));
        let mut notes = 0u64;
        for i in 0..self.out.len() {
            let Out { timing, kind, .. } = self.out[i];
            if !sink.send(timing, &kind) {
                self.dropped += 1;
                self.refused(kind);
                continue;
            }
            if let OutKind::Gen(midi) = kind {
                if matches!(midi, Midi::NoteOn { .. }) {
                    notes += 1;
                }
                if let Some(played) = played.as_deref_mut() {
                    let time = (self.clock + timing as i64) as f64 / self.sample_rate;
                    let _ = played.push(Played { time, midi, input: false });
                }
            }
        }

        if running {
            self.clock += n;
        }
        self.was_running = running;
        shared.clock_seconds.store(self.clock as f64 / self.sample_rate, Ordering::Release);
        shared.playing.store(running, Ordering::Relaxed);
        shared.notes_played.fetch_add(notes, Ordering::Relaxed);
        shared.buffers.fetch_add(1, Ordering::Relaxed);
        if self.dropped > 0 {
            shared.dropped_output.fetch_add(self.dropped, Ordering::Relaxed);
            self.dropped = 0;
        }
    }

    /// The host refused an event: a generated release is owed (sent again at the next buffer), a
    /// generated NOTE_ON never sounded (its NOTE_OFF will find nothing to end).
    fn refused(&mut self, kind: OutKind<T>) {
        match kind {
            OutKind::Gen(Midi::NoteOff { key }) => _ = self.owed_offs.press(key, ()),
            OutKind::Gen(Midi::Pedal { down: false }) => self.owed_pedal_up = true,
            OutKind::Gen(Midi::NoteOn { key, .. }) => {
                let source = std::mem::replace(&mut self.owner_of[key as usize & 0x7f], NONE);
                if source != NONE {
                    self.key_of[source as usize] = NONE;
                }
            }
            OutKind::Gen(Midi::Pedal { down: true }) => self.pedal_down = false,
            OutKind::Thru(_) => {}
        }
    }

    /// Offline: waits (bounded) until the engine has queued everything before the end of this
    /// buffer for the performance now playing (or a newer one), or will queue nothing.
    fn wait_for_engine(&mut self, frames: u32, shared: &RtShared) {
        let end = (self.clock + frames as i64) as f64 / self.sample_rate;
        shared.wanted_until.store(end, Ordering::Release);
        let ready = || {
            let generation = shared.decided_generation.load(Ordering::Acquire);
            let until = shared.decided_until.load(Ordering::Acquire);
            !shared.engine_alive.load(Ordering::Acquire)
                || (generation == self.generation && until >= end)
                || newer(generation, self.generation)
        };
        if ready() {
            return;
        }
        shared.wake_engine();
        let started = Instant::now();
        while !ready() {
            if started.elapsed() > OFFLINE_WAIT {
                shared.offline_timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    fn take_from_queue(&mut self, queue: &mut rtrb::Consumer<Timed>, frames: u32, controls: Controls, shared: &RtShared) {
        let end = self.clock + frames as i64;
        let mut skipped = 0u64;
        while let Ok(event) = queue.peek() {
            let event = *event;
            if newer(event.generation, self.generation) {
                // The engine started a performance of its own (a new model, Continue mode taking
                // over): the old one ends at the first sample, the new one plays.
                self.cut(0, false);
                self.generation = event.generation;
            } else if event.generation != self.generation {
                let _ = queue.pop();
                continue;
            }
            let sample = (event.time * self.sample_rate).round() as i64;
            if sample >= end {
                break;
            }
            let _ = queue.pop();
            let late = sample < self.clock;
            let timing = (sample - self.clock).max(0) as u32;
            match event.midi {
                Midi::NoteOn { key, velocity } => {
                    if late {
                        // Skipped; a note still sounding on its key sounds on until this
                        // note's NOTE_OFF (which is where the engine ends the key).
                        skipped += 1;
                        continue;
                    }
                    self.note_on(timing, key & 0x7f, velocity, controls);
                }
                Midi::NoteOff { key } => {
                    let out = self.key_of[(key & 0x7f) as usize];
                    if out != NONE {
                        self.key_of[(key & 0x7f) as usize] = NONE;
                        self.owner_of[out as usize] = NONE;
                        self.push(timing, OutKind::Gen(Midi::NoteOff { key: out }));
                    }
                }
                Midi::Pedal { down } => {
                    if down == self.pedal_down || self.input_pedal {
                        continue;
                    }
                    if late && down {
                        skipped += 1;
                        continue;
                    }
                    self.pedal_down = down;
                    self.push(timing, OutKind::Gen(Midi::Pedal { down }));
                }
            }
        }
        if skipped > 0 {
            shared.skipped_late.fetch_add(skipped, Ordering::Relaxed);
        }
    }

    fn note_on(&mut self, timing: u32, source: u8, velocity: u8, controls: Controls) {
        // A repeated NOTE_ON of a sounding source pitch ends the earlier note first.
        let old = self.key_of[source as usize];
        if old != NONE {
            self.key_of[source as usize] = NONE;
            self.owner_of[old as usize] = NONE;
            self.push(timing, OutKind::Gen(Midi::NoteOff { key: old }));
        }
        let Some(key) = fold_key(source, controls.key_low, controls.key_high) else {
            return;
        };
        if self.held.is_down(key) {
            // The musician holds this key: leave it to them.
            return;
        }
        // Another source pitch folded onto this key: end it first.
        let other = self.owner_of[key as usize];
        if other != NONE {
            self.key_of[other as usize] = NONE;
            self.push(timing, OutKind::Gen(Midi::NoteOff { key }));
        }
        self.owner_of[key as usize] = source;
        self.key_of[source as usize] = key;
        let velocity = map_velocity(velocity, controls.velocity_min, controls.velocity_max);
        self.push(timing, OutKind::Gen(Midi::NoteOn { key, velocity }));
    }
}

/// The key a generated pitch plays on inside `low..=high`: moved by octaves when the range spans
/// at least an octave, else only pitches inside the range play (None).
pub fn fold_key(pitch: u8, low: u8, high: u8) -> Option<u8> {
    let (low, high) = if low <= high { (low, high) } else { (high, low) };
    let (low, high) = (low.min(127) as i32, high.min(127) as i32);
    let mut p = pitch.min(127) as i32;
    if high - low >= 11 {
        while p < low {
            p += 12;
        }
        while p > high {
            p -= 12;
        }
    }
    (low..=high).contains(&p).then_some(p as u8)
}

/// Maps a velocity 1..=127 linearly onto `min..=max`.
pub fn map_velocity(velocity: u8, min: u8, max: u8) -> u8 {
    let (min, max) = if min <= max { (min, max) } else { (max, min) };
    let (min, max) = (min.clamp(1, 127) as u32, max.clamp(1, 127) as u32);
    let v = velocity.clamp(1, 127) as u32;
    (min + ((v - 1) * (max - min) + 63) / 126).clamp(1, 127) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generation of the first start (the shared counter starts at 0).
    const FIRST: u32 = 1;

    #[derive(Default)]
    struct Capture {
        events: Vec<(u64, OutKind<u8>)>,
        base: u64,
        full_after: Option<usize>,
    }

    impl Sink<u8> for Capture {
        fn send(&mut self, timing: u32, event: &OutKind<u8>) -> bool {
            if self.full_after.is_some_and(|n| self.events.len() >= n) {
                return false;
            }
            self.events.push((self.base + timing as u64, *event));
            true
        }
    }

    fn note_on(time: f64, key: u8) -> Timed {
        Timed { time, generation: FIRST, midi: Midi::NoteOn { key, velocity: 100 } }
    }
    fn note_off(time: f64, key: u8) -> Timed {
        Timed { time, generation: FIRST, midi: Midi::NoteOff { key } }
    }

    fn run(
        player: &mut Player<u8>,
        queue: &mut rtrb::Consumer<Timed>,
        shared: &RtShared,
        capture: &mut Capture,
        frames: u32,
        transport: TransportView,
        controls: Controls,
    ) {
        player.process(frames, transport, controls, &[], Some(queue), None, shared, capture);
        capture.base += frames as u64;
    }

    #[test]
    fn events_land_on_their_exact_sample_for_any_buffer_size() {
        for frames in [1u32, 7, 64, 512, 8192] {
            let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
            let shared = RtShared::default();
            let mut player = Player::new(48_000.0);
            let mut capture = Capture::default();
            for (i, key) in [60u8, 62, 64].iter().enumerate() {
                tx.push(note_on(0.1 + i as f64 * 0.0333, *key)).unwrap();
                tx.push(note_off(0.2 + i as f64 * 0.0333, *key)).unwrap();
            }
            let mut pending: Vec<Timed> = Vec::new();
            while let Ok(e) = rx.pop() {
                pending.push(e);
            }
            pending.sort_by(|a, b| a.time.total_cmp(&b.time));
            let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
            for e in &pending {
                tx.push(*e).unwrap();
            }
            let transport = TransportView { playing: true, pos_samples: None, offline: false };
            for _ in 0..(48_000 / frames + 1) {
                run(&mut player, &mut rx, &shared, &mut capture, frames, transport, Controls::default());
            }
            let expected: Vec<u64> = pending.iter().map(|e| (e.time * 48_000.0).round() as u64).collect();
            let got: Vec<u64> = capture.events.iter().map(|e| e.0).collect();
            assert_eq!(got, expected, "buffer size {frames}");
        }
    }

    #[test]
    fn stop_cuts_notes_and_lifts_pedal_in_the_same_buffer() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(44_100.0);
        let mut capture = Capture::default();
        tx.push(Timed { time: 0.0, generation: FIRST, midi: Midi::Pedal { down: true } }).unwrap();
        tx.push(note_on(0.001, 60)).unwrap();
        tx.push(note_on(0.002, 64)).unwrap();
        tx.push(note_off(2.0, 60)).unwrap();
        let playing = TransportView { playing: true, pos_samples: Some(0), offline: false };
        run(&mut player, &mut rx, &shared, &mut capture, 256, playing, Controls::default());
        assert_eq!(player.sounding(), 2);
        capture.events.clear();
        let stopped = TransportView { playing: false, pos_samples: Some(256), offline: false };
        run(&mut player, &mut rx, &shared, &mut capture, 256, stopped, Controls::default());
        assert_eq!(player.sounding(), 0);
        assert!(!player.pedal_is_down());
        let base = 256;
        assert!(capture.events.iter().all(|e| e.0 == base));
        assert!(capture.events.contains(&(base, OutKind::Gen(Midi::NoteOff { key: 60 }))));
        assert!(capture.events.contains(&(base, OutKind::Gen(Midi::NoteOff { key: 64 }))));
        assert!(capture.events.contains(&(base, OutKind::Gen(Midi::Pedal { down: false }))));
        // The clock stood still while stopped; the orphan NOTE_OFF later finds nothing to end.
        capture.events.clear();
        for i in 0..400 {
            let playing = TransportView { playing: true, pos_samples: Some(256 * (i + 1)), offline: false };
            run(&mut player, &mut rx, &shared, &mut capture, 256, playing, Controls::default());
        }
        assert!(capture.events.is_empty(), "{:?}", capture.events);
    }

    #[test]
    fn a_jump_cuts_notes() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        tx.push(Timed { time: 0.0, generation: FIRST, midi: Midi::Pedal { down: true } }).unwrap();
        tx.push(note_on(0.0, 60)).unwrap();
        run(
            &mut player,
            &mut rx,
            &shared,
            &mut capture,
            64,
            TransportView { playing: true, pos_samples: Some(1000), offline: false },
            Controls::default(),
        );
        run(
            &mut player,
            &mut rx,
            &shared,
            &mut capture,
            64,
            TransportView { playing: true, pos_samples: Some(1064), offline: false },
            Controls::default(),
        );
        assert_eq!(player.sounding(), 1);
        run(
            &mut player,
            &mut rx,
            &shared,
            &mut capture,
            64,
            TransportView { playing: true, pos_samples: Some(0), offline: false },
            Controls::default(),
        );
        assert_eq!(player.sounding(), 0);
        assert_eq!(capture.events.last().unwrap(), &(128, OutKind::Gen(Midi::Pedal { down: false })));
    }

    #[test]
    fn late_events_are_skipped_consistently() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        // The engine is late: nothing queued for the first second.
        for _ in 0..100 {
            run(&mut player, &mut rx, &shared, &mut capture, 480, playing, Controls::default());
        }
        tx.push(note_on(0.5, 60)).unwrap(); // late: skipped
        tx.push(Timed { time: 0.6, generation: FIRST, midi: Midi::Pedal { down: true } }).unwrap(); // late: skipped
        tx.push(note_off(0.9, 60)).unwrap(); // its note never sounded
        tx.push(note_on(1.004, 62)).unwrap(); // on time
        run(&mut player, &mut rx, &shared, &mut capture, 480, playing, Controls::default());
        assert_eq!(capture.events, vec![(48_000 + 192, OutKind::Gen(Midi::NoteOn { key: 62, velocity: 100 }))]);
        assert_eq!(shared.skipped_late.load(Ordering::Relaxed), 2);
        // A late NOTE_OFF of a sounding note is sent at once (no stuck note).
        tx.push(note_off(1.0, 62)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 480, playing, Controls::default());
        assert_eq!(capture.events.last().unwrap(), &(48_480, OutKind::Gen(Midi::NoteOff { key: 62 })));
        assert_eq!(player.sounding(), 0);
    }

    #[test]
    fn a_late_note_on_of_a_sounding_key_leaves_it_to_its_own_note_off() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (shared, mut player, mut capture) = (RtShared::default(), Player::new(1000.0), Capture::default());
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        tx.push(note_on(0.001, 60)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        tx.push(note_on(0.150, 60)).unwrap(); // late (the clock is at 0.2 s): skipped
        tx.push(note_off(0.250, 60)).unwrap(); // ends the note that sounds, at its own sample
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        let key = 60;
        assert_eq!(capture.events, [(1, OutKind::Gen(Midi::NoteOn { key, velocity: 100 })), (250, OutKind::Gen(Midi::NoteOff { key }))]);
    }

    #[test]
    fn a_start_is_a_new_performance_placed_by_the_audio_thread() {
        let (_, mut rx) = rtrb::RingBuffer::<Timed>::new(4);
        let (shared, mut player, mut capture) = (RtShared::default(), Player::new(1000.0), Capture::default());
        let at = |pos| TransportView { playing: true, pos_samples: Some(pos), offline: false };
        let stopped = TransportView { playing: false, pos_samples: Some(0), offline: false };
        run(&mut player, &mut rx, &shared, &mut capture, 100, at(0), Controls::default());
        assert_eq!((shared.generation.load(Ordering::Relaxed), shared.start_generation.load(Ordering::Relaxed)), (1, 1));
        // Playing on (at any speed) is not a start; stopping and starting again is.
        run(&mut player, &mut rx, &shared, &mut capture, 100, at(150), Controls::default());
        run(&mut player, &mut rx, &shared, &mut capture, 100, at(230), Controls::default());
        assert_eq!(shared.generation.load(Ordering::Relaxed), 1);
        run(&mut player, &mut rx, &shared, &mut capture, 100, stopped, Controls::default());
        run(&mut player, &mut rx, &shared, &mut capture, 100, at(2000), Controls::default());
        assert_eq!(shared.start_generation.load(Ordering::Relaxed), 2);
        assert_eq!(shared.start_seconds.load(Ordering::Relaxed), 0.3);
        assert_eq!(shared.start_position_ms.load(Ordering::Relaxed), 2000);
        // A jump back (a loop) and a new seed are starts too.
        run(&mut player, &mut rx, &shared, &mut capture, 100, at(0), Controls::default());
        assert_eq!(shared.start_generation.load(Ordering::Relaxed), 3);
        run(&mut player, &mut rx, &shared, &mut capture, 100, at(100), Controls { seed: 9, ..Controls::default() });
        assert_eq!(shared.start_generation.load(Ordering::Relaxed), 4);
        // The same place and seed give the same take; another place or seed another one.
        assert_eq!(start_seed(3, 2000), start_seed(3, 2000));
        assert_ne!(start_seed(3, 2000), start_seed(3, 2001));
        assert_ne!(start_seed(3, 2000), start_seed(4, 2000));
    }

    #[test]
    fn a_newer_generation_from_the_engine_is_taken_up_not_dropped() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (shared, mut player, mut capture) = (RtShared::default(), Player::new(1000.0), Capture::default());
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        tx.push(note_on(0.010, 60)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        // The engine loads a model and starts its own performance while this buffer runs.
        tx.push(Timed { time: 0.120, generation: FIRST + 1, midi: Midi::NoteOn { key: 64, velocity: 90 } }).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        assert_eq!(player.generation(), FIRST + 1);
        assert_eq!(
            &capture.events[1..],
            &[(100, OutKind::Gen(Midi::NoteOff { key: 60 })), (120, OutKind::Gen(Midi::NoteOn { key: 64, velocity: 90 }))]
        );
    }

    #[test]
    fn releases_the_host_refused_are_sent_in_the_next_buffer() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (shared, mut player) = (RtShared::default(), Player::new(1000.0));
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        tx.push(Timed { time: 0.001, generation: FIRST, midi: Midi::Pedal { down: true } }).unwrap();
        tx.push(note_on(0.002, 60)).unwrap();
        tx.push(note_on(0.003, 62)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        // Stop with a host that takes one event: the other NOTE_OFF and the pedal-up follow.
        capture.full_after = Some(capture.events.len() + 1);
        let stopped = TransportView { playing: false, pos_samples: None, offline: false };
        run(&mut player, &mut rx, &shared, &mut capture, 100, stopped, Controls::default());
        for _ in 0..3 {
            capture.full_after = Some(capture.events.len() + 1);
            run(&mut player, &mut rx, &shared, &mut capture, 100, stopped, Controls::default());
        }
        let releases: Vec<_> = capture.events[3..].iter().map(|e| e.1).collect();
        assert_eq!(releases.len(), 3, "{releases:?}");
        for release in [Midi::NoteOff { key: 60 }, Midi::NoteOff { key: 62 }, Midi::Pedal { down: false }] {
            assert!(releases.contains(&OutKind::Gen(release)), "{release:?} never sent: {releases:?}");
        }
    }

    #[test]
    fn offline_the_player_waits_for_the_engine() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = std::sync::Arc::new(RtShared::default());
        shared.engine_alive.store(true, Ordering::Release);
        let (mut player, mut capture) = (Player::new(1000.0), Capture::default());
        let offline = TransportView { playing: true, pos_samples: Some(0), offline: true };
        // An engine on another thread that takes 50 ms to queue the buffer's note.
        let engine = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                tx.push(note_on(0.060, 60)).unwrap();
                shared.publish_decided(FIRST, 0.1);
            })
        };
        run(&mut player, &mut rx, &shared, &mut capture, 100, offline, Controls::default());
        engine.join().unwrap();
        assert_eq!(capture.events, [(60, OutKind::Gen(Midi::NoteOn { key: 60, velocity: 100 }))]);
        assert_eq!(shared.offline_timeouts.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn new_generation_ends_the_old_performance() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        tx.push(note_on(0.0, 60)).unwrap();
        tx.push(note_on(0.02, 62)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 480, playing, Controls::default());
        shared.generation.store(FIRST + 1, Ordering::Release);
        tx.push(Timed { time: 0.015, generation: FIRST + 1, midi: Midi::NoteOn { key: 70, velocity: 90 } }).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 480, playing, Controls::default());
        assert_eq!(
            &capture.events[1..],
            &[(480, OutKind::Gen(Midi::NoteOff { key: 60 })), (720, OutKind::Gen(Midi::NoteOn { key: 70, velocity: 90 })),]
        );
    }

    #[test]
    fn input_passes_through_and_takes_over_in_continue_mode() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (mut played_tx, mut played_rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        let controls = Controls { continue_mode: true, ..Controls::default() };
        tx.push(note_on(0.0, 60)).unwrap();
        tx.push(note_on(0.015, 67)).unwrap();
        player.process(480, playing, controls, &[], Some(&mut rx), Some(&mut played_tx), &shared, &mut capture);
        capture.base += 480;
        let inputs = [InEvent { timing: 10, kind: InKind::NoteOn { key: 48, velocity: 70 }, raw: 7u8 }];
        player.process(480, playing, controls, &inputs, Some(&mut rx), Some(&mut played_tx), &shared, &mut capture);
        assert_eq!(shared.generation.load(Ordering::Relaxed), FIRST + 1);
        assert_eq!(&capture.events[1..], &[(480, OutKind::Gen(Midi::NoteOff { key: 60 })), (490, OutKind::Thru(7))]);
        let mut played = Vec::new();
        while let Ok(p) = played_rx.pop() {
            played.push(p);
        }
        assert!(played.iter().any(|p| p.input && p.midi == Midi::NoteOn { key: 48, velocity: 70 }));
    }

    #[test]
    fn key_range_and_velocity_range() {
        assert_eq!(fold_key(30, 48, 72), Some(54));
        assert_eq!(fold_key(100, 48, 72), Some(64));
        assert_eq!(fold_key(60, 48, 72), Some(60));
        assert_eq!(fold_key(40, 60, 64), None);
        assert_eq!(fold_key(62, 64, 60), Some(62));
        assert_eq!(map_velocity(1, 40, 100), 40);
        assert_eq!(map_velocity(127, 40, 100), 100);
        assert_eq!(map_velocity(64, 1, 127), 64);
        // Two pitches folding onto one key: the first ends before the second starts, and the
        // first one's NOTE_OFF does not end the second.
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let controls = Controls { key_low: 60, key_high: 71, ..Controls::default() };
        tx.push(note_on(0.0, 48)).unwrap();
        tx.push(note_on(0.001, 60)).unwrap();
        tx.push(note_off(0.002, 48)).unwrap();
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        run(&mut player, &mut rx, &shared, &mut capture, 480, playing, controls);
        assert_eq!(player.sounding(), 1);
        assert_eq!(capture.events.len(), 3);
    }

    #[test]
    fn sample_rate_change_keeps_the_clock_in_seconds() {
        let shared = RtShared::default();
        let mut player: Player<u8> = Player::new(48_000.0);
        let mut capture = Capture::default();
        let (_tx, mut rx) = rtrb::RingBuffer::<Timed>::new(4);
        let playing = TransportView { playing: true, pos_samples: None, offline: false };
        run(&mut player, &mut rx, &shared, &mut capture, 48_00, playing, Controls::default());
        player.set_sample_rate(96_000.0);
        assert!((player.clock_seconds() - 0.1).abs() < 1e-9);
    }
}
