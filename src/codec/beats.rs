//! Where a moment lies in the beat and the bar: what a format-3 model sees beside the events.
//!
//! A [`BeatPosition`] says, for one moment on the 10 ms clock, which 24th of its beat it is in,
//! which beat of its bar, how many beats the bar has, how long the beat lasts, and how many steps
//! remain to the next beat, quarter of a beat and third of a beat (what a TIME_SHIFT must span to
//! land on the grid: the model reads it off instead of multiplying phase by period). Annotated
//! performances get positions from a [`BeatGrid`] (their beats, downbeats marked); the engine's
//! beat clock computes them from a tempo and a meter. "No beat" (free time) is `None`.
//! Integer arithmetic only, so the Python trainer (`features.py`) computes the same bits.

/// Bins of the position inside a beat (24: quarters, thirds and sixths fall on bin edges).
pub const PHASE_BINS: usize = 24;
/// Beats of a bar told apart; later beats share the last index.
pub const BEAT_IN_BAR_SIZE: usize = 8;
/// Meters told apart, 1..=8 beats a bar; longer bars share the last index.
pub const METER_SIZE: usize = 8;
/// Edges (10 ms steps) of the beat period buckets: 30 steps = 200 BPM .. 120 steps = 50 BPM.
pub const PERIOD_EDGES_STEPS: [i64; 9] = [30, 36, 42, 50, 60, 70, 85, 100, 120];
/// Steps to the next beat told apart (0..=99; farther shares the last).
pub const TO_BEAT_SIZE: usize = 100;
/// Steps to the next quarter and third of a beat told apart (0..=49; farther shares the last).
pub const TO_DIVISION_SIZE: usize = 50;

pub const NO_BEAT_OFFSET: usize = 0;
pub const PHASE_OFFSET: usize = 1;
pub const BEAT_IN_BAR_OFFSET: usize = PHASE_OFFSET + PHASE_BINS;
pub const METER_OFFSET: usize = BEAT_IN_BAR_OFFSET + BEAT_IN_BAR_SIZE;
pub const PERIOD_OFFSET: usize = METER_OFFSET + METER_SIZE;
pub const TO_BEAT_OFFSET: usize = PERIOD_OFFSET + PERIOD_EDGES_STEPS.len() + 1;
pub const TO_QUARTER_OFFSET: usize = TO_BEAT_OFFSET + TO_BEAT_SIZE;
pub const TO_THIRD_OFFSET: usize = TO_QUARTER_OFFSET + TO_DIVISION_SIZE;
/// Floats of the beat features: no-beat flag, phase, beat in bar, meter, period, steps to the
/// next beat, quarter and third (all one-hot).
pub const BEAT_SIZE: usize = TO_THIRD_OFFSET + TO_DIVISION_SIZE;

/// One moment's place in the beat and the bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeatPosition {
    /// `24 * (time since the beat) / period`, in `0..24`.
    pub phase_bin: u8,
    /// 0 on the downbeat; `None` when the bar is unknown.
    pub beat_in_bar: Option<u16>,
    /// Beats in this bar; `None` when unknown.
    pub beats_per_bar: Option<u16>,
    /// The length of this beat in 10 ms steps (at least 1).
    pub period_steps: i64,
    /// Steps to the next beat, quarter of a beat and third of a beat; 0 when on one now.
    pub to_beat: i64,
    pub to_quarter: i64,
    pub to_third: i64,
}

impl BeatPosition {
    /// The position `since` steps after a beat that lasts `period` steps (`0 <= since < period`).
    /// The `d`-th parts of the beat begin at `j * period / d` steps (integer division).
    pub fn in_beat(since: i64, period: i64, beat_in_bar: Option<u16>, beats_per_bar: Option<u16>) -> BeatPosition {
        let period = period.max(1);
        let since = since.clamp(0, period - 1);
        let phase_bin = (since * PHASE_BINS as i64 / period) as u8;
        let to_part = |d: i64| (0..=d).map(|j| j * period / d - since).filter(|&gap| gap >= 0).min().unwrap_or(0);
        BeatPosition {
            phase_bin,
            beat_in_bar,
            beats_per_bar,
            period_steps: period,
            to_beat: to_part(1),
            to_quarter: to_part(4),
            to_third: to_part(3),
        }
    }
}

