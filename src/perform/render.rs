//! From the model's outputs to a performance: every score note played exactly once, chords in
//! score order, on the score's own tempo map shaped by the model's local tempo.

use super::align::TARGET_COUNT;
use super::features::{Chord, chords};
use super::score::Score;
use crate::codec::{Note, PedalChange, Performance};
use crate::engine::sampling::Pcg32;

/// A chord's notes start at least this long after the previous chord's last (seconds): enough
/// for a key struck in both to be released and struck again in a MIDI file's milliseconds.
pub(crate) const CHORD_ORDER_GAP: f64 = 0.005;
/// A note ends at least this long before the next of its key begins (seconds).
pub(crate) const RELEASE_GAP: f64 = 0.002;
/// The shortest note played (a zero-length score note sounds this long).
pub(crate) const SHORTEST_NOTE: f64 = 0.03;
/// A pedal change is pressed again this long after the onset it is released on (seconds).
pub(crate) const PEDAL_CATCH: f64 = 0.08;
/// The pedal is changed at a chord whose pedal output reaches this.
pub(crate) const PEDAL_THRESHOLD: f32 = 0.5;
/// The model's velocities lean to the mean, as any regression does (on the training scores their
/// spread within a piece is 9.2 against the pianists' 14.9, `pianoforte eval-perform --split
/// train --temperature 0` without widening): their deviations from the piece's mean are widened
/// by this, which leaves their correlation with the pianists' as it was.
const DYNAMICS_WIDENING: f64 = 1.6;
/// At temperature 1, the spread drawn around the model's velocity (MIDI) and onset (beats).
const VELOCITY_SPREAD: f64 = 4.0;
const TIMING_SPREAD: f64 = 0.03;

/// How a score is performed beyond the model's outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderOptions {
    /// Scales the spread drawn around the model's velocities and onsets (0: exactly the model's).
    pub temperature: f64,
    pub seed: u64,
}

/// Plays `score` as the model says (`outputs`: one row per note, in order).
pub fn render(score: &Score, outputs: &[[f32; TARGET_COUNT]], options: RenderOptions) -> Performance {
    render_notes(score, outputs, options).0
}

/// [`render`], with the performed note of each score note (in the score's order).
pub fn render_notes(score: &Score, outputs: &[[f32; TARGET_COUNT]], options: RenderOptions) -> (Performance, Vec<Note>) {
    let chords = chords(score);
    let warp = TimeWarp::new(score, &chords, outputs);
    let mut rng = Pcg32::new(options.seed);
    let mean_velocity = outputs.iter().map(|o| o[0] as f64).sum::<f64>() / outputs.len().max(1) as f64;
    let mut spread = |scale: f64| options.temperature * scale * normal(&mut rng);
    let mut notes = Vec::with_capacity(score.notes.len());
    let mut first_onsets = Vec::with_capacity(chords.len());
    let mut previous_last = f64::NEG_INFINITY;
    for (c, chord) in chords.iter().enumerate() {
        let beat = warp.beat_seconds(score, score.notes[chord.start].start, c);
        let (mut first, mut last) = (f64::INFINITY, previous_last);
        for (note, output) in score.notes[chord.start..chord.end].iter().zip(&outputs[chord.start..chord.end]) {
            let [velocity, _, timing, articulation, _] = output.map(|x| x as f64);
            let start = (warp.at(c) + (timing + spread(TIMING_SPREAD)) * beat).max(previous_last + CHORD_ORDER_GAP);
            let written = warp.time_of(score.seconds_at(note.end)) - warp.at(c);
            let length = (written * articulation.exp()).max(SHORTEST_NOTE);
            let velocity = mean_velocity + (velocity - mean_velocity) * DYNAMICS_WIDENING + spread(VELOCITY_SPREAD);
            let velocity = velocity.round().clamp(1.0, 127.0) as u8;
            notes.push(Note { pitch: note.pitch.midi(), velocity, start, end: start + length });
            (first, last) = (first.min(start), last.max(start));
        }
        first_onsets.push(first);
        previous_last = last;
    }
    let mut order: Vec<usize> = (0..notes.len()).collect();
    order.sort_by(|&a, &b| notes[a].start.total_cmp(&notes[b].start).then(notes[a].pitch.cmp(&notes[b].pitch)));
    end_before_the_next_of_their_key(&mut notes, &order);
    let pedal = pedalling(&chords, outputs, &first_onsets, &notes);
    let duration = notes.iter().map(|n| n.end).fold(0.0, f64::max) + 0.5;
    (Performance { notes: order.iter().map(|&i| notes[i]).collect(), pedal, duration }, notes)
}

