//! The playable piano: events at sample offsets in, stereo blocks out, with no allocation, lock or
//! system call after construction (everything is sized in [`Piano::new`]).

use super::load::SampleSet;
use super::voice::{ONE, Phase, Start, Voice, VoiceLoop};
use super::{Decibels, Pitch, SampleRate, Velocity, flush};
use std::sync::Arc;

/// Strings sounding at once; a note beyond this steals one (with a short fade).
pub const POLYPHONY: usize = 64;
/// Voice slots: strings plus room for the tails of stolen and re-struck strings and release noises.
const SLOTS: usize = 128;
/// Release noises only start while this many slots are free (they are the first thing to drop).
const NOISE_RESERVE: usize = 16;
/// Events queued per block before [`QueueFull`].
pub const QUEUE: usize = 1024;

/// Fade of a stolen voice: long enough to be no click, short enough not to pile up.
const STEAL_SECONDS: f32 = 0.008;
/// Fade of the old voice when a ringing key is struck again.
const RESTRIKE_SECONDS: f32 = 0.06;
/// Loudness against velocity: 30 dB per decade (amplitude as velocity^1.5), so the softest
/// Salamander layer sounds near velocity 25 and softer velocities attenuate it further.
const DB_PER_DECADE: f32 = 30.0;
/// Release noise level against the note's loudness, and how it falls the longer the key was held
/// (the string has less energy for the damper to stop).
const RELEASE_DB: f32 = -6.0;
const RELEASE_DB_PER_SECOND: f32 = 3.0;
/// A voice whose rest cannot reach -100 dBFS at 0 dB volume (a third of a 16-bit output's last
/// bit) is not rendered; it still holds its slot, so stealing and ending go as if it were.
const INAUDIBLE: f32 = 1e-5;
/// Default stereo spread (the recordings are already stereo; this widens bass left, treble right).
pub const DEFAULT_SPREAD: f32 = 0.3;

/// The default volume, chosen by measurement (module docs): 16 notes/s of full velocity with the
/// pedal down peak at +10.2 dBFS at 0 dB in the loudest case measured, so -12 dB leaves 1.8 dB.
pub const DEFAULT_VOLUME_DB: f32 = -12.0;

/// The event queue is full (more than [`QUEUE`] events in one block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    On(Pitch, Velocity),
    Off(Pitch),
    Pedal(bool),
    Stop,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    offset: u32,
    /// Arrival order, so that events at one offset apply in the order they came.
    seq: u32,
    kind: Kind,
}

/// Per-key constants, computed once.
#[derive(Debug, Clone, Copy, Default)]
struct KeyInfo {
    root: usize,
    step: u64,
    noise_step: u64,
    damp: f32,
    gain_l: f32,
    gain_r: f32,
}

/// Per-velocity layer mix: two layers and their crossfade position (linear weights).
#[derive(Debug, Clone, Copy, Default)]
struct LayerMix {
    lo: usize,
    hi: usize,
    w_lo: f32,
    w_hi: f32,
    /// Loudness of this velocity relative to velocity 127, in dB and as a gain.
    relative_db: f32,
    relative: f32,
}

/// A sampled grand piano voice bank for one audio stream.
pub struct Piano {
    set: Arc<SampleSet>,
    rate: f32,
    voices: Vec<Voice>,
    queue: Vec<Queued>,
    seq: u32,
    pedal: bool,
    clock: u64,
    gain: f32,
    target_gain: f32,
    keys: [KeyInfo; 88],
    velocities: [LayerMix; 128],
    /// The build of the voice loop this CPU runs.
    voice_loop: VoiceLoop,
    /// Gains of the two layers per root and velocity (`root * 128 + velocity`): the crossfade
    /// weights times the gain that brings each recording to the velocity's loudness on that note.
    weights: Vec<[f32; 2]>,
}

/// Damper decay time (to -60 dB) of a key: longer in the bass, where the strings carry more energy;
/// the top 19 keys (above F6) have no dampers on a grand, so they only die away on their own.
fn damper_t60(key: u8) -> f32 {
    match key {
        ..=89 => 0.8 - 0.6 * (key - Pitch::LOWEST.midi()) as f32 / (89 - Pitch::LOWEST.midi()) as f32,
        _ => 2.5,
    }
}

