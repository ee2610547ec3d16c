//! The voice loop written for AVX2 by hand: one pass a frame, a frame's four points of both
//! channels in one eight-lane register. Every lane does the operations of
//! [`Voice::render_portable`](super::Voice) in the same order (no fused multiply-add), so both give
//! the same bits; the compiler's own AVX2 build of that loop split a frame's eight lanes in two
//! and went through arrays on the stack between its passes (20 % slower, docs/benchmarks.md).

use super::{HERMITE, ONE, PAD_BEFORE, Voice};
use std::arch::x86_64::*;

impl Voice {
    /// Adds up to `left.len()` frames, all within the sample; returns how many before the voice
    /// fell silent.
    ///
    /// # Safety
    /// The CPU must have AVX2 (`VoiceLoop::detect`).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn render_avx2(&mut self, a: &[i16], b: &[i16], left: &mut [f32], right: &mut [f32]) -> usize {
        let (mut pos, mut env, mut fade) = (self.pos, self.env, self.fade);
        // Lanes: point -1 left, point -1 right, point 0 left, ... point 2 right.
        let (l, r) = (self.gain_l, self.gain_r);
        let channels = _mm256_setr_ps(l, r, l, r, l, r, l, r);
        let (w_a, w_b) = (_mm256_set1_ps(self.w_lo), _mm256_set1_ps(self.w_hi));
        let each_tap_twice = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        let mut rendered = 0;
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            if !Self::audible(env, fade) {
                break;
            }
            // Frames frame-1 ..= frame+2 (padding makes frame-1 valid at 0 and frame+2 at the end).
            let start = 2 * ((pos >> 32) as usize + PAD_BEFORE - 1);
            let taps = _mm_mul_ps(hermite_taps((pos as u32) as f32 * (1.0 / ONE as f32)), _mm_set1_ps(env * fade));
            let lanes = _mm256_mul_ps(_mm256_permutevar8x32_ps(_mm256_castps128_ps256(taps), each_tap_twice), channels);
            let points = _mm256_add_ps(_mm256_mul_ps(four_points(a, start), w_a), _mm256_mul_ps(four_points(b, start), w_b));
            let weighted = _mm256_mul_ps(points, lanes);
            // Lanes k + (k + 4), then (0 + 2, 1 + 3): left and right.
            let sums = _mm_add_ps(_mm256_castps256_ps128(weighted), _mm256_extractf128_ps::<1>(weighted));
            let pair = _mm_add_ps(sums, _mm_movehl_ps(sums, sums));
            *l += _mm_cvtss_f32(pair);
            *r += _mm_cvtss_f32(_mm_movehdup_ps(pair));
            env *= self.env_mul;
            fade -= self.fade_step;
            pos += self.step;
            rendered += 1;
        }
        (self.pos, self.env, self.fade) = (pos, env, fade);
        rendered
    }
}

/// [`super::hermite_taps`] in one register: lane by lane the same polynomial.
#[inline]
#[target_feature(enable = "avx2")]
fn hermite_taps(x: f32) -> __m128 {
    let x = _mm_set1_ps(x);
    let [cubic, square, linear, constant] = HERMITE.map(|c| _mm_setr_ps(c[0], c[1], c[2], c[3]));
    _mm_add_ps(_mm_mul_ps(_mm_add_ps(_mm_mul_ps(_mm_add_ps(_mm_mul_ps(cubic, x), square), x), linear), x), constant)
}

/// Four interleaved stereo frames from index `at`, as floats.
#[inline]
#[target_feature(enable = "avx2")]
fn four_points(data: &[i16], at: usize) -> __m256 {
    let points: &[i16; 8] = data[at..at + 8].try_into().expect("8 samples");
    // SAFETY: `points` is 16 readable bytes; the load has no alignment requirement.
    let raw = unsafe { _mm_loadu_si128(points.as_ptr().cast()) };
    _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(raw))
}
