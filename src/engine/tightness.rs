//! Tightness: onsets placed in the beat as pianists place them (issue 19).
//!
//! A format-3 model hears where it is in the beat, yet on the training it has had it places its
//! onsets more loosely than pianists (72 % on the grid of 1/4 and 1/3 beats against their 86 %).
//! When the engine follows a beat, each TIME_SHIFT's probability moves to the landings within a
//! short reach of where it would land, in proportion to how often pianists strike there
//! ([`PIANISTS_PHASE`], raised to a power that grows with the strength). A soft quantisation
//! with a pianist's groove as its template: the model still decides when to move on and about how
//! far, a shift keeps its probability within its reach (so the notes per second stay), and short
//! shifts barely move (a chord's spread stays as played). Free time is left alone.
//!
//! Pianists also lean on the downbeat: at the same strength a VELOCITY drawn within
//! [`DOWNBEAT_REACH_BEATS`] of one leans louder ([`accent`]).
//!
//! It costs likelihood: scored on ASAP validation as drawn, the NLL with beats rises (docs/benchmarks.md,
//! "Tightness"); it is a way of playing, not a better model of the data.

use super::logits::{likeliest, logit_of, relative_probability, reweigh};
use crate::codec::{MAX_SHIFT_STEPS, VELOCITY_BINS, VOCABULARY};

/// Bins per beat of [`PIANISTS_PHASE`].
pub const PHASE_BINS: usize = 48;

/// Where in the beat ASAP's pianists strike: the onsets of the 765 training performances against
/// their annotated beats (positions interpolated between the beats as `benches/beats.py` does), as
/// a density over 48ths of the beat with mean 1. Made with `benches/beats.py --phase-prior`.
pub const PIANISTS_PHASE: [f32; PHASE_BINS] = [
    6.86, 1.50, 0.69, 0.43, 0.34, 0.34, 0.38, 0.46, 0.47, 0.48, 0.60, 0.84, //
    0.85, 0.74, 0.80, 1.00, 0.99, 0.78, 0.63, 0.58, 0.64, 0.82, 1.17, 1.64, //
    1.56, 1.04, 0.74, 0.62, 0.62, 0.72, 0.90, 1.11, 1.07, 0.90, 0.90, 0.99, //
    0.85, 0.62, 0.52, 0.50, 0.44, 0.36, 0.31, 0.30, 0.37, 0.62, 1.43, 6.45, //
];

/// At full strength the pianists' density counts to this power.
const MAX_EXPONENT: f64 = 4.0;
/// A landing moves at most this part of a beat...
const REACH_BEATS: f64 = 0.125;
/// ...and a shift of `n` steps at most `n / this` steps.
const SHORTEST_MOVED: usize = 2;
/// The density is looked up this part of a beat after the landing: a shift lands a cluster's
/// first note, and the annotated beat falls within the cluster's spread, not at its start.
const ANTICIPATION_BEATS: f64 = 1.0 / 48.0;

/// Pulls the TIME_SHIFT logits of the draw at `step` towards landings where pianists strike.
/// `phase_at(step)` is the position in the beat (0..1) at a step, `None` where there is no beat;
/// `period_steps` the beat's length now. `logits` are the masked logits the engine draws from at
/// `temperature`; the shifts keep their joint probability, everything else stays as it was.
/// Allocation-free.
pub fn pull(logits: &mut [f32], temperature: f32, strength: f32, step: i64, period_steps: f64, phase_at: impl Fn(i64) -> Option<f64>) {
    if strength <= 0.0 {
        return;
    }
    const N: usize = MAX_SHIFT_STEPS as usize;
    let shifts = &mut logits[VOCABULARY.time_shift_offset as usize..][..N];
    let allowed = |x: f32| x > f32::NEG_INFINITY;
    let max = likeliest(shifts);
    if !allowed(max) {
        return;
    }
    let exponent = MAX_EXPONENT * strength.min(1.0) as f64;
    // Each landing's weight: 0 where the grammar forbids it, `None` where there is no beat.
    let mut weight = [Some(0.0f64); N];
    for (k, (w, &x)) in weight.iter_mut().zip(shifts.iter()).enumerate() {
        let density = |phase: f64| PIANISTS_PHASE[bin(phase + ANTICIPATION_BEATS)] as f64;
        *w = phase_at(step + k as i64 + 1).map(|phase| if allowed(x) { density(phase).powf(exponent) } else { 0.0 });
    }
    // Shift j's probability moves to the landings within its reach, in proportion to their weight
    // (without a beat it stays).
    let reach = (REACH_BEATS * period_steps).round().max(0.0) as usize;
    let mut moved = [0.0f64; N];
    for j in 0..N {
        let p = relative_probability(shifts[j], max, temperature);
        let reach = reach.min((j + 1) / SHORTEST_MOVED);
        let window = j - reach..(j + reach + 1).min(N);
        let total: f64 = weight[window.clone()].iter().flatten().sum();
        match weight[j] {
            Some(_) if total > 0.0 => window.for_each(|k| moved[k] += p * weight[k].unwrap_or(0.0) / total),
            _ => moved[j] += p,
        }
    }
    // Moving kept the shifts' joint probability: the new logits are the moved probabilities.
    for (x, &p) in shifts.iter_mut().zip(&moved) {
        if allowed(*x) {
            *x = logit_of(p, max, temperature);
        }
    }
}

/// Onsets this close to a downbeat (in beats) are accented, as `benches/beats.py` counts them.
pub const DOWNBEAT_REACH_BEATS: f64 = 0.08;
/// At full strength a downbeat's velocity bins lean by this factor per bin (an exponential tilt:
/// about one bin louder on the model's spread of velocities).
const ACCENT_TILT: f64 = 0.1;