impl Piano {
    /// A silent piano at `sample_rate` with the default volume. Allocates; call it off the audio thread.
    pub fn new(set: Arc<SampleSet>, sample_rate: SampleRate) -> Piano {
        let rate = sample_rate.hz();
        let mut keys = [KeyInfo::default(); 88];
        for (info, key) in keys.iter_mut().zip(Pitch::LOWEST.midi()..=Pitch::HIGHEST.midi()) {
            let root = (0..set.roots.len()).min_by_key(|&r| (set.roots[r] as i32 - key as i32).abs()).unwrap_or(0);
            let ratio = set.rate as f64 / rate as f64;
            let shift = 2f64.powf((key as f64 - set.roots[root] as f64) / 12.0);
            let pan = DEFAULT_SPREAD * (key as f32 - 64.5) / 43.5;
            let angle = (1.0 + pan) * std::f32::consts::FRAC_PI_4;
            *info = KeyInfo {
                root,
                step: (ratio * shift * ONE).round() as u64,
                noise_step: (ratio * ONE).round() as u64,
                damp: (-6.907_755 / (damper_t60(key) * rate)).exp(),
                gain_l: std::f32::consts::SQRT_2 * angle.cos(),
                gain_r: std::f32::consts::SQRT_2 * angle.sin(),
            };
        }
        // Which layers sound: the velocity's loudness placed among the layers' mean loudness.
        let mut velocities = [LayerMix::default(); 128];
        let db = &set.layer_db;
        let top = db.len() - 1;
        for (v, mix) in velocities.iter_mut().enumerate().skip(1) {
            let relative_db = DB_PER_DECADE * (v as f32 / 127.0).log10();
            let target = db[top] + relative_db;
            let relative = 10f32.powf(relative_db / 20.0);
            *mix = match db.iter().position(|&d| d > target) {
                None => LayerMix { lo: top, hi: top, w_lo: 1.0, w_hi: 0.0, relative_db, relative },
                Some(0) => LayerMix { lo: 0, hi: 0, w_lo: 1.0, w_hi: 0.0, relative_db, relative },
                Some(hi) => {
                    let lo = hi - 1;
                    let f = (target - db[lo]) / (db[hi] - db[lo]);
                    LayerMix { lo, hi, w_lo: 1.0 - f, w_hi: f, relative_db, relative }
                }
            };
        }
        // How loud: on every note the same curve, from that note's loudest recording down (the
        // recordings' own loudness varies from note to note within a layer by several dB). Each
        // layer is scaled to the target alone; the pair is then scaled by how the two add, from
        // their correlation rho (onsets of a^2 + b^2 + 2ab rho times the target's energy).
        let roots = set.roots.len();
        let mut weights = vec![[0.0; 2]; roots * 128];
        for (root, row) in weights.chunks_mut(128).enumerate() {
            let note_db = |layer: usize| set.note_db[set.note(layer, root)];
            for (w, mix) in row.iter_mut().zip(&velocities).skip(1) {
                let target = note_db(top) + mix.relative_db;
                let gain = |layer: usize| 10f32.powf((target - note_db(layer)) / 20.0);
                let rho = if mix.lo == mix.hi { 1.0 } else { set.note_rho[set.note(mix.lo, root)].max(-0.5) };
                let (a, b) = (mix.w_lo, mix.w_hi);
                let together = (a * a + b * b + 2.0 * a * b * rho).sqrt();
                *w = [a * gain(mix.lo) / together, b * gain(mix.hi) / together];
            }
        }
        let gain = Decibels::DEFAULT.gain();
        Piano {
            set,
            rate,
            voices: vec![Voice::FREE; SLOTS],
            queue: Vec::with_capacity(QUEUE),
            seq: 0,
            pedal: false,
            clock: 0,
            gain,
            target_gain: gain,
            keys,
            velocities,
            voice_loop: VoiceLoop::detect(),
            weights,
        }
    }

    /// The volume; changes glide over the next block.
    pub fn set_volume(&mut self, volume: Decibels) {
        self.target_gain = volume.gain();
    }

