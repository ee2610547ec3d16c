//! A performance aligned to its score, as ASAP annotates both: the score's beats and the
//! performance's beats correspond one to one, so the beats map score time to performed time;
//! then each score note is matched to the performed note of its key nearest to where the map
//! puts it (one to one, nearest pairs first). From the alignment come the targets the
//! performance model learns: how loud, how late against the beat, how fast, how long, pedalled.

use super::score::Score;
use super::stats::median;
use crate::codec::Performance;

/// The targets of a note, in column order.
pub const TARGETS: [&str; 5] = ["velocity", "log_tempo", "timing", "log_articulation", "pedal"];
pub const TARGET_COUNT: usize = TARGETS.len();

/// A performed note is matched only this close to where the beats put its score note: half the
/// local beat, at least this many seconds.
const MIN_MATCH_SECONDS: f64 = 0.15;
/// A pedal press this soon before or after an onset counts as pedalling on it (seconds).
const PEDAL_BEFORE: f64 = 0.05;
const PEDAL_AFTER: f64 = 0.3;
/// Timing deviations and articulation are clipped to these (beats; natural log).
const MAX_TIMING_BEATS: f64 = 0.5;
const ARTICULATION_RANGE: (f64, f64) = (-3.0, 2.0);

/// Maps score seconds to performed seconds through corresponding beats (piecewise linear, the
/// first and last beat's pace beyond them).
#[derive(Debug, Clone)]
pub struct BeatMap {
    score: Vec<f64>,
    performed: Vec<f64>,
}

impl BeatMap {
    /// Corresponding beats: as many of each, at least two, both increasing.
    pub fn new(score: Vec<f64>, performed: Vec<f64>) -> Result<BeatMap, String> {
        if score.len() != performed.len() {
            return Err(format!(
                "{} score beats against {} performed beats (a pianist skipped or repeated some)",
                score.len(),
                performed.len()
            ));
        }
        let increasing = |v: &[f64]| v.windows(2).all(|w| w[1] > w[0]);
        if score.len() < 2 || !increasing(&score) || !increasing(&performed) {
            return Err("the beats must be at least two, in increasing time".into());
        }
        Ok(BeatMap { score, performed })
    }

    /// The beat segment of score time `t`.
    fn segment(&self, t: f64) -> usize {
        self.score.partition_point(|&s| s <= t).clamp(1, self.score.len() - 1) - 1
    }

    /// Where the performance is at score time `t`.
    pub fn performed_at(&self, t: f64) -> f64 {
        let i = self.segment(t);
        self.performed[i] + (t - self.score[i]) * self.ratio(i)
    }

    /// Performed seconds per score second in beat segment `i`.
    fn ratio(&self, i: usize) -> f64 {
        (self.performed[i + 1] - self.performed[i]) / (self.score[i + 1] - self.score[i])
    }

    /// The performed beat's length at score time `t` (seconds).
    fn performed_beat(&self, t: f64) -> f64 {
        let i = self.segment(t);
        self.performed[i + 1] - self.performed[i]
    }
}

/// Score notes matched to performed notes.
#[derive(Debug, Clone)]
pub struct Alignment {
    /// The performed note of each score note, if found.
    pub matched: Vec<Option<usize>>,
    /// Where the beats put each score note's start and end (performed seconds).
    pub expected: Vec<(f64, f64)>,
}

impl Alignment {
    /// The share of score notes matched.
    pub fn coverage(&self) -> f64 {
        self.matched.iter().filter(|m| m.is_some()).count() as f64 / self.matched.len().max(1) as f64
    }
}

