//! How close a performance of a score comes to the pianists who played it (issue 20's figures),
//! every performance laid on the score through its alignment:
//!
//! - velocity: per-note correlation with the mean velocity of the pianists;
//! - tempo: the local tempo curve (log of the performed gap over the written gap in beats,
//!   between consecutive score onsets at least 1/4 beat apart, a chord's onset being the mean of
//!   its notes', smoothed over 8 onsets) against the pianists' mean curve;
//! - chord spread: the median over chords of the standard deviation of a chord's onsets;
//! - pedal presses per minute, and whether the pedal is left down at the end.

use super::features::{Chord, chords};
use super::score::Score;
use super::stats::{known, mean, median, spread};
use crate::codec::Performance;

/// Onsets closer than this in the score (beats) are not a tempo step.
const SHORTEST_TEMPO_STEP_BEATS: f64 = 0.25;
/// The tempo curve is a moving average over this many onsets.
const TEMPO_SMOOTHING: usize = 8;

/// One performance laid on the score: each score note's performed onset and velocity, if played.
#[derive(Debug, Clone)]
pub struct Laid {
    pub onsets: Vec<Option<f64>>,
    pub velocities: Vec<Option<f64>>,
}

/// The mean of the known values at each position (None where none is known).
pub fn mean_of(series: &[&[Option<f64>]]) -> Vec<Option<f64>> {
    let len = series.first().map_or(0, |s| s.len());
    (0..len)
        .map(|i| {
            let known: Vec<f64> = series.iter().filter_map(|s| s[i]).collect();
            (!known.is_empty()).then(|| mean(&known))
        })
        .collect()
}

/// The local tempo curve of a performance laid on `score` (one value per tempo step).
pub fn tempo_curve(score: &Score, laid: &Laid) -> Vec<Option<f64>> {
    let chords = chords(score);
    let onset = |c: &Chord| {
        let played: Vec<f64> = known(&laid.onsets[c.start..c.end]).collect();
        (!played.is_empty()).then(|| mean(&played))
    };
    let beats = |c: &Chord| {
        let q = score.notes[c.start].start;
        q / score.place(q).beat_quarters
    };
    let mut steps = Vec::new();
    let mut previous: Option<&Chord> = None;
    for chord in &chords {
        let Some(p) = previous else {
            previous = Some(chord);
            continue;
        };
        let written = beats(chord) - beats(p);
        if written < SHORTEST_TEMPO_STEP_BEATS {
            continue;
        }
        let gap = match (onset(chord), onset(p)) {
            (Some(b), Some(a)) if b > a => Some(((b - a) / written).ln()),
            _ => None,
        };
        steps.push(gap);
        previous = Some(chord);
    }
    smooth(&steps, TEMPO_SMOOTHING)
}

/// A centred moving average over `width` values, of the known ones.
fn smooth(values: &[Option<f64>], width: usize) -> Vec<Option<f64>> {
    let half = width / 2;
    (0..values.len())
        .map(|i| {
            let window = &values[i.saturating_sub(half)..(i + width - half).min(values.len())];
            let near: Vec<f64> = known(window).collect();
            (values[i].is_some() && !near.is_empty()).then(|| mean(&near))
        })
        .collect()
}

/// The median over chords of two notes or more of the standard deviation of their onsets
/// (seconds; NaN without such chords).
pub fn chord_spread(score: &Score, laid: &Laid) -> f64 {
    let spreads: Vec<f64> = chords(score)
        .iter()
        .filter_map(|c| {
            let onsets = known(&laid.onsets[c.start..c.end]);
            (onsets.clone().count() >= 2).then(|| spread(onsets))
        })
        .collect();
    if spreads.is_empty() { f64::NAN } else { median(spreads) }
}

