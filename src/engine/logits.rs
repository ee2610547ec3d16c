//! Logits read as probabilities and written back, for the leanings applied before sampling (the
//! motif memory, Tightness): each moves probability within a block of the vocabulary (the
//! NOTE_ONs, the VELOCITY bins, the TIME_SHIFTs) and leaves the block's joint probability, and
//! every other event's, as the model had it. Allocation-free (the engine thread calls them).

/// The likeliest logit of a block (-inf when every entry is masked).
pub fn likeliest(block: &[f32]) -> f32 {
    block.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// A logit's probability at `temperature` relative to the block's likeliest, `max` (0 if masked).
/// In f64, as the sums over a block need it.
pub fn relative_probability(x: f32, max: f32, temperature: f32) -> f64 {
    (((x - max) / temperature) as f64).exp()
}

/// The logit of a probability relative to the likeliest, `max`: the inverse of
/// [`relative_probability`].
pub fn logit_of(p: f64, max: f32, temperature: f32) -> f32 {
    max + temperature * p.ln() as f32
}

/// Multiplies the probability of each entry `i` of `block` (logits drawn at `temperature`, masked
/// ones -inf, which stay masked) by `factor(i)`, then scales the block back to the joint
/// probability it had. `ln_factor(i)` must be `factor(i).ln()`: a caller with the logarithm at
/// hand passes it rather than round it through exp and ln.
pub fn reweigh(block: &mut [f32], temperature: f32, factor: impl Fn(usize) -> f64, ln_factor: impl Fn(usize) -> f64) {
    let max = likeliest(block);
    if max == f32::NEG_INFINITY {
        return;
    }
    let (mut before, mut after) = (0.0f64, 0.0f64);
    for (i, &x) in block.iter().enumerate() {
        let p = relative_probability(x, max, temperature);
        before += p;
        after += p * factor(i);
    }
    // Times the factor, then all scaled back by before / after: in logits, one addition each.
    let rescale = (before / after).ln();
    for (i, x) in block.iter_mut().enumerate().filter(|(_, x)| **x > f32::NEG_INFINITY) {
        *x += temperature * (ln_factor(i) + rescale) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reweighed_block_keeps_its_joint_probability_and_its_masks() {
        let mut block = [0.0f32, -1.0, f32::NEG_INFINITY, 0.5];
        let probability = |b: &[f32]| b.iter().map(|&x| (x as f64 / 0.8).exp()).collect::<Vec<f64>>();
        let before = probability(&block);
        reweigh(&mut block, 0.8, |i| 1.0 + i as f64, |i| (1.0 + i as f64).ln());
        let after = probability(&block);
        assert!((after.iter().sum::<f64>() - before.iter().sum::<f64>()).abs() < 1e-5);
        assert!((after[3] / after[0] - 4.0 * before[3] / before[0]).abs() < 1e-4, "entry 3 four times as likely against entry 0");
        assert_eq!(block[2], f32::NEG_INFINITY);
        let (max, p) = (likeliest(&block), relative_probability(block[1], likeliest(&block), 0.8));
        assert!((logit_of(p, max, 0.8) - block[1]).abs() < 1e-5, "logit_of inverts relative_probability");
    }
}