/// The score's time (seconds of its own tempo map) played at the model's local tempo: between
/// one chord and the next the music moves `exp(log_tempo)` times as slowly as written.
struct TimeWarp {
    /// Each chord's written and performed start.
    written: Vec<f64>,
    performed: Vec<f64>,
    /// Each chord's pace (performed seconds per written second).
    pace: Vec<f64>,
}

impl TimeWarp {
    fn new(score: &Score, chords: &[Chord], outputs: &[[f32; TARGET_COUNT]]) -> TimeWarp {
        let written: Vec<f64> = chords.iter().map(|c| score.seconds_at(score.notes[c.start].start)).collect();
        let pace: Vec<f64> = chords
            .iter()
            .map(|c| (outputs[c.start..c.end].iter().map(|o| o[1] as f64).sum::<f64>() / (c.end - c.start) as f64).exp())
            .collect();
        let mut performed = Vec::with_capacity(chords.len());
        let mut now = written.first().copied().unwrap_or(0.0);
        for k in 0..chords.len() {
            if k > 0 {
                now += (written[k] - written[k - 1]) * pace[k - 1];
            }
            performed.push(now);
        }
        TimeWarp { written, performed, pace }
    }

    /// Chord `c`'s performed start.
    fn at(&self, c: usize) -> f64 {
        self.performed[c]
    }

    /// The performed time of written time `t` (at the pace of the chord before it).
    fn time_of(&self, t: f64) -> f64 {
        let k = self.written.partition_point(|&w| w <= t).saturating_sub(1);
        self.performed[k] + (t - self.written[k]) * self.pace[k]
    }

    /// The performed length of a beat at chord `c`, which starts at `quarters`.
    fn beat_seconds(&self, score: &Score, quarters: f64, c: usize) -> f64 {
        score.place(quarters).beat_quarters * 60.0 / score.bpm_at(quarters) * self.pace[c]
    }
}

/// A key sounds once at a time: a note ends just before the next of its key begins (`order`:
/// the notes by onset).
fn end_before_the_next_of_their_key(notes: &mut [Note], order: &[usize]) {
    let mut next_start = [f64::INFINITY; 128];
    for &i in order.iter().rev() {
        let note = &mut notes[i];
        let next = &mut next_start[note.pitch as usize];
        if note.end > *next - RELEASE_GAP {
            // Never shorter than half the way to the next (onsets of one key differ: chords are ordered).
            note.end = (*next - RELEASE_GAP).max(note.start + (*next - note.start) / 2.0);
        }
        *next = note.start;
    }
}

/// Pedal changes where the model pedals: released at the chord's first onset, pressed again a
/// moment later (legato pedalling); released after the last note.
fn pedalling(chords: &[Chord], outputs: &[[f32; TARGET_COUNT]], first_onsets: &[f64], notes: &[Note]) -> Vec<PedalChange> {
    let mut pedal: Vec<PedalChange> = Vec::new();
    for (c, chord) in chords.iter().enumerate() {
        if outputs[chord.start..chord.end].iter().all(|o| o[4] < PEDAL_THRESHOLD) {
            continue;
        }
        let at = first_onsets[c];
        let next = first_onsets.get(c + 1).copied().unwrap_or(f64::INFINITY);
        if pedal.last().is_some_and(|p| p.down) {
            pedal.push(PedalChange { time: at, down: false });
        }
        pedal.push(PedalChange { time: at + PEDAL_CATCH.min((next - at) / 2.0), down: true });
    }
    if let Some(&PedalChange { time, down: true }) = pedal.last() {
        let end = notes.iter().map(|n| n.end).fold(time + SHORTEST_NOTE, f64::max);
        pedal.push(PedalChange { time: end, down: false });
    }
    pedal
}

