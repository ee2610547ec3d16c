//! One sounding string (or release noise): two velocity layers of one sample read at a fixed-point
//! position, 4-point Hermite interpolation, a damper envelope and a linear fade for steals.

use super::load::{PAD_BEFORE, Sample, SampleSet};

#[cfg(target_arch = "x86_64")]
mod avx2;

/// Below this envelope gain a voice is inaudible (-100 dB) and ends: an exact zero follows, and
/// the exponential never reaches denormal range.
const SILENT: f32 = 1e-5;

/// Fixed-point positions: 32 fractional bits, so steps are exact and rendering deterministic.
pub(crate) const ONE: f64 = 4_294_967_296.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Free,
    /// The damper is off the string (key down, or the pedal holds it).
    Ringing,
    /// The damper is on: exponential decay.
    Damped,
    /// Stolen or re-struck: a short linear fade to zero.
    Fading,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Voice {
    pub phase: Phase,
    pub key: u8,
    pub key_down: bool,
    /// A release noise: no string, ignores keys and pedal.
    pub noise: bool,
    pub velocity: u8,
    /// When it started (piano clock, frames): the oldest is stolen first.
    pub born: u64,
    /// Sample indices of the two layers and their weights (scaled from i16 to [-1, 1]).
    lo: usize,
    hi: usize,
    w_lo: f32,
    w_hi: f32,
    pos: u64,
    step: u64,
    /// Length in frames of the (shared) sample length.
    end: usize,
    gain_l: f32,
    gain_r: f32,
    env: f32,
    env_mul: f32,
    fade: f32,
    fade_step: f32,
    /// Frames played (heard or not), and whether it is unheard until the next decision.
    age: u64,
    muted: bool,
}

/// Which build of the voice loop this CPU runs: found once, off the audio thread, so that
/// rendering only reads a flag. Only [`VoiceLoop::detect`] can choose the AVX2 build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VoiceLoop {
    avx2: bool,
}

impl VoiceLoop {
    pub fn detect() -> VoiceLoop {
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        VoiceLoop { avx2 }
    }
}

/// What a new voice plays.
pub(crate) struct Start {
    pub key: u8,
    pub velocity: u8,
    pub noise: bool,
    pub lo: usize,
    pub hi: usize,
    pub w_lo: f32,
    pub w_hi: f32,
    pub step: u64,
    pub gain_l: f32,
    pub gain_r: f32,
    pub born: u64,
}

impl Voice {
    pub const FREE: Voice = Voice {
        phase: Phase::Free,
        key: 0,
        key_down: false,
        noise: false,
        velocity: 0,
        born: 0,
        lo: 0,
        hi: 0,
        w_lo: 0.0,
        w_hi: 0.0,
        pos: 0,
        step: 0,
        end: 0,
        gain_l: 0.0,
        gain_r: 0.0,
        env: 0.0,
        env_mul: 1.0,
        fade: 0.0,
        fade_step: 0.0,
        age: 0,
        muted: false,
    };

    pub fn start(set: &SampleSet, s: Start) -> Voice {
        let end = set.sample(s.lo).frames().min(set.sample(s.hi).frames());
        let scale = 1.0 / 32768.0;
        Voice {
            phase: Phase::Ringing,
            key: s.key,
            key_down: !s.noise,
            noise: s.noise,
            velocity: s.velocity,
            born: s.born,
            lo: s.lo,
            hi: s.hi,
            w_lo: s.w_lo * scale,
            w_hi: s.w_hi * scale,
            pos: 0,
            step: s.step,
            end,
            gain_l: s.gain_l,
            gain_r: s.gain_r,
            env: 1.0,
            env_mul: 1.0,
            fade: 1.0,
            fade_step: 0.0,
            age: 0,
            muted: false,
        }
    }

    pub fn is_string(&self) -> bool {
        !self.noise && matches!(self.phase, Phase::Ringing | Phase::Damped)
    }