    /// Strikes `key` at `offset` frames into the next [`render`](Piano::render)ed block.
    pub fn note_on(&mut self, offset: u32, key: Pitch, velocity: Velocity) -> Result<(), QueueFull> {
        self.push(offset, Kind::On(key, velocity))
    }

    pub fn note_off(&mut self, offset: u32, key: Pitch) -> Result<(), QueueFull> {
        self.push(offset, Kind::Off(key))
    }

    /// The sustain pedal: down lifts all dampers, up lets them fall on every key not held.
    pub fn pedal(&mut self, offset: u32, down: bool) -> Result<(), QueueFull> {
        self.push(offset, Kind::Pedal(down))
    }

    /// Everything fades out quickly and the pedal is lifted (transport stop, "all sound off").
    pub fn stop(&mut self, offset: u32) -> Result<(), QueueFull> {
        self.push(offset, Kind::Stop)
    }

    fn push(&mut self, offset: u32, kind: Kind) -> Result<(), QueueFull> {
        if self.queue.len() == QUEUE {
            return Err(QueueFull);
        }
        self.queue.push(Queued { offset, seq: self.seq, kind });
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }

    /// Voices sounding (strings, fading tails and release noises).
    pub fn active_voices(&self) -> usize {
        self.voices.iter().filter(|v| v.phase != Phase::Free).count()
    }

    /// Strings sounding (ringing or damped; not fading tails or release noises): at most [`POLYPHONY`].
    pub fn strings(&self) -> usize {
        self.voices.iter().filter(|v| v.is_string()).count()
    }

    /// Silences everything at once and forgets queued events (e.g. on deactivation; may click).
    pub fn reset(&mut self) {
        self.voices.fill(Voice::FREE);
        self.queue.clear();
        self.pedal = false;
    }

