//! The motif memory: figures that come back, as pianists bring them back (issue 21).
//!
//! The GRU hears 10 ms steps and has no easy way to say "what I played a bar ago". The memory
//! keeps the last [`MEMORY_CLUSTERS`] clusters of onsets (notes struck within 30 ms of a
//! cluster's first, as the motif benchmark groups them) and the line of their highest notes. It
//! finds where the line's last intervals (transposition-invariant) were played before, longest
//! match first, and suggests the cluster that came next there, moved to where the line is now:
//! the next cluster's keys before it starts, the keys it has not struck yet while it sounds (until
//! a key outside it is struck: then the music has left the figure).
//!
//! At a NOTE_ON the engine leans the model's choice of key towards the suggested keys, the more
//! the higher `Sampling::memory` and the longer the match; the model's probability of striking a
//! key at all, and of everything else, stays as it was. Timing, velocity and pedal stay the
//! model's, so a figure returns played anew rather than copied note for note (a cache model, as
//! in Kuhn and De Mori 1990; the longest match as in Pachet's Continuator). Chosen by measurement
//! over a linear mixture, which needed more strength for as much recurrence and then added notes
//! and raised the validation NLL; following the figure inside a cluster only while the music
//! does lowered the NLL at equal strength (docs/benchmarks.md, "Motif memory").
//!
//! Following a beat, Tightness pulls onsets onto it, and the model answers an onset on the beat
//! with more keys there: single notes become chords and the line the memory follows breaks. So
//! the memory leans harder by as much as Tightness pulls ([`strength`]; docs/benchmarks.md,
//! "The memory on a beat").
//!
//! Bounded (fixed arrays, no allocation), deterministic, and cleared with every new performance.

use super::logits::reweigh;
use crate::codec::{PITCHES, Pitch, VOCABULARY};

/// Keys on the piano.
const KEYS: usize = PITCHES as usize;
/// Clusters remembered (about 40 s at 16 notes a second).
pub const MEMORY_CLUSTERS: usize = 256;
/// Onsets less than this many 10 ms steps after a cluster's first join it.
pub const CLUSTER_STEPS: i64 = 3;
/// A match is at least this many intervals of the line...
const SHORTEST_FIGURE: usize = 1;
/// ...and is not looked at beyond this many.
const LONGEST_FIGURE: usize = 8;
/// A suggested key's probability is multiplied by up to 1 + this at full strength...
const MAX_BOOST: f64 = 200.0;
/// ...of which a match of this many intervals gets half (longer matches are surer).
const HALF_BOOST_MATCH: f64 = 2.0;
/// At full Tightness the memory leans this many times harder, plus once: chosen so that at the
/// card's defaults figures come back on a beat about as often as in MAESTRO (docs/benchmarks.md).
const TIGHTNESS_GAIN: f32 = 6.0;

/// How hard the memory leans: the Motifs setting `memory` (0..=1), times 1 + [`TIGHTNESS_GAIN`] x
/// the Tightness in force (0 in free time, where it is the Motifs setting alone). At the card's
/// defaults (0.5 and 0.75) it leans 5.5 times as hard on a beat as in free time.
pub fn strength(memory: f32, tightness: f32) -> f32 {
    memory.clamp(0.0, 1.0) * (1.0 + TIGHTNESS_GAIN * tightness.clamp(0.0, 1.0))
}

/// Notes struck together: their keys and the highest.
#[derive(Debug, Clone, Copy, Default)]
struct Cluster {
    /// Bit `i`: key index `i` was struck.
    keys: u128,
    top: u8,
}

/// The last clusters and what they suggest next.
#[derive(Debug, Clone)]
pub struct MotifMemory {
    /// Clusters in a ring, `len` of them, the newest (still open to more onsets) last.
    clusters: [Cluster; MEMORY_CLUSTERS],
    first: usize,
    len: usize,
    /// When the newest cluster began (engine steps).
    newest_began: i64,
    /// Weights of the keys still to come in the newest cluster, and of the cluster after it,
    /// and the length of the match each comes from.
    within: [f32; KEYS],
    after: [f32; KEYS],
    within_match: usize,
    after_match: usize,
}

