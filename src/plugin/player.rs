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
//! - A new generation (new seed, new model, the musician taking over) ends the old performance the
//!   same way; queued events of older generations are dropped.
//! - The musician's own events pass through unchanged, at their own sample.
//!
//! Nothing here allocates, locks or blocks: the output list is allocated once in [`Player::new`]
//! and sorted in place.

use super::events::{Midi, Played, Timed};
use crate::codec::Keys;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use atomic_float::AtomicF64;

/// No key / no owner.
const NONE: u8 = u8::MAX;
/// Output events one buffer can hold (generated and passed through); more are dropped and counted.
pub const MAX_OUT_EVENTS: usize = 4096;
/// A host position that differs from the expected one by more than this many samples is a jump.
const JUMP_TOLERANCE_SAMPLES: i64 = 2;

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
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
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
    was_running: bool,
    expected_pos: Option<i64>,
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
            was_running: false,
            expected_pos: None,
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
        self.expected_pos = None;
        self.held = Keys::new();
    }

    /// Performance-clock seconds at the start of the next buffer.
    pub fn clock_seconds(&self) -> f64 {
        self.clock as f64 / self.sample_rate
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

        // Stop, bypass, reset, jump: cut at the first sample. A stop or a reset also sends a
        // pedal-up when the pedal is already up, for receivers that missed something.
        let stopped = self.cut_pending || (self.was_running && !running);
        let mut jumped = false;
        if running
            && self.was_running
            && transport.playing
            && let (Some(pos), Some(expected)) = (transport.pos_samples, self.expected_pos)
        {
            jumped = (pos - expected).abs() > JUMP_TOLERANCE_SAMPLES;
        }
        if stopped || jumped {
            self.cut(0, stopped);
            self.cut_pending = false;
        }
        self.expected_pos = match (transport.playing, transport.pos_samples) {
            (true, Some(pos)) => Some(pos + n),
            _ => None,
        };

        // The musician's events pass through; in "Continue" mode a note ends the generated
        // performance (the engine thread listens, then continues from what was played).
        let mut generation = shared.generation.load(Ordering::Acquire);
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
                    }
                    Some(Midi::NoteOn { key, velocity })
                }
                InKind::NoteOff { key } => {
                    self.held.release(key);
                    Some(Midi::NoteOff { key: key & 0x7f })
                }
                InKind::Pedal { down } => Some(Midi::Pedal { down }),
                InKind::Other => None,
            };
            if let (Some(midi), true, Some(played)) = (midi, running, played.as_deref_mut()) {
                let time = (self.clock + timing as i64) as f64 / self.sample_rate;
                let _ = played.push(Played { time, midi, input: true });
            }
        }
        if generation != self.generation {
            self.cut(0, false);
            self.generation = generation;
        }

        if running && let Some(queue) = queue {
            self.take_from_queue(queue, frames, controls, shared);
        }

        // One ordered list for the host (it wants events in time order).
        self.out.sort_unstable_by_key(|o| (o.timing, o.seq));
        let mut notes = 0u64;
        for i in 0..self.out.len() {
            let Out { timing, kind, .. } = self.out[i];
            if !sink.send(timing, &kind) {
                self.dropped += 1;
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

    fn take_from_queue(&mut self, queue: &mut rtrb::Consumer<Timed>, frames: u32, controls: Controls, shared: &RtShared) {
        let end = self.clock + frames as i64;
        let mut skipped = 0u64;
        while let Ok(event) = queue.peek() {
            let event = *event;
            if event.generation != self.generation {
                // Older performance (or, impossibly, a newer one): drop it.
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
                        skipped += 1;
                        // Its NOTE_OFF, when it comes, finds nothing sounding.
                        let old = self.key_of[(key & 0x7f) as usize];
                        if old != NONE {
                            self.owner_of[old as usize] = NONE;
                            self.key_of[(key & 0x7f) as usize] = NONE;
                            self.push(0, OutKind::Gen(Midi::NoteOff { key: old }));
                        }
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
                    if down == self.pedal_down {
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
        Timed { time, generation: 0, midi: Midi::NoteOn { key, velocity: 100 } }
    }
    fn note_off(time: f64, key: u8) -> Timed {
        Timed { time, generation: 0, midi: Midi::NoteOff { key } }
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
        tx.push(Timed { time: 0.0, generation: 0, midi: Midi::Pedal { down: true } }).unwrap();
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
        tx.push(Timed { time: 0.0, generation: 0, midi: Midi::Pedal { down: true } }).unwrap();
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
        tx.push(Timed { time: 0.6, generation: 0, midi: Midi::Pedal { down: true } }).unwrap(); // late: skipped
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
    fn new_generation_ends_the_old_performance() {
        let (mut tx, mut rx) = rtrb::RingBuffer::new(64);
        let shared = RtShared::default();
        let mut player = Player::new(48_000.0);
        let mut capture = Capture::default();
        let playing = TransportView { playing: true, pos_samples: None };
        tx.push(note_on(0.0, 60)).unwrap();
        tx.push(note_on(0.02, 62)).unwrap();
        run(&mut player, &mut rx, &shared, &mut capture, 480, playing, Controls::default());
        shared.generation.store(1, Ordering::Release);
        tx.push(Timed { time: 0.015, generation: 1, midi: Midi::NoteOn { key: 70, velocity: 90 } }).unwrap();
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
        player.process(480, playing, controls, &[], Some(&mut rx), Some(&mut played_tx), &shared, &mut capture);
        capture.base += 480;
        let inputs = [InEvent { timing: 10, kind: InKind::NoteOn { key: 48, velocity: 70 }, raw: 7u8 }];
        player.process(480, playing, controls, &inputs, Some(&mut rx), Some(&mut played_tx), &shared, &mut capture);
        assert_eq!(shared.generation.load(Ordering::Relaxed), 1);
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
