//! Drawing the next event from the model's logits: temperature, top-p, a seedable generator.
//!
//! Everything here works in place on caller-owned buffers and never allocates, so it can run on
//! a real-time thread. Same seed + same logits => same draws, on every platform.

/// PCG-XSH-RR 32 (O'Neill 2014): 64-bit state, 32-bit output. Small, fast, statistically good,
/// and its output is fixed by its definition, so seeds reproduce across versions and platforms
/// (unlike `rand`'s `StdRng`, whose algorithm may change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pcg32 {
    state: u64,
    increment: u64,
}

impl Pcg32 {
    const MULTIPLIER: u64 = 6364136223846793005;

    /// A generator for `seed` on the default stream.
    pub fn new(seed: u64) -> Pcg32 {
        Pcg32::with_stream(seed, 0xda3e_39cb_94b9_5bdb)
    }

    /// A generator for `seed` on stream `stream` (different streams never overlap).
    pub fn with_stream(seed: u64, stream: u64) -> Pcg32 {
        let mut rng = Pcg32 { state: 0, increment: (stream << 1) | 1 };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MULTIPLIER).wrapping_add(self.increment);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// A uniform number in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        let bits = ((self.next_u32() as u64) << 32) | self.next_u32() as u64;
        (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Sampling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Divides the logits: below 1 more conservative, above 1 more adventurous (0.1..=2.0).
    pub temperature: f32,
    /// Nucleus sampling: draw only from the most likely events whose probabilities add up to
    /// this (0 < p <= 1); `None` draws from all.
    pub top_p: Option<f32>,
    /// How strongly the motif memory leans each NOTE_ON towards the keys that continue a figure
    /// played before (0..=1; 0: not at all, the behaviour before it existed). See
    /// [`crate::engine::motif`].
    pub memory: f32,
    /// How strongly the engine draws onsets to where pianists place them in the beat, when it
    /// follows one (0..=1; 0: the model alone, the behaviour before it existed). See
    /// [`crate::engine::tightness`].
    pub tightness: f32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling { temperature: 1.0, top_p: None, memory: 0.0, tightness: 0.0 }
    }
}

pub const MIN_TEMPERATURE: f32 = 0.1;
pub const MAX_TEMPERATURE: f32 = 2.0;

impl Sampling {
    /// Why the settings are unusable, if they are.
    pub fn check(&self) -> Result<(), String> {
        if !(MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&self.temperature) {
            return Err(format!("temperature must lie in {MIN_TEMPERATURE}..={MAX_TEMPERATURE}, got {}", self.temperature));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(format!("top-p must lie in (0, 1], got {p}"));
        }
        if !(0.0..=1.0).contains(&self.memory) {
            return Err(format!("memory must lie in 0..=1, got {}", self.memory));
        }
        if !(0.0..=1.0).contains(&self.tightness) {
            return Err(format!("tightness must lie in 0..=1, got {}", self.tightness));
        }
        Ok(())
    }
}

/// Draws an index from `logits` (masked entries are `f32::NEG_INFINITY`). `logits` is turned into
/// unnormalised probabilities in place; `order` (same length) is scratch space for top-p.
/// At least one entry must be finite.
pub fn sample(logits: &mut [f32], order: &mut [u16], settings: &Sampling, rng: &mut Pcg32) -> usize {
    debug_assert_eq!(logits.len(), order.len());
    let inv_t = 1.0 / settings.temperature;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    debug_assert!(max.is_finite(), "every event is masked");
    let mut total = 0.0f64;
    for x in logits.iter_mut() {
        // exp(-inf) = 0: masked events get no probability.
        let p = (((*x - max) * inv_t) as f64).exp();
        *x = p as f32;
        total += p;
    }
    let u = rng.next_f64();
    match settings.top_p {
        Some(top_p) if top_p < 1.0 => {
            for (i, slot) in order.iter_mut().enumerate() {
                *slot = i as u16;
            }
            // Most likely first; ties by index, so the order is fully determined.
            order.sort_unstable_by(|&a, &b| logits[b as usize].total_cmp(&logits[a as usize]).then(a.cmp(&b)));
            let limit = top_p as f64 * total;
            let (mut kept, mut kept_total) = (0, 0.0f64);
            for &i in order.iter() {
                let p = logits[i as usize] as f64;
                if p == 0.0 {
                    break;
                }
                kept += 1;
                kept_total += p;
                if kept_total >= limit {
                    break;
                }
            }
            let target = u * kept_total;
            let mut acc = 0.0f64;
            for &i in &order[..kept] {
                acc += logits[i as usize] as f64;
                if acc > target {
                    return i as usize;
                }
            }
            order[kept.max(1) - 1] as usize
        }
        _ => {
            let target = u * total;
            let mut acc = 0.0f64;
            let mut last = 0;
            for (i, &p) in logits.iter().enumerate() {
                if p > 0.0 {
                    acc += p as f64;
                    last = i;
                    if acc > target {
                        return i;
                    }
                }
            }
            last
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg32_matches_the_reference_stream() {
        // pcg32_srandom(42, 54) from the PCG reference implementation (pcg32-demo).
        let mut rng = Pcg32::with_stream(42, 54);
        let first: Vec<u32> = (0..6).map(|_| rng.next_u32()).collect();
        assert_eq!(first, [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]);
    }

    #[test]
    fn masked_events_are_never_drawn_and_frequencies_follow_probabilities() {
        let mut rng = Pcg32::new(7);
        let mut counts = [0usize; 4];
        let mut order = [0u16; 4];
        for _ in 0..20_000 {
            let mut logits = [0.0f32, (3.0f32).ln(), f32::NEG_INFINITY, 0.0];
            counts[sample(&mut logits, &mut order, &Sampling::default(), &mut rng)] += 1;
        }
        assert_eq!(counts[2], 0);
        let share = counts[1] as f64 / 20_000.0;
        assert!((share - 0.6).abs() < 0.02, "{counts:?}");
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        let mut rng = Pcg32::new(1);
        let settings = Sampling { temperature: 1.0, top_p: Some(0.5), ..Sampling::default() };
        let mut order = [0u16; 3];
        for _ in 0..1000 {
            // Probabilities 0.6, 0.3, 0.1: the nucleus for p = 0.5 is the first alone.
            let mut logits = [(6.0f32).ln(), (3.0f32).ln(), 0.0];
            assert_eq!(sample(&mut logits, &mut order, &settings, &mut rng), 0);
        }
    }

    #[test]
    fn settings_are_checked() {
        let sampling = |temperature, top_p, memory| Sampling { temperature, top_p, memory, tightness: 0.0 };
        assert!(sampling(0.05, None, 0.0).check().is_err());
        assert!(sampling(1.0, Some(0.0), 0.0).check().is_err());
        assert!(sampling(1.0, None, 1.5).check().is_err());
        assert!(sampling(1.0, None, f32::NAN).check().is_err());
        assert!(sampling(2.0, Some(1.0), 1.0).check().is_ok());
    }
}
