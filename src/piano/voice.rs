//! One sounding string (or release noise): two velocity layers of one sample read at a fixed-point
//! position, 4-point Hermite interpolation, a damper envelope and a linear fade for steals.

use super::load::{PAD_BEFORE, SampleSet};

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

    /// Adds this voice into `left`/`right`; frees it when it ends.
    pub fn mix(&mut self, set: &SampleSet, left: &mut [f32], right: &mut [f32]) {
        let a = set.sample(self.lo).padded();
        let b = set.sample(self.hi).padded();
        let (w_lo, w_hi) = (self.w_lo, self.w_hi);
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            let frame = (self.pos >> 32) as usize;
            if frame >= self.end || self.env < SILENT || self.fade <= 0.0 {
                self.phase = Phase::Free;
                return;
            }
            // Frames frame-1 ..= frame+2 (padding makes frame-1 valid at 0 and frame+2 at the end).
            let at = 2 * (frame + PAD_BEFORE - 1);
            let (fa, fb) = (&a[at..at + 8], &b[at..at + 8]);
            let y = |k: usize| fa[k] as f32 * w_lo + fb[k] as f32 * w_hi;
            let x = (self.pos as u32) as f32 * (1.0 / ONE as f32);
            let gain = self.env * self.fade;
            *l += hermite(y(0), y(2), y(4), y(6), x) * gain * self.gain_l;
            *r += hermite(y(1), y(3), y(5), y(7), x) * gain * self.gain_r;
            self.env *= self.env_mul;
            self.fade -= self.fade_step;
            self.pos += self.step;
        }
    }
}

/// 4-point, 3rd-order Hermite (Catmull-Rom) interpolation between `y0` and `y1` at `x` in [0, 1).
#[inline]
pub(crate) fn hermite(ym1: f32, y0: f32, y1: f32, y2: f32, x: f32) -> f32 {
    let c1 = 0.5 * (y1 - ym1);
    let c2 = ym1 - 2.5 * y0 + 2.0 * y1 - 0.5 * y2;
    let c3 = 0.5 * (y2 - ym1) + 1.5 * (y0 - y1);
    ((c3 * x + c2) * x + c1) * x + y0
}

#[cfg(test)]
mod tests {
    use super::hermite;

    #[test]
    fn hermite_passes_through_the_points_and_is_exact_on_lines() {
        assert_eq!(hermite(1.0, 2.0, 3.0, 4.0, 0.0), 2.0);
        assert!((hermite(1.0, 2.0, 3.0, 4.0, 0.999_999) - 3.0).abs() < 1e-5);
        assert!((hermite(1.0, 2.0, 3.0, 4.0, 0.25) - 2.25).abs() < 1e-6);
    }
}