    /// Puts the damper on: from now the level falls by `multiplier` per frame.
    pub fn damp(&mut self, multiplier: f32) {
        if self.phase == Phase::Ringing {
            self.phase = Phase::Damped;
            self.env_mul = multiplier;
        }
    }

    /// Lifts the damper again (the pedal pressed while the string dies away): it rings on from
    /// where the damper left it.
    pub fn undamp(&mut self) {
        if self.phase == Phase::Damped {
            self.phase = Phase::Ringing;
            self.env_mul = 1.0;
        }
    }

    /// Fades to zero within `frames` (keeps a faster fade already running).
    pub fn fade_out(&mut self, frames: f32) {
        if self.phase != Phase::Free {
            self.phase = Phase::Fading;
            self.fade_step = self.fade_step.max(1.0 / frames.max(1.0));
        }
    }

    /// Seconds since the start at `rate` (for the release noise's level).
    pub fn seconds_since(&self, clock: u64, rate: f32) -> f32 {
        clock.saturating_sub(self.born) as f32 / rate
    }

    /// A rough current level (for choosing what to steal).
    pub fn level(&self) -> f32 {
        self.env * self.fade * (self.w_lo + self.w_hi)
    }

    /// Adds this voice into `left`/`right`; frees it when it ends. While the rest of it cannot
    /// reach `floor` (in output units at the piano's gain of 1) it only advances, unheard: it keeps
    /// its slot, so stealing and ending go as if it sounded. Whether it is heard is decided every
    /// [`MUTE_GRID`] frames of its own life, so the output does not depend on how the host cuts
    /// its buffers.
    pub fn mix(&mut self, set: &SampleSet, left: &mut [f32], right: &mut [f32], floor: f32, build: VoiceLoop) {
        let (a, b) = (set.sample(self.lo), set.sample(self.hi));
        let n = left.len().min(right.len());
        let mut done = 0;
        while done < n {
            if self.age.is_multiple_of(MUTE_GRID) {
                self.muted = self.loudest_ahead(a, b) < floor;
            }
            let until_grid = (MUTE_GRID - self.age % MUTE_GRID) as usize;
            let frames = self.frames_to_end().min(n - done).min(until_grid);
            let played = match self.muted {
                true => self.advance(frames),
                false => self.render(a.padded(), b.padded(), &mut left[done..done + frames], &mut right[done..done + frames], build),
            };
            self.age += played as u64;
            done += played;
            if played < frames || frames == 0 {
                self.phase = Phase::Free;
                return;
            }
        }
    }

    /// Frames until the sample ends.
    fn frames_to_end(&self) -> usize {
        let to_end = ((self.end as u64) << 32).saturating_sub(self.pos).div_ceil(self.step.max(1));
        usize::try_from(to_end).unwrap_or(usize::MAX)
    }

    /// Whether the voice still sounds at its next frame: the envelope at or above `SILENT` and
    /// the fade above zero (the same test frame by frame, heard or not).
    #[inline(always)]
    fn audible(env: f32, fade: f32) -> bool {
        env >= SILENT && fade > 0.0
    }

    /// The most this voice can still add to either channel: the layers' peaks from here on (the
    /// interpolation overshoots its points by at most 1.25x; the envelope and fade only fall).
    fn loudest_ahead(&self, a: &Sample, b: &Sample) -> f32 {
        // The next frame reads from the point before its own on.
        let first = ((self.pos >> 32) as usize).saturating_sub(1);
        let peak = self.w_lo.abs() * a.peak_from(first) as f32 + self.w_hi.abs() * b.peak_from(first) as f32;
        1.25 * peak * self.env * self.fade * self.gain_l.max(self.gain_r)
    }

    /// Moves on up to `frames` frames without sound, exactly as rendering them would; returns
    /// how many before the voice fell silent.
    fn advance(&mut self, frames: usize) -> usize {
        for done in 0..frames {
            if !Self::audible(self.env, self.fade) {
                return done;
            }
            self.env *= self.env_mul;
            self.fade -= self.fade_step;
            self.pos += self.step;
        }
        frames
    }

