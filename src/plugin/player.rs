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
use super::pace::Pace;
use super::shared::RtShared;
use crate::codec::Keys;
use std::sync::atomic::Ordering;

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
    /// "Perform my part": the track's notes and pedal are the part the engine performs; they go
    /// to the engine only, never to the piano or MIDI out.
    pub perform_part: bool,
    /// The key range, ordered (`PianoforteParams::key_range`).
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
            perform_part: false,
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
}

/// What an input event means to the player (everything is passed through regardless).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InKind {
    NoteOn { key: u8, velocity: u8 },
    NoteOff { key: u8 },
    Pedal { down: bool },
    Other,
}

impl InKind {
    /// The MIDI it plays on the piano (None: nothing the piano plays).
    fn midi(self) -> Option<Midi> {
        match self {
            InKind::NoteOn { key, velocity } => Some(Midi::NoteOn { key: key & 0x7f, velocity }),
            InKind::NoteOff { key } => Some(Midi::NoteOff { key: key & 0x7f }),
            InKind::Pedal { down } => Some(Midi::Pedal { down }),
            InKind::Other => None,
        }
    }
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
    /// What the built-in piano plays (None for a release sent again to MIDI out only).
    sound: Option<Midi>,
}

/// Where the player's events go: the built-in piano, and the host's MIDI output.
pub trait Sink<T: Copy> {
    /// Plays on the built-in piano: every event, whatever the host does with MIDI out.
    fn play(&mut self, timing: u32, midi: Midi);
    /// Sends to MIDI out (a copy of what the piano plays); `false` when the host had no room.
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
    /// Generated NOTE_OFFs and a pedal-up MIDI out had no room for, sent again at the next buffer.
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
    /// Generated NOTE_ONs played in this buffer.
    notes: u64,
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
            notes: 0,
        }
    }

    /// A new sample rate (between activations): the performance clock keeps its time in seconds.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    pub fn set_sample_rate(&mut self, sample_rate: f64) {
        if sample_rate != self.sample_rate && self.sample_rate > 0.0 {
            self.clock = (self.clock as f64 * sample_rate / self.sample_rate).round() as i64;
        }
        self.sample_rate = sample_rate;
    }

    /// The host reset the plugin (or re-activated it): whatever sounded before ends in the next
    /// buffer, and transport tracking starts afresh. The musician's keys and pedal are up.
    pub fn reset(&mut self) {
        self.cut_pending = true;
        self.last_pos = None;
        self.held = Keys::new();
        self.input_pedal = false;
        // The first buffer that plays after this is a start (a new performance).
        self.was_running = false;
    }

    /// Performance-clock seconds at the start of the next buffer.
    pub fn clock_seconds(&self) -> f64 {
        self.clock as f64 / self.sample_rate
    }

    /// Seconds of `frames` samples.
    pub fn seconds(&self, frames: u32) -> f64 {
        frames as f64 / self.sample_rate
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

    fn push(&mut self, timing: u32, kind: OutKind<T>, sound: Option<Midi>) {
        if self.out.len() < self.out.capacity() {
            self.out.push(Out { timing, seq: self.seq, kind, sound });
            self.seq = self.seq.wrapping_add(1);
        } else {
            self.dropped += 1;
        }
    }

    /// A generated event, for the piano and MIDI out.
    fn push_gen(&mut self, timing: u32, midi: Midi) {
        self.push(timing, OutKind::Gen(midi), Some(midi));
    }

    /// Ends the generated note on output `key` (if one sounds there) at `timing`.
    fn end_key(&mut self, timing: u32, key: u8) {
        let source = std::mem::replace(&mut self.owner_of[key as usize], NONE);
        if source != NONE {
            self.key_of[source as usize] = NONE;
            self.push_gen(timing, Midi::NoteOff { key });
        }
    }

    /// Ends every generated note and lifts the pedal at `timing`. `lift_always` sends the
    /// pedal-up even when the pedal is (as far as we know) already up.
    fn cut(&mut self, timing: u32, lift_always: bool) {
        for key in 0..128u8 {
            self.end_key(timing, key);
        }
        if self.pedal_down || lift_always {
            self.pedal_down = false;
            self.push_gen(timing, Midi::Pedal { down: false });
        }
    }

    /// Processes one buffer of `frames` samples: `inputs` are the host's events (in time order),
    /// `queue` the engine's events, `played` receives what was played (for the take), `sink` the
    /// piano and the host. In a fast render (`pace`) it waits for the engine.
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
        pace: &mut Pace,
        sink: &mut impl Sink<T>,
    ) {
        self.out.clear();
        self.seq = 0;
        let running = !controls.bypass && (transport.playing || controls.play);
        self.resend_owed_releases();
        let jumped = self.follow_transport(frames, transport, running, shared);
        let mut generation = shared.generation.load(Ordering::Acquire);
        let seed_changed = std::mem::replace(&mut self.seed, controls.seed) != controls.seed;
        if running && (!self.was_running || jumped || seed_changed) {
            generation = self.start(shared);
        }
        if generation != self.generation {
            self.cut(0, false);
            self.generation = generation;
        }
        // The performance plays up to the musician's note that takes over, if one does; the
        // engine hears what came before it first.
        let takeover = inputs.iter().position(|i| matches!(i.kind, InKind::NoteOn { .. })).filter(|_| running && controls.continue_mode);
        let (before, after) = inputs.split_at(takeover.unwrap_or(inputs.len()));
        let until = after.first().map_or(frames, |i| i.timing.min(frames.saturating_sub(1)));
        self.pass_inputs(frames, before, running, controls, played.as_deref_mut(), shared);
        if running && let Some(queue) = queue {
            self.wait_for_engine(until, shared, pace);
            self.take_from_queue(queue, until, controls, shared);
        }
        self.pass_inputs(frames, after, running, controls, played.as_deref_mut(), shared);
        self.emit(sink, played);
        self.end_buffer(frames, running, shared);
    }

    /// Releases MIDI out had no room for last time go first (the piano has them already).
    fn resend_owed_releases(&mut self) {
        for key in 0..128u8 {
            if self.owed_offs.release(key).is_some() && self.owner_of[key as usize] == NONE {
                self.push(0, OutKind::Gen(Midi::NoteOff { key }), None);
            }
        }
        if std::mem::take(&mut self.owed_pedal_up) && !self.pedal_down {
            self.push(0, OutKind::Gen(Midi::Pedal { down: false }), None);
        }
    }

    /// Stop, bypass, reset, jump: cut at the first sample. A stop or a reset also sends a
    /// pedal-up when the pedal is already up, for receivers that missed something. Publishes the
    /// song position; returns whether the host jumped.
    fn follow_transport(&mut self, frames: u32, transport: TransportView, running: bool, shared: &RtShared) -> bool {
        let n = frames as i64;
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
        jumped
    }

    /// A start: a new performance from this buffer's first sample; returns its generation.
    fn start(&mut self, shared: &RtShared) -> u32 {
        let position_ms = shared.position_ms.load(Ordering::Relaxed);
        shared.start_seconds.store(self.clock as f64 / self.sample_rate, Ordering::Relaxed);
        shared.start_position_ms.store(position_ms.max(0), Ordering::Relaxed);
        let generation = shared.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        shared.start_generation.store(generation, Ordering::Release);
        shared.wake_engine();
        generation
    }

    /// The musician's events pass through (and play on the piano); in "Continue" mode a note
    /// ends the generated performance at its own sample (the engine listens, then continues from
    /// what was played).
    fn pass_inputs(
        &mut self,
        frames: u32,
        inputs: &[InEvent<T>],
        running: bool,
        controls: Controls,
        mut played: Option<&mut rtrb::Producer<Played>>,
        shared: &RtShared,
    ) {
        for input in inputs {
            let timing = input.timing.min(frames.saturating_sub(1));
            let midi = input.kind.midi();
            if controls.perform_part && midi.is_some() {
                self.hear_part(timing, midi, running, played.as_deref_mut());
                continue;
            }
            match midi {
                Some(Midi::NoteOn { key, .. }) => {
                    // The musician takes this key over: a generated note on it ends first.
                    self.end_key(timing, key);
                    self.held.press(key, ());
                    if running && controls.continue_mode {
                        self.cut(timing, false);
                        let time = (self.clock + timing as i64) as f64 / self.sample_rate;
                        shared.takeover_seconds.store(time, Ordering::Release);
                        self.generation = shared.generation.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
                        shared.wake_engine();
                    }
                }
                Some(Midi::NoteOff { key }) => _ = self.held.release(key),
                Some(Midi::Pedal { down }) => self.input_pedal = down,
                None => {}
            }
            self.push(timing, OutKind::Thru(input.raw), midi);
            self.hear_part(timing, midi, running, played.as_deref_mut());
        }
    }

    /// The engine hears the musician's event (while running).
    fn hear_part(&self, timing: u32, midi: Option<Midi>, running: bool, played: Option<&mut rtrb::Producer<Played>>) {
        if let (Some(midi), true, Some(played)) = (midi, running, played) {
            let time = (self.clock + timing as i64) as f64 / self.sample_rate;
            let _ = played.push(Played { time, midi, input: true });
        }
    }

    /// Sends the buffer's events in time order: each plays on the piano, and goes to MIDI out
    /// as a copy (a release MIDI out had no room for is sent again next buffer).
    fn emit(&mut self, sink: &mut impl Sink<T>, mut played: Option<&mut rtrb::Producer<Played>>) {
        self.out.sort_unstable_by_key(|o| (o.timing, o.seq));
        let mut notes = 0u64;
        for i in 0..self.out.len() {
            let Out { timing, kind, sound, .. } = self.out[i];
            if let Some(midi) = sound {
                sink.play(timing, midi);
            }
            if !sink.send(timing, &kind) {
                self.dropped += 1;
                self.refused(kind);
            }
            if let (OutKind::Gen(midi), Some(_)) = (kind, sound) {
                notes += u64::from(matches!(midi, Midi::NoteOn { .. }));
                if let Some(played) = played.as_deref_mut() {
                    let time = (self.clock + timing as i64) as f64 / self.sample_rate;
                    let _ = played.push(Played { time, midi, input: false });
                }
            }
        }
        self.notes = notes;
    }

    /// Advances the clock and publishes the buffer's counters.
    fn end_buffer(&mut self, frames: u32, running: bool, shared: &RtShared) {
        if running {
            self.clock += frames as i64;
        }
        self.was_running = running;
        shared.clock_seconds.store(self.clock as f64 / self.sample_rate, Ordering::Release);
        shared.playing.store(running, Ordering::Relaxed);
        shared.notes_played.fetch_add(std::mem::take(&mut self.notes), Ordering::Relaxed);
        shared.buffers.fetch_add(1, Ordering::Relaxed);
        if self.dropped > 0 {
            shared.dropped_output.fetch_add(self.dropped, Ordering::Relaxed);
            self.dropped = 0;
        }
    }

    /// MIDI out refused an event: a generated release is owed (sent again at the next buffer).
    /// A refused NOTE_ON or pedal-down still sounds on the piano; MIDI out misses it.
    fn refused(&mut self, kind: OutKind<T>) {
        match kind {
            OutKind::Gen(Midi::NoteOff { key }) => _ = self.owed_offs.press(key, ()),
            OutKind::Gen(Midi::Pedal { down: false }) => self.owed_pedal_up = true,
            _ => {}
        }
    }

    /// In a fast render (`pace`): waits, within the render's budget, until the engine has queued
    /// everything before the end of this buffer for the performance now playing (or a newer
    /// one), or will queue nothing. In real time it never waits.
    fn wait_for_engine(&mut self, frames: u32, shared: &RtShared, pace: &mut Pace) {
        // (`frames`: the part of the buffer that plays the performance; none, nothing to wait for.)
        if !pace.is_fast() || frames == 0 {
            return;
        }
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
        pace.wait(ready, &shared.offline_timeouts);
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
                // Skipped; a note still sounding on its key sounds on until this note's
                // NOTE_OFF (which is where the engine ends the key).
                Midi::NoteOn { .. } if late => skipped += 1,
                Midi::NoteOn { key, velocity } => self.note_on(timing, key & 0x7f, velocity, controls),
                Midi::NoteOff { key } => {
                    let out = std::mem::replace(&mut self.key_of[(key & 0x7f) as usize], NONE);
                    if out != NONE {
                        self.owner_of[out as usize] = NONE;
                        self.push_gen(timing, Midi::NoteOff { key: out });
                    }
                }
                Midi::Pedal { down } if down == self.pedal_down || self.input_pedal => {}
                Midi::Pedal { down: true } if late => skipped += 1,
                Midi::Pedal { down } => {
                    self.pedal_down = down;
                    self.push_gen(timing, Midi::Pedal { down });
                }
            }
        }
        if skipped > 0 {
            shared.skipped_late.fetch_add(skipped, Ordering::Relaxed);
        }
    }

    fn note_on(&mut self, timing: u32, source: u8, velocity: u8, controls: Controls) {
        // A repeated NOTE_ON of a sounding source pitch ends the earlier note first.
        let old = std::mem::replace(&mut self.key_of[source as usize], NONE);
        if old != NONE {
            self.owner_of[old as usize] = NONE;
            self.push_gen(timing, Midi::NoteOff { key: old });
        }
        let Some(key) = fold_key(source, controls.key_low, controls.key_high) else {
            return;
        };
        if self.held.is_down(key) {
            // The musician holds this key: leave it to them.
            return;
        }
        // Another source pitch folded onto this key: end it first.
        self.end_key(timing, key);
        self.owner_of[key as usize] = source;
        self.key_of[source as usize] = key;
        let velocity = map_velocity(velocity, controls.velocity_min, controls.velocity_max);
        self.push_gen(timing, Midi::NoteOn { key, velocity });
    }
}