/// The bucket of a beat period: the number of edges `<=` it.
pub fn period_bucket(period_steps: i64) -> usize {
    PERIOD_EDGES_STEPS.iter().filter(|&&edge| edge <= period_steps).count()
}

/// Writes the features of `position` (`None` = free time) into `out[..BEAT_SIZE]`.
pub fn write_beat_features(position: Option<&BeatPosition>, out: &mut [f32]) {
    let out = &mut out[..BEAT_SIZE];
    out.fill(0.0);
    let Some(p) = position else {
        out[NO_BEAT_OFFSET] = 1.0;
        return;
    };
    out[PHASE_OFFSET + p.phase_bin as usize] = 1.0;
    if let Some(beat) = p.beat_in_bar {
        out[BEAT_IN_BAR_OFFSET + (beat as usize).min(BEAT_IN_BAR_SIZE - 1)] = 1.0;
    }
    if let Some(beats) = p.beats_per_bar.filter(|&b| b > 0) {
        out[METER_OFFSET + (beats as usize).min(METER_SIZE) - 1] = 1.0;
    }
    out[PERIOD_OFFSET + period_bucket(p.period_steps)] = 1.0;
    let capped = |steps: i64, size: usize| steps.clamp(0, size as i64 - 1) as usize;
    out[TO_BEAT_OFFSET + capped(p.to_beat, TO_BEAT_SIZE)] = 1.0;
    out[TO_QUARTER_OFFSET + capped(p.to_quarter, TO_DIVISION_SIZE)] = 1.0;
    out[TO_THIRD_OFFSET + capped(p.to_third, TO_DIVISION_SIZE)] = 1.0;
}

/// One annotated beat on the 10 ms clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    pub step: i64,
    pub downbeat: bool,
}

/// The annotated beats of one performance: positions between its first and last beat, free time
/// outside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BeatGrid {
    beats: Vec<Beat>,
}

impl BeatGrid {
    /// Sorts the beats; of beats on the same step the first is kept.
    pub fn new(mut beats: Vec<Beat>) -> BeatGrid {
        beats.sort_by_key(|b| b.step);
        beats.dedup_by_key(|b| b.step);
        BeatGrid { beats }
    }

    pub fn beats(&self) -> &[Beat] {
        &self.beats
    }

    /// The position at `step`, or `None` before the first beat and from the last one on.
    pub fn position(&self, step: i64) -> Option<BeatPosition> {
        let i = self.beats.partition_point(|b| b.step <= step).checked_sub(1)?;
        let next = self.beats.get(i + 1)?;
        let (beat_in_bar, beats_per_bar) = self.bar_of(i);
        Some(BeatPosition::in_beat(step - self.beats[i].step, next.step - self.beats[i].step, beat_in_bar, beats_per_bar))
    }

    /// Where in its beat `step` lies (0 on the beat, up to 1 before the next) and the beat's
    /// length in steps, or `None` where [`BeatGrid::position`] is.
    pub fn phase(&self, step: i64) -> Option<(f64, f64)> {
        let i = self.beats.partition_point(|b| b.step <= step).checked_sub(1)?;
        let (beat, next) = (self.beats[i].step, self.beats.get(i + 1)?.step);
        let period = (next - beat) as f64;
        Some(((step - beat) as f64 / period, period))
    }

    /// Whether `step` lies within `reach` beats of an annotated downbeat (between the first and
    /// the last beat).
    pub fn near_downbeat(&self, step: i64, reach: f64) -> bool {
        let Some((phase, _)) = self.phase(step) else { return false };
        let i = self.beats.partition_point(|b| b.step <= step) - 1;
        (self.beats[i].downbeat && phase <= reach) || (self.beats[i + 1].downbeat && phase >= 1.0 - reach)
    }