    /// Adds up to `left.len()` frames, all within the sample; returns the frames rendered before
    /// the voice fell silent. The AVX2 loop where the CPU has it (`avx2.rs`), else the portable one.
    fn render(&mut self, a: &[i16], b: &[i16], left: &mut [f32], right: &mut [f32], build: VoiceLoop) -> usize {
        #[cfg(target_arch = "x86_64")]
        if build.avx2 {
            // SAFETY: `VoiceLoop::detect` found AVX2 on this CPU.
            return unsafe { self.render_avx2(a, b, left, right) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = build;
        self.render_portable(a, b, left, right)
    }

    /// The portable loop, in chunks of three passes that the compiler vectorises: where and how to
    /// interpolate each frame, the weighted points, their sum into the output.
    fn render_portable(&mut self, a: &[i16], b: &[i16], left: &mut [f32], right: &mut [f32]) -> usize {
        let mut starts = [0usize; CHUNK];
        let mut taps = [[0.0f32; 4]; CHUNK];
        let mut sums = [[0.0f32; 4]; CHUNK];
        let mut rendered = 0;
        for (left, right) in left.chunks_mut(CHUNK).zip(right.chunks_mut(CHUNK)) {
            let n = self.advance_taking_taps(&mut starts[..left.len()], &mut taps[..left.len()]);
            self.weigh_points(a, b, &starts[..n], &taps[..n], &mut sums[..n]);
            for ((l, r), sum) in left.iter_mut().zip(right.iter_mut()).zip(&sums[..n]) {
                *l += sum[0] + sum[2];
                *r += sum[1] + sum[3];
            }
            rendered += n;
            if n < left.len() {
                break;
            }
        }
        rendered
    }

    /// For the next `starts.len()` frames, or fewer when the voice falls silent first (returns
    /// how many): where each frame's four points start in the padded data, and their
    /// interpolation weights times the envelope and fade.
    #[inline(always)]
    fn advance_taking_taps(&mut self, starts: &mut [usize], taps: &mut [[f32; 4]]) -> usize {
        let (mut pos, mut env, mut fade) = (self.pos, self.env, self.fade);
        let mut n = 0;
        for (start, taps) in starts.iter_mut().zip(taps) {
            if !Self::audible(env, fade) {
                break;
            }
            // Frames frame-1 ..= frame+2 (padding makes frame-1 valid at 0 and frame+2 at the end).
            *start = 2 * ((pos >> 32) as usize + PAD_BEFORE - 1);
            let hermite = hermite_taps((pos as u32) as f32 * (1.0 / ONE as f32));
            let gain = env * fade;
            for k in 0..4 {
                taps[k] = hermite[k] * gain;
            }
            env *= self.env_mul;
            fade -= self.fade_step;
            pos += self.step;
            n += 1;
        }
        (self.pos, self.env, self.fade) = (pos, env, fade);
        n
    }

    /// Per frame, the four points of both layers (interleaved stereo: eight lanes of the same
    /// operations) weighted by layer, tap and channel gain, and the two halves added: what is
    /// left to add is left 0 + 2, right 1 + 3.
    #[inline(always)]
    fn weigh_points(&self, a: &[i16], b: &[i16], starts: &[usize], taps: &[[f32; 4]], sums: &mut [[f32; 4]]) {
        let (w_a, w_b, left, right) = (self.w_lo, self.w_hi, self.gain_l, self.gain_r);
        for ((&start, t), sum) in starts.iter().zip(taps).zip(sums) {
            let (a, b) = (four_frames(a, start), four_frames(b, start));
            let lanes = [t[0] * left, t[0] * right, t[1] * left, t[1] * right, t[2] * left, t[2] * right, t[3] * left, t[3] * right];
            let mut weighted = [0.0f32; 8];
            for k in 0..8 {
                weighted[k] = (a[k] as f32 * w_a + b[k] as f32 * w_b) * lanes[k];
            }
            for k in 0..4 {
                sum[k] = weighted[k] + weighted[k + 4];
            }
        }
    }
}

/// Frames per pass of `Voice::render` (its working arrays live on the stack).
const CHUNK: usize = 32;
/// A voice decides whether it is still heard every this many frames of its life.
const MUTE_GRID: u64 = 256;

/// Four interleaved stereo frames from index `at`.
#[inline(always)]
fn four_frames(data: &[i16], at: usize) -> &[i16; 8] {
    data[at..at + 8].try_into().expect("8 samples")
}

/// The weights of points -1, 0, 1, 2 in 4-point, 3rd-order Hermite (Catmull-Rom) interpolation
/// at `x` in [0, 1): the curve through points 0 and 1 with the slopes of their neighbours.
#[inline(always)]
pub(crate) fn hermite_taps(x: f32) -> [f32; 4] {
    let [cubic, square, linear, constant] = HERMITE;
    let mut taps = [0.0; 4];
    for k in 0..4 {
        taps[k] = ((cubic[k] * x + square[k]) * x + linear[k]) * x + constant[k];
    }
    taps
}

/// Each Hermite weight's polynomial in x: its cubic, square, linear and constant coefficients
/// (evaluated by Horner's rule, cubic first).
const HERMITE: [[f32; 4]; 4] = [[-0.5, 1.5, -1.5, 0.5], [1.0, -2.5, 2.0, -0.5], [-0.5, 0.0, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]];

#[cfg(test)]
mod tests {
    use super::*;

    fn hermite(points: [f32; 4], x: f32) -> f32 {
        hermite_taps(x).iter().zip(points).map(|(t, y)| t * y).sum()
    }

    #[test]
    fn hermite_passes_through_the_points_and_is_exact_on_lines() {
        assert_eq!(hermite_taps(0.0), [0.0, 1.0, 0.0, 0.0]);
        assert!((hermite([1.0, 2.0, 3.0, 4.0], 0.999_999) - 3.0).abs() < 1e-5);
        assert!((hermite([1.0, 2.0, 3.0, 4.0], 0.25) - 2.25).abs() < 1e-6);
    }

    #[test]
    fn hermite_weights_sum_to_one_and_overshoot_at_most_a_quarter() {
        for i in 0..=100 {
            let taps = hermite_taps(i as f32 / 100.0);
            assert!((taps.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{taps:?}");
            // What `loudest_ahead` allows for.
            assert!(taps.iter().map(|t| t.abs()).sum::<f32>() <= 1.25 + 1e-6, "{taps:?}");
        }
    }

    /// A string on root `root`, mixing the softest and the loudest layer.
    fn string(set: &SampleSet, root: usize, step: f64) -> Voice {
        let start = Start {
            key: set.roots[root],
            velocity: 100,
            noise: false,
            lo: set.note(0, root),
            hi: set.note(set.layers() - 1, root),
            w_lo: 0.7,
            w_hi: 0.3,
            step: (step * ONE) as u64,
            gain_l: 0.9,
            gain_r: 1.1,
            born: 0,
        };
        Voice::start(set, start)
    }

    /// Mixes `voice` into fresh blocks of 512 frames until it ends (at most `blocks`); returns them.
    fn play(set: &SampleSet, voice: &mut Voice, floor: f32, blocks: usize) -> Vec<[[f32; 512]; 2]> {
        let mut out = Vec::new();
        while voice.phase != Phase::Free && out.len() < blocks {
            let [mut left, mut right] = [[0.0; 512]; 2];
            voice.mix(set, &mut left, &mut right, floor, VoiceLoop::detect());
            out.push([left, right]);
        }
        out
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_voice_loop_gives_the_portable_loops_bits() {
        if !VoiceLoop::detect().avx2 {
            eprintln!("this CPU has no AVX2: only the portable loop runs here");
            return;
        }
        let set = SampleSet::test_tones(2, 1.0);
        let mut damped = string(&set, 7, 1.013);
        damped.damp(0.9995);
        // Falls silent after about 700 frames: both loops stop at the same frame.
        let mut faded = string(&set, 3, 1.06);
        faded.fade_out(700.0);
        for (voice, silent_from) in [(string(&set, 13, 1.0), 1000), (string(&set, 20, 0.987), 1000), (damped, 1000), (faded, 701)] {
            let (mut portable, mut wide) = (voice, voice);
            let (a, b) = (set.sample(voice.lo).padded(), set.sample(voice.hi).padded());
            let [mut out_portable, mut out_wide] = [[[0.25f32; 1000]; 2]; 2];
            let [l, r] = &mut out_portable;
            assert_eq!(portable.render_portable(a, b, l, r), silent_from);
            let [l, r] = &mut out_wide;
            // SAFETY: this CPU has AVX2 (checked above).
            assert_eq!(unsafe { wide.render_avx2(a, b, l, r) }, silent_from);
            let bits = |out: &[[f32; 1000]; 2]| out.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out_portable), bits(&out_wide));
            assert!(out_wide[0].iter().any(|&x| x != 0.25));
            assert_eq!((portable.pos, portable.env.to_bits()), (wide.pos, wide.env.to_bits()));
        }
    }

    #[test]
    fn a_voice_plays_its_sample_to_the_last_frame_then_frees_its_slot() {
        let set = SampleSet::test_tones(2, 0.1); // 4800 frames: 9 blocks of 512 and 192 frames
        let mut voice = string(&set, 13, 1.0);
        let out = play(&set, &mut voice, 0.0, 100);
        assert_eq!(out.len(), 10);
        let [left, _] = &out[9];
        assert!(left[..192].iter().any(|&x| x != 0.0) && left[192..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn damped_and_faded_voices_end_where_their_envelope_ends() {
        let set = SampleSet::test_tones(2, 6.0);
        let mut damped = string(&set, 13, 1.0);
        damped.damp(0.999);
        // 0.999^n < 1e-5 from n = 11508 on: 22 blocks and 244 frames.
        assert_eq!(play(&set, &mut damped, 0.0, 1000).len(), 23);
        let mut faded = string(&set, 13, 1.0);
        faded.fade_out(1000.0);
        assert_eq!(play(&set, &mut faded, 0.0, 1000).len(), 2);
    }

    #[test]
    fn below_the_floor_a_voice_keeps_its_pace_and_the_sound_changes_by_less_than_the_floor() {
        let set = SampleSet::test_tones(2, 2.0);
        let floor = 1e-3;
        let mut damped = string(&set, 20, 1.0);
        damped.damp(0.9999);
        let mut faded = string(&set, 5, 0.97);
        faded.fade_out(40_000.0);
        // The top root's tone dies away fast: silent well before its end.
        for voice in [string(&set, 29, 1.03), damped, faded] {
            let (mut muted, mut heard) = (voice, voice);
            let (quiet, all) = (play(&set, &mut muted, floor, 1000), play(&set, &mut heard, 0.0, 1000));
            assert_eq!(quiet.len(), all.len());
            assert_eq!((muted.pos, muted.phase), (heard.pos, heard.phase));
            let difference = |(a, b): (&[[f32; 512]; 2], &[[f32; 512]; 2])| {
                a.iter().flatten().zip(b.iter().flatten()).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            };
            assert!(quiet.iter().zip(&all).map(difference).all(|d| d <= floor));
            let silent = |block: &[[f32; 512]; 2]| block.iter().flatten().all(|&x| x == 0.0);
            assert!(quiet.iter().zip(&all).any(|(q, a)| silent(q) && !silent(a)), "it was muted for a while");
        }
    }
}