/// The key a generated pitch plays on inside `low..=high`: moved by octaves when the range spans
/// at least an octave, else only pitches inside the range play (None).
pub fn fold_key(pitch: u8, low: u8, high: u8) -> Option<u8> {
    let (low, high) = super::params::ordered_key_range(low.into(), high.into());
    let (low, high) = (low as i32, high as i32);
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
    use std::time::Duration;

    /// The generation of the first start (the shared counter starts at 0).
    const FIRST: u32 = 1;

    /// MIDI out (`events`) and the piano (`piano`) as the player sends to them.
    #[derive(Default)]
    struct Capture {
        events: Vec<(u64, OutKind<u8>)>,
        piano: Vec<(u64, Midi)>,
        base: u64,
        /// MIDI out takes this many events in all, then refuses.
        full_after: Option<usize>,
    }

    impl Sink<u8> for Capture {
        fn play(&mut self, timing: u32, midi: Midi) {
            self.piano.push((self.base + timing as u64, midi));
        }

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
        player.process(frames, transport, controls, &[], Some(queue), None, shared, &mut Pace::default(), capture);
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
            let transport = TransportView { playing: true, pos_samples: None };
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
        let playing = TransportView { playing: true, pos_samples: Some(0) };
        run(&mut player, &mut rx, &shared, &mut capture, 256, playing, Controls::default());
        assert_eq!(player.sounding(), 2);
        capture.events.clear();
        let stopped = TransportView { playing: false, pos_samples: Some(256) };
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
            let playing = TransportView { playing: true, pos_samples: Some(256 * (i + 1)) };
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
        run(&mut player, &mut rx, &shared, &mut capture, 64, TransportView { playing: true, pos_samples: Some(1000) }, Controls::default());
        run(&mut player, &mut rx, &shared, &mut capture, 64, TransportView { playing: true, pos_samples: Some(1064) }, Controls::default());
        assert_eq!(player.sounding(), 1);
        run(&mut player, &mut rx, &shared, &mut capture, 64, TransportView { playing: true, pos_samples: Some(0) }, Controls::default());
        assert_eq!(player.sounding(), 0);
        assert_eq!(capture.events.last().unwrap(), &(128, OutKind::Gen(Midi::Pedal { down: false })));
    }

    #[test]
    fn late_events_are_skipped_consistently() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None };
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
        let playing = TransportView { playing: true, pos_samples: None };
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
        let at = |pos| TransportView { playing: true, pos_samples: Some(pos) };
        let stopped = TransportView { playing: false, pos_samples: Some(0) };
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
        // Another place or seed is another take (the engine seeds each start with start_seed).
        assert_ne!(start_seed(3, 2000), start_seed(3, 2001));
        assert_ne!(start_seed(3, 2000), start_seed(4, 2000));
    }

    #[test]
    fn a_newer_generation_from_the_engine_is_taken_up_not_dropped() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (shared, mut player, mut capture) = (RtShared::default(), Player::new(1000.0), Capture::default());
        let playing = TransportView { playing: true, pos_samples: None };
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
        let playing = TransportView { playing: true, pos_samples: None };
        tx.push(Timed { time: 0.001, generation: FIRST, midi: Midi::Pedal { down: true } }).unwrap();
        tx.push(note_on(0.002, 60)).unwrap();
        tx.push(note_on(0.003, 62)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        // Stop with a host that takes one event: the other NOTE_OFF and the pedal-up follow.
        capture.full_after = Some(capture.events.len() + 1);
        let stopped = TransportView { playing: false, pos_samples: None };
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
        let playing = TransportView { playing: true, pos_samples: Some(0) };
        // An engine on another thread that takes 50 ms to queue the buffer's note.
        let engine = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                tx.push(note_on(0.060, 60)).unwrap();
                shared.publish_decided(FIRST, 0.1);
            })
        };
        player.process(100, playing, Controls::default(), &[], Some(&mut rx), None, &shared, &mut Pace::offline(), &mut capture);
        engine.join().unwrap();
        assert_eq!(capture.events, [(60, OutKind::Gen(Midi::NoteOn { key: 60, velocity: 100 }))]);
        assert_eq!(shared.offline_timeouts.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_host_that_refuses_all_midi_out_still_hears_the_performance_on_the_piano() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (shared, mut player) = (RtShared::default(), Player::new(1000.0));
        let mut capture = Capture { full_after: Some(0), ..Capture::default() };
        let playing = TransportView { playing: true, pos_samples: None };
        tx.push(Timed { time: 0.001, generation: FIRST, midi: Midi::Pedal { down: true } }).unwrap();
        tx.push(note_on(0.002, 60)).unwrap();
        tx.push(note_off(0.150, 60)).unwrap();
        tx.push(Timed { time: 0.160, generation: FIRST, midi: Midi::Pedal { down: false } }).unwrap();
        for _ in 0..3 {
            run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        }
        assert!(capture.events.is_empty());
        // Each event once, at its own sample: releases MIDI out owes are not played again.
        let expected = [
            (1, Midi::Pedal { down: true }),
            (2, Midi::NoteOn { key: 60, velocity: 100 }),
            (150, Midi::NoteOff { key: 60 }),
            (160, Midi::Pedal { down: false }),
        ];
        assert_eq!(capture.piano, expected);
        assert_eq!(player.sounding(), 0);
    }

    #[test]
    fn releases_midi_out_refused_go_to_midi_out_again_not_to_the_piano() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (shared, mut player) = (RtShared::default(), Player::new(1000.0));
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None };
        tx.push(note_on(0.002, 60)).unwrap();
        tx.push(note_off(0.150, 60)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        capture.full_after = Some(1);
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        capture.full_after = None;
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        assert_eq!(capture.events.last(), Some(&(200, OutKind::Gen(Midi::NoteOff { key: 60 }))));
        assert_eq!(capture.piano.iter().filter(|e| e.1 == Midi::NoteOff { key: 60 }).count(), 1);
    }

    #[test]
    fn reset_lifts_the_musicians_pedal_so_generated_pedalling_plays() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let (shared, mut player, mut capture) = (RtShared::default(), Player::new(1000.0), Capture::default());
        let playing = TransportView { playing: true, pos_samples: None };
        let pedal = [InEvent { timing: 0, kind: InKind::Pedal { down: true }, raw: 1u8 }];
        player.process(100, playing, Controls::default(), &pedal, Some(&mut rx), None, &shared, &mut Pace::default(), &mut capture);
        player.reset();
        tx.push(Timed { time: 0.150, generation: FIRST + 1, midi: Midi::Pedal { down: true } }).unwrap();
        capture.base = 100;
        run(&mut player, &mut rx, &shared, &mut capture, 100, playing, Controls::default());
        assert!(player.pedal_is_down(), "{:?}", capture.events);
    }

    #[test]
    fn the_same_start_publishes_the_same_place_and_another_start_another() {
        let start = |pos: i64| {
            let (_, mut rx) = rtrb::RingBuffer::<Timed>::new(4);
            let (shared, mut player, mut capture) = (RtShared::default(), Player::new(48_000.0), Capture::default());
            let stopped = TransportView { playing: false, pos_samples: Some(0) };
            run(&mut player, &mut rx, &shared, &mut capture, 512, stopped, Controls::default());
            run(
                &mut player,
                &mut rx,
                &shared,
                &mut capture,
                512,
                TransportView { playing: true, pos_samples: Some(pos) },
                Controls::default(),
            );
            (shared.start_position_ms.load(Ordering::Relaxed), shared.start_seconds.load(Ordering::Relaxed))
        };
        assert_eq!(start(96_000), start(96_000));
        assert_eq!(start(96_000), (2000, 0.0));
        assert_ne!(start(96_000), start(144_000));
    }

    #[test]
    fn in_real_time_the_player_never_waits_for_the_engine() {
        let (_, mut rx) = rtrb::RingBuffer::<Timed>::new(4);
        let shared = RtShared::default();
        shared.engine_alive.store(true, Ordering::Release);
        let (mut player, mut capture) = (Player::new(1000.0), Capture::default());
        let playing = TransportView { playing: true, pos_samples: Some(0) };
        let began = std::time::Instant::now();
        player.process(100, playing, Controls::default(), &[], Some(&mut rx), None, &shared, &mut Pace::default(), &mut capture);
        assert!(began.elapsed() < std::time::Duration::from_millis(100));
        assert_eq!(shared.offline_timeouts.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn new_generation_ends_the_old_performance() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None };
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
        let playing = TransportView { playing: true, pos_samples: None };
        let controls = Controls { continue_mode: true, ..Controls::default() };
        tx.push(note_on(0.0, 60)).unwrap();
        tx.push(note_on(0.015, 67)).unwrap();
        player.process(480, playing, controls, &[], Some(&mut rx), Some(&mut played_tx), &shared, &mut Pace::default(), &mut capture);
        capture.base += 480;
        let inputs = [InEvent { timing: 10, kind: InKind::NoteOn { key: 48, velocity: 70 }, raw: 7u8 }];
        player.process(480, playing, controls, &inputs, Some(&mut rx), Some(&mut played_tx), &shared, &mut Pace::default(), &mut capture);
        assert_eq!(shared.generation.load(Ordering::Relaxed), FIRST + 1);
        // The generated note ends at the sample of the note that takes over.
        assert_eq!(&capture.events[1..], &[(490, OutKind::Gen(Midi::NoteOff { key: 60 })), (490, OutKind::Thru(7))]);
        let mut played = Vec::new();
        while let Ok(p) = played_rx.pop() {
            played.push(p);
        }
        assert!(played.iter().any(|p| p.input && p.midi == Midi::NoteOn { key: 48, velocity: 70 }));
    }

    #[test]
    fn a_part_to_perform_goes_to_the_engine_only() {
        let (_tx, mut rx) = rtrb::RingBuffer::<Timed>::new(64);
        let (mut played_tx, mut played_rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None };
        let controls = Controls { perform_part: true, continue_mode: false, ..Controls::default() };
        let inputs = [
            InEvent { timing: 10, kind: InKind::NoteOn { key: 48, velocity: 70 }, raw: 7u8 },
            InEvent { timing: 20, kind: InKind::Pedal { down: true }, raw: 8u8 },
            InEvent { timing: 30, kind: InKind::NoteOff { key: 48 }, raw: 9u8 },
        ];
        player.process(480, playing, controls, &inputs, Some(&mut rx), Some(&mut played_tx), &shared, &mut Pace::default(), &mut capture);
        // Neither the piano nor MIDI out gets the part; the engine hears all of it.
        assert!(capture.events.iter().all(|(_, kind)| !matches!(kind, OutKind::Thru(_))), "{:?}", capture.events);
        let mut heard = Vec::new();
        while let Ok(p) = played_rx.pop() {
            heard.push((p.input, p.midi));
        }
        assert_eq!(
            heard,
            [(true, Midi::NoteOn { key: 48, velocity: 70 }), (true, Midi::Pedal { down: true }), (true, Midi::NoteOff { key: 48 })]
        );
        // The part's pedal does not hold the performance's own pedalling back.
        assert!(!player.input_pedal);
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
        let playing = TransportView { playing: true, pos_samples: None };
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
        let playing = TransportView { playing: true, pos_samples: None };
        run(&mut player, &mut rx, &shared, &mut capture, 48_00, playing, Controls::default());
        player.set_sample_rate(96_000.0);
        assert!((player.clock_seconds() - 0.1).abs() < 1e-9);
    }
}