/// Leans the VELOCITY logits louder when the draw is `near_downbeat`; the velocities keep their
/// joint probability (whether a new velocity is drawn stays the model's). Allocation-free.
pub fn accent(logits: &mut [f32], temperature: f32, strength: f32, near_downbeat: bool) {
    if strength <= 0.0 || !near_downbeat {
        return;
    }
    let bins = &mut logits[VOCABULARY.velocity_offset as usize..][..VELOCITY_BINS as usize];
    let tilt = ACCENT_TILT * strength.min(1.0) as f64;
    // An exponential tilt: bin b's probability times e^(tilt b).
    reweigh(bins, temperature, |b| (tilt * b as f64).exp(), |b| tilt * b as f64);
}

/// The bin of [`PIANISTS_PHASE`] of a position in the beat.
fn bin(phase: f64) -> usize {
    ((phase.rem_euclid(1.0) * PHASE_BINS as f64) as usize).min(PHASE_BINS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIFT: usize = VOCABULARY.time_shift_offset as usize;

    /// Probabilities at temperature `t` of the logits.
    fn probabilities(logits: &[f32], t: f32) -> Vec<f64> {
        let e: Vec<f64> = logits.iter().map(|&x| (x as f64 / t as f64).exp()).collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|x| x / total).collect()
    }

    /// A beat of 50 steps from step 0.
    fn phase(step: i64) -> Option<f64> {
        Some(step.rem_euclid(50) as f64 / 50.0)
    }

    #[test]
    fn off_or_in_free_time_nothing_changes() {
        let mut logits: Vec<f32> = (0..VOCABULARY.size).map(|i| (i % 7) as f32 * 0.3).collect();
        let before = logits.clone();
        pull(&mut logits, 1.0, 0.0, 10, 50.0, phase);
        assert_eq!(logits, before);
        pull(&mut logits, 0.8, 1.0, 10, 50.0, |_| None);
        let (p, q) = (probabilities(&logits, 0.8), probabilities(&before, 0.8));
        assert!(p.iter().zip(&q).all(|(a, b)| (a - b).abs() < 1e-6), "no beat: the shifts stay as drawn");
    }

    #[test]
    fn a_shift_moves_to_the_beat_within_its_reach_and_keeps_its_probability() {
        // Only a shift of 22 steps, from step 30: it would land 2 steps before the beat at 50.
        let mut logits = vec![f32::NEG_INFINITY; VOCABULARY.size as usize];
        logits[SHIFT + 21] = 0.0;
        logits[0] = 0.0; // a NOTE_ON as likely as the shift
        for k in [5, 40] {
            logits[SHIFT + k] = -50.0; // allowed, improbable
        }
        pull(&mut logits, 1.0, 0.75, 30, 50.0, phase);
        let p = probabilities(&logits, 1.0);
        assert!((p[0] - 0.5).abs() < 1e-6, "the NOTE_ON keeps its probability: {}", p[0]);
        let shifts: f64 = p[SHIFT..SHIFT + 100].iter().sum();
        assert!((shifts - 0.5).abs() < 1e-6, "the shifts keep theirs: {shifts}");
        // Reach: 1/8 of 50 steps, 6; the beat's neighbourhood (bins 47, 0, 1) wins.
        let onto_beat: f64 = p[SHIFT + 18..=SHIFT + 21].iter().sum();
        assert!(onto_beat > 0.9 * 0.5, "most of it lands just before or on the beat: {onto_beat}");
        assert!(p[SHIFT + 14] == 0.0 && p[SHIFT + 28] == 0.0, "nothing beyond the reach");
        assert_eq!(logits[VOCABULARY.pedal_down as usize], f32::NEG_INFINITY, "forbidden events stay forbidden");
    }

    #[test]
    fn short_shifts_barely_move_and_forbidden_landings_get_nothing() {
        let mut logits = vec![f32::NEG_INFINITY; VOCABULARY.size as usize];
        logits[SHIFT] = 0.0; // one step
        logits[SHIFT + 2] = 0.0; // three steps: may move by one
        pull(&mut logits, 1.0, 1.0, 20, 50.0, phase);
        let p = probabilities(&logits, 1.0);
        assert!((p[SHIFT] - 0.5).abs() < 1e-6, "a one-step shift stays: {}", p[SHIFT]);
        assert!((p[SHIFT + 2] - 0.5).abs() < 1e-6, "its neighbours are forbidden, so it stays too");
        assert_eq!(p[SHIFT + 1], 0.0);
    }

    #[test]
    fn downbeats_lean_louder_and_keep_the_velocities_probability() {
        const VEL: usize = VOCABULARY.velocity_offset as usize;
        let mut logits = vec![0.0f32; VOCABULARY.size as usize];
        logits[VEL] = f32::NEG_INFINITY;
        let before = logits.clone();
        accent(&mut logits, 1.0, 1.0, false);
        accent(&mut logits, 1.0, 0.0, true);
        assert_eq!(logits, before, "off the downbeat, or at strength 0, nothing changes");
        accent(&mut logits, 0.9, 1.0, true);
        let p = probabilities(&logits, 0.9);
        let velocities: f64 = p[VEL..VEL + 32].iter().sum();
        assert!((velocities - 31.0 / 309.0).abs() < 1e-6, "the velocities keep their probability: {velocities}");
        assert!((p[VEL + 31] / p[VEL + 30] - 0.1f64.exp()).abs() < 1e-4, "one bin louder: e^0.1 times as likely");
        assert_eq!(p[VEL], 0.0, "a forbidden velocity stays forbidden");
        assert!((p[0] - 1.0 / 309.0).abs() < 1e-6, "a NOTE_ON keeps its probability");
    }
}