/// A standard normal number (Box-Muller).
fn normal(rng: &mut Pcg32) -> f64 {
    let (u, v) = (1.0 - rng.next_f64(), rng.next_f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Pitch;
    use crate::perform::score::ScoreNote;

    /// Quarter notes at 120 BPM: (beat, key) pairs.
    fn score(notes: &[(f64, u8)]) -> Score {
        let notes =
            notes.iter().map(|&(at, k)| ScoreNote { pitch: Pitch::new(k).unwrap(), velocity: 100, start: at, end: at + 1.0 }).collect();
        Score { notes, tempos: vec![(0.0, 120.0)], meters: vec![(0.0, crate::engine::Meter::FOUR_FOUR)], notices: Vec::new() }
    }

    #[test]
    fn the_tempo_warps_time_and_chords_stay_in_order() {
        let s = score(&[(0.0, 60), (0.0, 64), (1.0, 62), (2.0, 64), (2.0, 67)]);
        // Twice as slow from the second chord on; the last chord's top note a whole beat early.
        let outputs = [
            [70.0, 0.0, 0.0, 0.0, 0.0],
            [80.0, 0.0, 0.0, 0.0, 0.0],
            [60.0, 2f32.ln(), 0.0, 0.0, 1.0],
            [60.0, 2f32.ln(), 0.0, 0.0, 0.0],
            [60.0, 2f32.ln(), -1.0, 0.0, 0.0],
        ];
        let (performance, laid) = render_notes(&s, &outputs, RenderOptions { temperature: 0.0, seed: 1 });
        let starts: Vec<f64> = laid.iter().map(|n| n.start).collect();
        let expected = [0.0, 0.0, 0.5, 1.5];
        assert!(starts.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "0.5 s, then 1 s a beat: {starts:?}");
        assert!((starts[4] - (0.5 + CHORD_ORDER_GAP)).abs() < 1e-12, "never before the previous chord: {}", starts[4]);
        // Widened about their mean (66) by DYNAMICS_WIDENING.
        assert_eq!(laid.iter().map(|n| n.velocity).collect::<Vec<_>>(), vec![72, 88, 56, 56, 56]);
        assert_eq!(performance.notes.len(), 5);
        // The pedal: pressed at the second chord only (caught before the next chord's first onset),
        // then released after the last note.
        let pedal: Vec<(f64, bool)> = performance.pedal.iter().map(|p| (p.time, p.down)).collect();
        let press = 0.5 + PEDAL_CATCH.min((starts[4] - 0.5) / 2.0);
        assert_eq!(pedal, vec![(press, true), (performance.notes.iter().map(|n| n.end).fold(0.0, f64::max), false)]);
    }

    #[test]
    fn a_key_ends_before_it_is_struck_again_and_temperature_draws_around_the_model() {
        let s = score(&[(0.0, 60), (0.5, 60)]);
        let outputs = [[64.0, 0.0, 0.0, 1.0, 0.0]; 2]; // e^1: held far beyond the next strike
        let cold = render(&s, &outputs, RenderOptions { temperature: 0.0, seed: 1 });
        assert!(cold.notes[0].end < cold.notes[1].start && cold.notes[0].end > cold.notes[0].start);
        let warm = |seed| render(&s, &outputs, RenderOptions { temperature: 1.0, seed });
        assert_eq!(warm(3), warm(3));
        assert_ne!(warm(3), warm(4));
        assert!((1..6).any(|seed| warm(seed).notes[0].velocity != 64), "spread around the model's velocity");
    }
}