    /// Beat `i`'s index in its bar and the bar's length in beats. A bar cut off by the first or
    /// last downbeat takes the length of the nearest whole bar (before it, else after it); a
    /// pickup's beats count back from the first downbeat.
    fn bar_of(&self, i: usize) -> (Option<u16>, Option<u16>) {
        let is_down = |k: &usize| self.beats[*k].downbeat;
        let previous = (0..=i).rev().find(is_down);
        let next = (i + 1..self.beats.len()).find(is_down);
        let whole_bar = |from: usize| {
            let after = (from + 1..self.beats.len()).find(is_down)?;
            Some(after - from)
        };
        let whole_bar_before = |until: usize| {
            let before = (0..until).rev().find(is_down)?;
            Some(until - before)
        };
        let beats = match (previous, next) {
            (Some(p), Some(n)) => Some(n - p),
            (Some(p), None) => whole_bar_before(p),
            (None, Some(n)) => whole_bar(n),
            (None, None) => None,
        };
        let beat_in_bar = match (previous, next, beats) {
            (Some(p), _, _) => Some(i - p),
            (None, Some(n), Some(b)) => Some((b as i64 - (n - i) as i64).rem_euclid(b as i64) as usize),
            _ => None,
        };
        let narrow = |x: usize| u16::try_from(x).unwrap_or(u16::MAX);
        (beat_in_bar.map(narrow), beats.map(narrow))
    }
}