impl Default for MotifMemory {
    fn default() -> Self {
        MotifMemory {
            clusters: [Cluster::default(); MEMORY_CLUSTERS],
            first: 0,
            len: 0,
            newest_began: 0,
            within: [0.0; KEYS],
            after: [0.0; KEYS],
            within_match: 0,
            after_match: 0,
        }
    }
}

impl MotifMemory {
    /// Forgets everything (a new performance).
    pub fn clear(&mut self) {
        *self = MotifMemory::default();
    }

    /// Clusters remembered (at most [`MEMORY_CLUSTERS`]).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Remembers an onset at `step` (engine steps of 10 ms): it joins the newest cluster or begins
    /// the next (the oldest goes when full), and the suggestions follow.
    pub fn strike(&mut self, pitch: Pitch, step: i64) {
        let bit = 1u128 << pitch.index();
        if self.len > 0 && step - self.newest_began < CLUSTER_STEPS {
            let newest = self.cluster_mut(self.len - 1);
            newest.keys |= bit;
            newest.top = newest.top.max(pitch.midi());
            self.follow_within(pitch);
        } else {
            if self.len == MEMORY_CLUSTERS {
                self.first = (self.first + 1) % MEMORY_CLUSTERS;
                self.len -= 1;
            }
            self.len += 1;
            *self.cluster_mut(self.len - 1) = Cluster { keys: bit, top: pitch.midi() };
            self.newest_began = step;
            (self.within, self.within_match) = (self.after, self.after_match);
            self.follow_within(pitch);
        }
        (self.after, self.after_match) = self.suggest_after_newest();
    }

    /// The rest of the suggested cluster stays suggested while its keys are the ones struck; a
    /// key outside it means the music has left the figure.
    fn follow_within(&mut self, pitch: Pitch) {
        match self.within[pitch.index()] > 0.0 {
            true => self.within[pitch.index()] = 0.0,
            false => self.within = [0.0; KEYS],
        }
    }

    fn cluster(&self, i: usize) -> Cluster {
        self.clusters[(self.first + i) % MEMORY_CLUSTERS]
    }

    fn cluster_mut(&mut self, i: usize) -> &mut Cluster {
        &mut self.clusters[(self.first + i) % MEMORY_CLUSTERS]
    }

    /// The top line's step from cluster `i - 1` to cluster `i`.
    fn interval(&self, i: usize) -> i32 {
        self.cluster(i).top as i32 - self.cluster(i - 1).top as i32
    }

    /// The clusters that followed the earlier places where the line's last intervals were
    /// played (the longest such match, at least `SHORTEST_FIGURE`), moved to the newest top.
    fn suggest_after_newest(&self) -> ([f32; KEYS], usize) {
        let mut suggested = [0.0; KEYS];
        let Some(newest) = self.len.checked_sub(1) else { return (suggested, 0) };
        let mut longest = SHORTEST_FIGURE;
        for j in SHORTEST_FIGURE..newest {
            let matched = (0..LONGEST_FIGURE.min(j)).take_while(|&k| self.interval(j - k) == self.interval(newest - k)).count();
            if matched < longest {
                continue;
            }
            if matched > longest {
                longest = matched;
                suggested = [0.0; KEYS];
            }
            let shift = self.cluster(newest).top as i32 - self.cluster(j).top as i32;
            let keys = self.cluster(j + 1).keys;
            for (i, weight) in suggested.iter_mut().enumerate() {
                let from = i as i32 - shift;
                if (0..KEYS as i32).contains(&from) && keys & (1 << from) != 0 {
                    *weight += 1.0;
                }
            }
        }
        (suggested, longest)
    }