    /// Renders the next block into `left` and `right` (overwritten; they should be equally long,
    /// else the shorter length is used), applying the queued events at their offsets. Events at
    /// or beyond the block's end apply after its last frame.
    pub fn render(&mut self, left: &mut [f32], right: &mut [f32]) {
        let _flush = super::denormal::FlushToZero::new();
        let n = left.len().min(right.len());
        let (left, right) = (&mut left[..n], &mut right[..n]);
        left.fill(0.0);
        right.fill(0.0);
        // Unique keys (offset, seq): an unstable sort that never allocates gives one order.
        self.queue.sort_unstable_by_key(|e| (e.offset, e.seq));
        let mut done = 0;
        for i in 0..self.queue.len() {
            let event = self.queue[i];
            let at = (event.offset as usize).min(n);
            if at > done {
                self.mix(&mut left[done..at], &mut right[done..at]);
                done = at;
            }
            self.apply(event.kind);
        }
        self.queue.clear();
        self.mix(&mut left[done..], &mut right[done..]);

        // Volume: a linear glide to the target across the block (no zipper noise).
        let step = if n > 0 { (self.target_gain - self.gain) / n as f32 } else { 0.0 };
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            self.gain += step;
            *l = flush(*l * self.gain);
            *r = flush(*r * self.gain);
        }
        self.gain = self.target_gain;
    }

    fn mix(&mut self, left: &mut [f32], right: &mut [f32]) {
        if left.is_empty() {
            return;
        }
        // At volumes above 0 dB the floor comes down with the gain, to stay inaudible.
        let floor = INAUDIBLE / self.gain.max(self.target_gain).max(1.0);
        for voice in self.voices.iter_mut().filter(|v| v.phase != Phase::Free) {
            voice.mix(&self.set, left, right, floor, self.voice_loop);
        }
        self.clock += left.len() as u64;
    }

    fn apply(&mut self, kind: Kind) {
        match kind {
            Kind::On(key, velocity) => self.strike(key, velocity),
            Kind::Off(key) => {
                for i in 0..SLOTS {
                    let v = &mut self.voices[i];
                    if v.is_string() && v.key == key.midi() && v.key_down {
                        v.key_down = false;
                        if !self.pedal {
                            self.damp(i);
                        }
                    }
                }
            }
            Kind::Pedal(true) => {
                self.pedal = true;
                self.voices.iter_mut().filter(|v| v.is_string()).for_each(Voice::undamp);
            }
            Kind::Pedal(false) => {
                self.pedal = false;
                for i in 0..SLOTS {
                    let v = &self.voices[i];
                    if v.is_string() && v.phase == Phase::Ringing && !v.key_down {
                        self.damp(i);
                    }
                }
            }
            Kind::Stop => {
                self.pedal = false;
                let frames = STEAL_SECONDS * self.rate;
                self.voices.iter_mut().for_each(|v| v.fade_out(frames));
            }
        }
    }

    /// Drops the damper on voice `i` and sounds the key's release noise.
    fn damp(&mut self, i: usize) {
        let v = self.voices[i];
        if v.phase != Phase::Ringing {
            return;
        }
        let info = self.keys[(v.key - Pitch::LOWEST.midi()) as usize];
        self.voices[i].damp(info.damp);
        let free = self.voices.iter().filter(|v| v.phase == Phase::Free).count();
        if free <= NOISE_RESERVE {
            return;
        }
        let held = v.seconds_since(self.clock, self.rate).min(10.0);
        let db = RELEASE_DB - RELEASE_DB_PER_SECOND * held;
        let level = self.velocities[v.velocity as usize].relative * 10f32.powf(db / 20.0);
        let noise = self.set.release(v.key);
        let start = Start {
            key: v.key,
            velocity: v.velocity,
            noise: true,
            lo: noise,
            hi: noise,
            w_lo: level,
            w_hi: 0.0,
            step: info.noise_step,
            gain_l: info.gain_l,
            gain_r: info.gain_r,
            born: self.clock,
        };
        if let Some(slot) = self.voices.iter().position(|v| v.phase == Phase::Free) {
            self.voices[slot] = Voice::start(&self.set, start);
        }
    }

    fn strike(&mut self, key: Pitch, velocity: Velocity) {
        let k = key.midi();
        let info = self.keys[(k - Pitch::LOWEST.midi()) as usize];
        // A key struck again while its string still sounds: the old sound fades under the new.
        let restrike = RESTRIKE_SECONDS * self.rate;
        for v in self.voices.iter_mut().filter(|v| v.is_string() && v.key == k) {
            v.fade_out(restrike);
        }
        if self.voices.iter().filter(|v| v.is_string()).count() >= POLYPHONY {
            self.steal();
        }
        let slot = match self.voices.iter().position(|v| v.phase == Phase::Free) {
            Some(slot) => slot,
            // Every slot busy (more than 64 tails at once): take the quietest tail.
            None => (0..SLOTS).filter(|&i| !self.voices[i].is_string()).min_by(|&a, &b| self.quieter(a, b)).unwrap_or(0),
        };
        let mix = self.velocities[velocity.get() as usize];
        let [w_lo, w_hi] = self.weights[info.root * 128 + velocity.get() as usize];
        let start = Start {
            key: k,
            velocity: velocity.get(),
            noise: false,
            lo: self.set.note(mix.lo, info.root),
            hi: self.set.note(mix.hi, info.root),
            w_lo,
            w_hi,
            step: info.step,
            gain_l: info.gain_l,
            gain_r: info.gain_r,
            born: self.clock,
        };
        self.voices[slot] = Voice::start(&self.set, start);
    }

    fn quieter(&self, a: usize, b: usize) -> std::cmp::Ordering {
        self.voices[a].level().total_cmp(&self.voices[b].level())
    }

    /// Fades out one string to make room: the quietest damped one, else the oldest the pedal holds,
    /// else the oldest held key.
    fn steal(&mut self) {
        let strings = || (0..SLOTS).filter(|&i| self.voices[i].is_string());
        let damped = strings().filter(|&i| self.voices[i].phase == Phase::Damped).min_by(|&a, &b| self.quieter(a, b));
        let oldest = |held: bool| strings().filter(|&i| self.voices[i].key_down == held).min_by_key(|&i| self.voices[i].born);
        if let Some(i) = damped.or_else(|| oldest(false)).or_else(|| oldest(true)) {
            self.voices[i].fade_out(STEAL_SECONDS * self.rate);
        }
    }
}