/// Reads an ASAP-style annotation file: one beat a line, `time<TAB>time<TAB>label`, label `b`,
/// `bR` (beat) or `db` (downbeat), optionally followed by `,time signature,key`.
pub fn parse_annotations(text: &str) -> Result<BeatGrid, String> {
    let mut beats = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let fail = |what: &str| format!("line {}: {what}: {line:?}", n + 1);
        let [time, _, label] = fields[..] else { return Err(fail("expected three tab-separated fields")) };
        let seconds: f64 = time.trim().parse().map_err(|_| fail("the time is not a number"))?;
        if !seconds.is_finite() || !(0.0..1.0e6).contains(&seconds) {
            return Err(fail("the time is out of range"));
        }
        let kind = label.split(',').next().unwrap_or("").trim();
        let downbeat = match kind {
            "db" => true,
            "b" | "bR" => false,
            _ => return Err(fail("the label is not b, bR or db")),
        };
        beats.push(Beat { step: super::to_step(seconds), downbeat });
    }
    Ok(BeatGrid::new(beats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(steps: &[i64], downbeats: &[i64]) -> BeatGrid {
        BeatGrid::new(steps.iter().map(|&step| Beat { step, downbeat: downbeats.contains(&step) }).collect())
    }

    #[test]
    fn positions_between_beats_in_a_three_four_bar_with_a_pickup() {
        let g = grid(&[0, 50, 100, 150, 200, 250, 300], &[100, 250]);
        assert_eq!(g.position(-1), None);
        assert_eq!(g.position(300), None, "from the last beat on it is free time");
        // The pickup (beats 0 and 50) counts back from the downbeat at 100: beats 1 and 2 of 3.
        assert_eq!(g.position(0), Some(BeatPosition::in_beat(0, 50, Some(1), Some(3))));
        assert_eq!(g.position(74).unwrap().phase_bin, 11);
        assert_eq!(g.position(75).unwrap().phase_bin, 12);
        assert_eq!(g.position(99).unwrap().beat_in_bar, Some(2));
        assert_eq!(g.position(100).unwrap().beat_in_bar, Some(0));
        // The bar from the last downbeat on takes the length of the whole bar before it.
        let last = g.position(299).unwrap();
        assert_eq!((last.phase_bin, last.beat_in_bar, last.beats_per_bar, last.period_steps), (23, Some(0), Some(3), 50));
        // Phases and downbeats, for Tightness: none outside the beats.
        assert_eq!((g.phase(75), g.phase(300), g.phase(-1)), (Some((0.5, 50.0)), None, None));
        assert!(g.near_downbeat(100, 0.08) && g.near_downbeat(96, 0.08) && g.near_downbeat(254, 0.08));
        assert!(!g.near_downbeat(95, 0.08) && !g.near_downbeat(150, 0.08) && !g.near_downbeat(300, 0.08));
    }

    #[test]
    fn the_steps_to_the_next_beat_quarter_and_third_are_what_a_shift_must_span() {
        let g = grid(&[0, 50, 100], &[]);
        let at = |step| {
            let p = g.position(step).unwrap();
            (p.to_beat, p.to_quarter, p.to_third)
        };
        // Quarters of the beat from 50 begin at 62, 75, 87; thirds at 66, 83 (integer division).
        assert_eq!(at(60), (40, 2, 6));
        assert_eq!(at(62), (38, 0, 4));
        assert_eq!(at(88), (12, 12, 12));
        assert_eq!(at(50), (0, 0, 0), "on the beat");
    }

    #[test]
    fn without_downbeats_the_bar_is_unknown_and_the_features_say_so() {
        let g = grid(&[10, 40, 100], &[]);
        let p = g.position(45).unwrap();
        assert_eq!((p.phase_bin, p.beat_in_bar, p.beats_per_bar, p.period_steps), (2, None, None, 60));
        let mut out = [9.0f32; BEAT_SIZE];
        write_beat_features(Some(&p), &mut out);
        let hot: Vec<usize> = (0..BEAT_SIZE).filter(|&i| out[i] == 1.0).collect();
        let expected = [PHASE_OFFSET + 2, PERIOD_OFFSET + 5, TO_BEAT_OFFSET + 55, TO_QUARTER_OFFSET + 10, TO_THIRD_OFFSET + 15];
        assert_eq!(hot, expected);
        write_beat_features(None, &mut out);
        assert_eq!(out.iter().sum::<f32>(), 1.0);
        assert_eq!(out[NO_BEAT_OFFSET], 1.0);
    }

    #[test]
    fn long_bars_late_beats_and_far_grid_points_share_the_last_index() {
        let p = BeatPosition::in_beat(1, 500, Some(11), Some(12));
        let mut out = [0.0f32; BEAT_SIZE];
        write_beat_features(Some(&p), &mut out);
        assert_eq!(out[BEAT_IN_BAR_OFFSET + BEAT_IN_BAR_SIZE - 1], 1.0);
        assert_eq!(out[METER_OFFSET + METER_SIZE - 1], 1.0);
        assert_eq!(out[TO_BEAT_OFFSET - 1], 1.0, "the longest period bucket");
        assert_eq!(out[TO_QUARTER_OFFSET - 1], 1.0, "499 steps to the beat");
        assert_eq!(out[TO_THIRD_OFFSET - 1], 1.0, "124 steps to the quarter");
        assert_eq!(out[BEAT_SIZE - 1], 1.0, "165 steps to the third");
        assert_eq!(out.iter().sum::<f32>(), 7.0);
    }

    #[test]
    fn annotations_parse_as_asap_writes_them_and_bad_lines_are_named() {
        let text = "1.095052\t1.095052\tb,,0\n2.364583\t2.364583\tb\n3.66276\t3.66276\tbR\n4.924479\t4.924479\tdb,4/4\n";
        let g = parse_annotations(text).unwrap();
        assert_eq!(
            g.beats().iter().map(|b| (b.step, b.downbeat)).collect::<Vec<_>>(),
            vec![(110, false), (236, false), (366, false), (492, true)]
        );
        assert!(parse_annotations("1.0\tb\n").unwrap_err().contains("line 1"));
        assert!(parse_annotations("x\tx\tb\n").unwrap_err().contains("not a number"));
        assert!(parse_annotations("1\t1\tq\n").unwrap_err().contains("label"));
        assert!(parse_annotations("NaN\tNaN\tb\n").is_err());
    }
}