    /// Leans the NOTE_ONs of `logits` (masked entries -inf; drawn at `temperature`) towards the
    /// keys the memory suggests at `step`: each suggested key's probability is multiplied by
    /// 1 + boost (times its share of the suggestion's weight), the boost growing with `strength`
    /// (from [`strength`]: 1 is the Motifs setting's most in free time) and with the length of
    /// the match; then all NOTE_ONs are scaled back to the probability they had together. The
    /// model keeps its say (a key it finds unlikely stays unlikely), the other events keep their
    /// probabilities, and nothing changes without a suggestion among the keys that may sound.
    pub fn blend(&self, logits: &mut [f32], temperature: f32, strength: f32, step: i64) {
        if strength <= 0.0 || self.is_empty() {
            return;
        }
        let (suggestions, matched) = match step - self.newest_began < CLUSTER_STEPS {
            true => (&self.within, self.within_match),
            false => (&self.after, self.after_match),
        };
        let ons = &mut logits[VOCABULARY.note_on_offset as usize..][..KEYS];
        let allowed = |x: f32| x > f32::NEG_INFINITY;
        let heaviest = ons.iter().zip(suggestions).filter(|(x, _)| allowed(**x)).map(|(_, &w)| w).fold(0.0f32, f32::max);
        if heaviest <= 0.0 {
            return;
        }
        let matched = matched as f64;
        let boost = MAX_BOOST * strength as f64 * matched / (matched + HALF_BOOST_MATCH);
        let factor = |key: usize| 1.0 + boost * (suggestions[key] / heaviest) as f64;
        reweigh(ons, temperature, factor, |key| factor(key).ln());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(midi: u8) -> Pitch {
        Pitch::new(midi).unwrap()
    }

    /// Strikes each cluster of `clusters` 20 steps after the one before, from step 0.
    fn play(memory: &mut MotifMemory, clusters: &[&[u8]]) -> i64 {
        let mut step = 0;
        for cluster in clusters {
            for &p in *cluster {
                memory.strike(key(p), step);
            }
            step += 20;
        }
        step - 20
    }

    fn keys(weights: &[f32; KEYS]) -> Vec<(u8, f32)> {
        (0..KEYS).filter(|&i| weights[i] > 0.0).map(|i| (Pitch::from_index(i).unwrap().midi(), weights[i])).collect()
    }

    #[test]
    fn a_figure_played_again_suggests_how_it_went_on_even_transposed() {
        let mut memory = MotifMemory::default();
        // C E G E C, then D F# A: the line climbs as before, a tone higher: F# next.
        play(&mut memory, &[&[60], &[64], &[67], &[64], &[60], &[62], &[66], &[69]]);
        assert_eq!(keys(&memory.after), [(66, 1.0)]);
    }

    #[test]
    fn a_chord_that_came_next_before_is_suggested_key_by_key_while_it_is_struck() {
        let mut memory = MotifMemory::default();
        let step = play(&mut memory, &[&[48, 52, 55], &[62], &[48, 52, 55], &[62]]);
        assert_eq!(keys(&memory.after), [(48, 1.0), (52, 1.0), (55, 1.0)]);
        let mut elsewhere = memory.clone();
        elsewhere.strike(key(50), step + 20);
        assert!(keys(&elsewhere.within).is_empty(), "a key outside the figure leaves it");
        memory.strike(key(48), step + 20);
        assert_eq!(keys(&memory.within), [(52, 1.0), (55, 1.0)]);
        // Within the cluster the keys still to come are suggested; after it, what follows it.
        let on = |midi: u8| VOCABULARY.note_on_offset as usize + key(midi).index();
        let blended = |memory: &MotifMemory, step: i64| {
            let mut logits = vec![0.0f32; VOCABULARY.size as usize];
            memory.blend(&mut logits, 1.0, 1.0, step);
            logits
        };
        let now = blended(&memory, step + 21);
        assert!(now[on(52)] > now[on(62)] + 3.0 && now[on(55)] == now[on(52)]);
        memory.strike(key(52), step + 21);
        memory.strike(key(55), step + 22);
        assert!(keys(&memory.within).is_empty());
        let later = blended(&memory, step + 23);
        assert!(later[on(62)] > later[on(52)] + 3.0);
    }

    #[test]
    fn the_memory_leans_harder_as_tightness_pulls() {
        assert_eq!(strength(0.5, 0.0), 0.5, "in free time or with Tightness off: the Motifs setting");
        assert_eq!(strength(0.5, 0.75), 2.75, "the card's defaults on a beat: 5.5 times as hard");
        assert_eq!(strength(0.0, 1.0), 0.0, "Motifs off stays off");
        assert_eq!(strength(2.0, -1.0), 1.0, "settings outside their ranges are clamped");
        assert_eq!(strength(0.5, 1.5), strength(0.5, 1.0));
        assert_eq!(strength(1.0, 1.0), 1.0 + TIGHTNESS_GAIN);
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_on_clear() {
        let mut memory = MotifMemory::default();
        for i in 0..3 * MEMORY_CLUSTERS {
            memory.strike(key(40 + (i % 7) as u8 * 3), 10 * i as i64);
        }
        assert_eq!(memory.len(), MEMORY_CLUSTERS);
        assert!(!keys(&memory.after).is_empty());
        memory.clear();
        assert!(memory.is_empty() && keys(&memory.after).is_empty() && keys(&memory.within).is_empty());
    }

    #[test]
    fn blending_moves_onset_probability_to_the_suggestion_and_leaves_the_rest() {
        let mut memory = MotifMemory::default();
        let step = play(&mut memory, &[&[60], &[64], &[67], &[64], &[60], &[62], &[66], &[69]]);
        let on = |midi: u8| VOCABULARY.note_on_offset as usize + key(midi).index();
        let mut logits = vec![0.0f32; VOCABULARY.size as usize];
        logits[on(30)] = f32::NEG_INFINITY;
        let before = logits.clone();
        memory.blend(&mut logits, 1.0, 0.0, step + 10);
        assert_eq!(logits, before);
        memory.blend(&mut logits, 0.7, 0.5, step + 10);
        let p = |l: &[f32], i: usize| (l[i] / 0.7).exp() as f64;
        let total = |l: &[f32]| (0..l.len()).map(|i| p(l, i)).sum::<f64>();
        // Every event had the same probability, 1/309 (88 onsets less a masked one: 87/309). At
        // half strength a match of 2 intervals boosts by 200 * 0.5 * 2 / 4 = 50: 51 against 86 x 1.
        assert!((p(&logits, on(66)) / total(&logits) - 51.0 / 137.0 * 87.0 / 309.0).abs() < 1e-6);
        assert!((p(&logits, on(67)) / total(&logits) - 1.0 / 137.0 * 87.0 / 309.0).abs() < 1e-6);
        assert!((total(&logits) - total(&before)).abs() < 1e-6 * total(&before));
        assert_eq!(logits[on(30)], f32::NEG_INFINITY);
        assert_eq!(logits[VOCABULARY.pedal_down as usize], 0.0);
    }

    #[test]
    fn a_suggestion_the_grammar_forbids_changes_nothing() {
        let mut memory = MotifMemory::default();
        let step = play(&mut memory, &[&[60], &[64], &[67], &[64], &[60], &[62], &[66], &[69]]);
        let mut logits = vec![0.0f32; VOCABULARY.size as usize];
        logits[VOCABULARY.note_on_offset as usize + key(66).index()] = f32::NEG_INFINITY;
        let before = logits.clone();
        memory.blend(&mut logits, 1.0, 1.0, step + 10);
        assert_eq!(logits, before);
    }
}