/// Matches the notes of `score` to those of `performance` through `map`.
pub fn align(score: &Score, performance: &Performance, map: &BeatMap) -> Alignment {
    let expected: Vec<(f64, f64)> =
        score.notes.iter().map(|n| (map.performed_at(score.seconds_at(n.start)), map.performed_at(score.seconds_at(n.end)))).collect();
    // Every (score note, performed note) pair of one key close enough, nearest first.
    let mut pairs = Vec::new();
    for (i, note) in score.notes.iter().enumerate() {
        let at = expected[i].0;
        let reach = (0.5 * map.performed_beat(score.seconds_at(note.start))).max(MIN_MATCH_SECONDS);
        let from = performance.notes.partition_point(|p| p.start < at - reach);
        for (j, p) in performance.notes.iter().enumerate().skip(from).take_while(|(_, p)| p.start <= at + reach) {
            if p.pitch == note.pitch.midi() {
                pairs.push(((p.start - at).abs(), i, j));
            }
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut matched = vec![None; score.notes.len()];
    let mut taken = vec![false; performance.notes.len()];
    for (_, i, j) in pairs {
        if matched[i].is_none() && !taken[j] {
            matched[i] = Some(j);
            taken[j] = true;
        }
    }
    Alignment { matched, expected }
}

/// The targets of every score note (NaN where unknown: velocity, timing and articulation of an
/// unmatched note).
pub fn targets(score: &Score, performance: &Performance, map: &BeatMap, alignment: &Alignment) -> Vec<[f32; TARGET_COUNT]> {
    let log_tempo: Vec<f64> = score.notes.iter().map(|n| map.ratio(map.segment(score.seconds_at(n.start))).ln()).collect();
    let typical = median(log_tempo.clone());
    let presses: Vec<f64> = performance.pedal.iter().filter(|p| p.down).map(|p| p.time).collect();
    let pedalled = |t: f64| {
        let from = presses.partition_point(|&p| p < t - PEDAL_BEFORE);
        presses.get(from).is_some_and(|&p| p <= t + PEDAL_AFTER)
    };
    let mut rows = Vec::with_capacity(score.notes.len());
    for (i, note) in score.notes.iter().enumerate() {
        let (start, end) = alignment.expected[i];
        let beat = map.performed_beat(score.seconds_at(note.start));
        let played = alignment.matched[i].map(|j| &performance.notes[j]);
        let velocity = played.map_or(f64::NAN, |p| p.velocity as f64);
        let timing = played.map_or(f64::NAN, |p| ((p.start - start) / beat).clamp(-MAX_TIMING_BEATS, MAX_TIMING_BEATS));
        let articulation = played.map_or(f64::NAN, |p| {
            let (lo, hi) = ARTICULATION_RANGE;
            ((p.end - p.start).max(0.01) / (end - start).max(0.02)).ln().clamp(lo, hi)
        });
        let onset = played.map_or(start, |p| p.start);
        rows.push([velocity, log_tempo[i] - typical, timing, articulation, pedalled(onset) as u8 as f64].map(|x| x as f32));
    }
    rows
}

/// The beat times (seconds, the first column) of an ASAP-style annotation file.
pub fn beat_times(text: &str) -> Result<Vec<f64>, String> {
    let mut times = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let first = line.split('\t').next().unwrap_or("").trim();
        let time: f64 = first.parse().map_err(|_| format!("line {}: the time is not a number: {line:?}", n + 1))?;
        if !time.is_finite() || time < 0.0 {
            return Err(format!("line {}: the time is out of range: {line:?}", n + 1));
        }
        times.push(time);
    }
    Ok(times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Note, PedalChange, Pitch};
    use crate::perform::score::ScoreNote;

    /// A score of quarter notes at 120 BPM (0.5 s each) on the given keys.
    fn score(keys: &[u8]) -> Score {
        let notes = keys
            .iter()
            .enumerate()
            .map(|(i, &k)| ScoreNote { pitch: Pitch::new(k).unwrap(), velocity: 100, start: i as f64, end: i as f64 + 1.0 })
            .collect();
        Score { notes, tempos: vec![(0.0, 120.0)], meters: vec![(0.0, crate::engine::Meter::FOUR_FOUR)], notices: Vec::new() }
    }

    fn note(pitch: u8, velocity: u8, start: f64, end: f64) -> Note {
        Note { pitch, velocity, start, end }
    }

    #[test]
    fn beats_map_score_time_to_performed_time_and_beyond() {
        let map = BeatMap::new(vec![0.0, 0.5, 1.0], vec![1.0, 2.0, 2.5]).unwrap();
        assert_eq!((map.performed_at(0.25), map.performed_at(0.75)), (1.5, 2.25));
        assert_eq!((map.performed_at(-0.5), map.performed_at(1.5)), (0.0, 3.0), "the first and last beat's pace beyond them");
        assert!(BeatMap::new(vec![0.0, 1.0], vec![0.0]).unwrap_err().contains("skipped or repeated"));
        assert!(BeatMap::new(vec![0.0, 1.0], vec![1.0, 1.0]).is_err());
    }

    #[test]
    fn notes_match_their_key_nearest_first_one_to_one() {
        // Performed twice as slowly from 1 s on: the beats (one per quarter) say so.
        let s = score(&[60, 62, 60, 64]);
        let map = BeatMap::new(vec![0.0, 0.5, 1.0, 1.5, 2.0], vec![0.0, 0.5, 1.0, 2.0, 3.0]).unwrap();
        let played = Performance {
            notes: vec![note(60, 50, 0.02, 0.4), note(62, 60, 0.45, 0.9), note(60, 70, 1.1, 1.9), note(65, 80, 2.0, 2.5)],
            pedal: vec![PedalChange { time: 1.2, down: true }, PedalChange { time: 2.9, down: false }],
            duration: 3.0,
        };
        let a = align(&s, &played, &map);
        assert_eq!(a.matched, vec![Some(0), Some(1), Some(2), None], "a wrong key is never matched");
        assert_eq!(a.coverage(), 0.75);
        let t = targets(&s, &played, &map, &a);
        assert_eq!(t[2][0], 70.0);
        assert!((t[2][2] - 0.1).abs() < 1e-6, "0.1 s late on a 1 s beat: {}", t[2][2]);
        assert!(t[3][0].is_nan() && t[3][2].is_nan() && t[3][3].is_nan(), "unknown where unmatched");
        // Beats of 1 s against 0.5 written from the third quarter on: ln 2 slower than before.
        assert!((t[3][1] - t[0][1] - 2f32.ln()).abs() < 1e-6 && t[2][1] == t[3][1]);
        assert_eq!((t[2][4], t[0][4]), (1.0, 0.0), "pedalled just after the third onset only");
    }

    #[test]
    fn annotation_times_are_read_and_bad_lines_named() {
        assert_eq!(beat_times("0.5\t0.5\tdb,4/4,0\n1.0\t1.0\tb\n\n").unwrap(), vec![0.5, 1.0]);
        assert!(beat_times("x\tx\tb").unwrap_err().contains("line 1"));
    }
}