/// Pedal presses per minute of the performance, and whether it ends with the pedal down.
pub fn pedalling(performance: &Performance) -> (f64, bool) {
    let presses = performance.pedal.iter().filter(|p| p.down).count();
    let minutes = (performance.duration / 60.0).max(1e-9);
    (presses as f64 / minutes, performance.pedal.last().is_some_and(|p| p.down))
}

/// Whether `performance` plays every score note exactly once and no other, with each chord's
/// onsets after the previous chord's (the performed notes `laid` in score order).
pub fn plays_the_score(score: &Score, performance: &Performance, laid: &[crate::codec::Note]) -> bool {
    let mut written: Vec<u8> = score.notes.iter().map(|n| n.pitch.midi()).collect();
    let mut played: Vec<u8> = performance.notes.iter().map(|n| n.pitch).collect();
    written.sort_unstable();
    played.sort_unstable();
    let same_keys = laid.iter().zip(&score.notes).all(|(p, n)| p.pitch == n.pitch.midi());
    let ordered = chords(score).windows(2).all(|w| {
        let last = laid[w[0].start..w[0].end].iter().map(|n| n.start).fold(f64::MIN, f64::max);
        laid[w[1].start..w[1].end].iter().all(|n| n.start > last)
    });
    written == played && laid.len() == score.notes.len() && same_keys && ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Note, PedalChange, Pitch};
    use crate::perform::score::ScoreNote;
    use crate::perform::stats::all_known;

    #[test]
    fn means_of_series_skip_unknown_values() {
        assert_eq!(mean_of(&[&[Some(1.0), None], &[Some(3.0), None]]), vec![Some(2.0), None]);
    }

    #[test]
    fn chords_spread_tempo_curves_and_exact_playing_are_measured() {
        // Chords of two at beats 0, 1, 2, 3 (120 BPM), then one note 1/8 beat later (no tempo step).
        let keys = [(0.0, 60), (0.0, 64), (1.0, 62), (1.0, 65), (2.0, 64), (2.0, 67), (3.0, 65), (3.0, 69), (3.125, 72)];
        let notes =
            keys.iter().map(|&(at, k)| ScoreNote { pitch: Pitch::new(k).unwrap(), velocity: 100, start: at, end: at + 1.0 }).collect();
        let score = Score { notes, tempos: vec![(0.0, 120.0)], meters: vec![(0.0, crate::engine::Meter::FOUR_FOUR)], notices: Vec::new() };
        // Slowing down: gaps of 0.5, 0.6, 0.7 s; chords spread by 10 ms (sd 5 ms).
        let starts = [0.0, 0.01, 0.5, 0.51, 1.1, 1.11, 1.8, 1.81, 1.9];
        let laid = Laid { onsets: all_known(&starts), velocities: all_known(&[60.0; 9]) };
        assert!((chord_spread(&score, &laid) - 0.005).abs() < 1e-9);
        let curve = tempo_curve(&score, &laid);
        assert_eq!(curve.len(), 3, "three steps of at least 1/4 beat");
        let raw = [0.5f64.ln(), 0.6f64.ln(), 0.7f64.ln()];
        assert!((curve[0].unwrap() - raw.iter().sum::<f64>() / 3.0).abs() < 1e-9, "smoothed over the window");
        let performed: Vec<Note> =
            keys.iter().zip(starts).map(|(&(_, k), s)| Note { pitch: k, velocity: 60, start: s, end: s + 0.4 }).collect();
        let performance = Performance { notes: performed.clone(), pedal: vec![PedalChange { time: 0.1, down: true }], duration: 30.0 };
        assert!(plays_the_score(&score, &performance, &performed));
        assert_eq!(pedalling(&performance), (2.0, true), "one press in half a minute, left down");
        let mut early = performed.clone();
        early[2].start = 0.005; // the second chord before the first one's last onset
        assert!(!plays_the_score(&score, &performance, &early));
        let mut fewer = performance.clone();
        fewer.notes.pop();
        assert!(!plays_the_score(&score, &fewer, &performed));
    }
}
