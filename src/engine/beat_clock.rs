//! The beat clock: the one place that turns the performance clock (10 ms steps) into beats and
//! bars, for the model, the plugin, the command line and clips.
//!
//! Tempo is in quarter notes per minute and song positions in quarter notes, as hosts and MIDI
//! files count them. A beat is what a pianist counts, as ASAP annotates it: the denominator's
//! note, except in compound meters (6/8, 9/8, 12/8, ...), where it is three of them.

use crate::codec::STEPS_PER_SECOND;
use crate::codec::beats::BeatPosition;

const STEPS_PER_MINUTE: f64 = 60.0 * STEPS_PER_SECOND;
/// Tempo changes the clock remembers ahead of the engine (older ones are forgotten).
const MAX_SEGMENTS: usize = 64;
/// Positions in a beat are told apart to 1 / this.
const BEAT_RESOLUTION: f64 = (1u32 << 24) as f64;

/// A time signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meter {
    pub numerator: u16,
    pub denominator: u16,
}

impl Meter {
    pub const FOUR_FOUR: Meter = Meter { numerator: 4, denominator: 4 };

    /// A meter a musician can write: numerator 1..=32, denominator a power of two 1..=32.
    pub fn new(numerator: u16, denominator: u16) -> Option<Meter> {
        let ok = (1..=32).contains(&numerator) && (1..=32).contains(&denominator) && denominator.is_power_of_two();
        ok.then_some(Meter { numerator, denominator })
    }

    /// "3/4" -> 3/4.
    pub fn parse(text: &str) -> Result<Meter, String> {
        let fail = || format!("`{text}` is not a meter such as 4/4, 3/4 or 6/8");
        let (n, d) = text.trim().split_once('/').ok_or_else(fail)?;
        Meter::new(n.trim().parse().map_err(|_| fail())?, d.trim().parse().map_err(|_| fail())?).ok_or_else(fail)
    }

    /// 6/8, 9/8, 12/8 (and /16): beats of three notes.
    fn compound(self) -> bool {
        self.denominator >= 8 && self.numerator > 3 && self.numerator.is_multiple_of(3)
    }

    /// Beats in a bar.
    pub fn beats_per_bar(self) -> u16 {
        if self.compound() { self.numerator / 3 } else { self.numerator }
    }

    /// The length of a beat in quarter notes.
    pub fn beat_quarters(self) -> f64 {
        4.0 / self.denominator as f64 * if self.compound() { 3.0 } else { 1.0 }
    }

    /// The length of a bar in quarter notes.
    pub fn bar_quarters(self) -> f64 {
        4.0 * self.numerator as f64 / self.denominator as f64
    }
}

impl std::fmt::Display for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

/// Where the song is at one moment of the performance clock, and how it goes on from there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SongPosition {
    /// The song position in quarter notes.
    pub quarters: f64,
    /// Where the bar containing it starts, in quarter notes.
    pub bar_start_quarters: f64,
    /// Quarter notes per minute.
    pub bpm: f64,
    pub meter: Meter,
}

impl SongPosition {
    /// The same song `seconds` earlier at this tempo.
    pub fn earlier(self, seconds: f64) -> SongPosition {
        SongPosition { quarters: self.quarters - seconds * self.bpm / 60.0, ..self }
    }

    /// The song position of the first beat at or after this one.
    pub fn next_beat_quarters(self) -> f64 {
        let beat = self.meter.beat_quarters();
        self.bar_start_quarters + ((self.quarters - self.bar_start_quarters) / beat - 1e-9).ceil() * beat
    }

    /// Seconds since its bar began, at this tempo.
    pub fn seconds_into_bar(self) -> f64 {
        (self.quarters - self.bar_start_quarters) * 60.0 / self.bpm
    }
}

/// What the song did at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SongChange {
    /// A new tempo or meter, the position unknown: the clock counts on from its own.
    Tempo { bpm: f64, meter: Meter },
    /// Where the song is, with its tempo and meter (the host's transport says).
    At(SongPosition),
}

/// Tempo, meter and bar lines from one step of the performance clock on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    step: f64,
    song: SongPosition,
}

impl Segment {
    fn quarters_at(&self, step: f64) -> f64 {
        self.song.quarters + (step - self.step) * self.song.bpm / STEPS_PER_MINUTE
    }

    fn step_of(&self, quarters: f64) -> f64 {
        self.step + (quarters - self.song.quarters) * STEPS_PER_MINUTE / self.song.bpm
    }

    /// Beats since the start of the bar of this segment's position, to 2^-24 of a beat: a song
    /// position that reached the same place by another sum (6.05 s - 6.0 s is not 0.05 s) is on
    /// the same side of every beat, so a take does not depend on where it began.
    fn beats_at(&self, step: f64) -> f64 {
        let beats = (self.quarters_at(step) - self.song.bar_start_quarters) / self.song.meter.beat_quarters();
        (beats * BEAT_RESOLUTION).round() / BEAT_RESOLUTION
    }

    /// Where in the beat `step` lies: 0 on a beat, up to 1 before the next.
    fn phase_at(&self, step: f64) -> f64 {
        self.beats_at(step).rem_euclid(1.0)
    }
}

/// The lowest and highest tempo the clock follows (quarter notes per minute).
pub const BPM_RANGE: std::ops::RangeInclusive<f64> = 20.0..=400.0;

/// The song's tempo, meter and bar lines on the performance clock.
#[derive(Debug, Clone, PartialEq)]
pub struct BeatClock {
    /// In step order; the first applies to everything before the second, too.
    segments: Vec<Segment>,
}

impl BeatClock {
    /// The song at `song` on step `step` of the performance clock (`bpm` clamped to [`BPM_RANGE`]).
    pub fn new(step: f64, song: SongPosition) -> BeatClock {
        let mut segments = Vec::with_capacity(MAX_SEGMENTS);
        segments.push(Segment { step, song: clamped(song) });
        BeatClock { segments }
    }

    /// `bpm` in `meter`, bar 1 starting at step 0.
    pub fn steady(bpm: f64, meter: Meter) -> BeatClock {
        BeatClock::new(0.0, SongPosition { quarters: 0.0, bar_start_quarters: 0.0, bpm, meter })
    }

    fn segment(&self, step: f64) -> &Segment {
        &self.segments[self.segment_index(step)]
    }

    fn segment_index(&self, step: f64) -> usize {
        self.segments.partition_point(|s| s.step <= step).saturating_sub(1)
    }

    /// What the model sees at `step`.
    pub fn position(&self, step: i64) -> BeatPosition {
        let segment = self.segment(step as f64);
        let beats = segment.beats_at(step as f64);
        let meter = segment.song.meter;
        let whole = beats.floor();
        let beat_in_bar = (whole as i64).rem_euclid(meter.beats_per_bar() as i64) as u16;
        // On the 10 ms grid, as annotated beats are: the beat began at a whole step.
        let period = STEPS_PER_MINUTE * meter.beat_quarters() / segment.song.bpm;
        let began = (step as f64 - (beats - whole) * period).round() as i64;
        BeatPosition::in_beat(step - began, period.round() as i64, Some(beat_in_bar), Some(meter.beats_per_bar()))
    }

    /// Where in the beat `step` lies: 0 on a beat, up to 1 before the next.
    pub fn phase(&self, step: i64) -> f64 {
        self.segment(step as f64).phase_at(step as f64)
    }

    /// [`BeatClock::phase`] for many steps near `near` (Tightness reads up to 100 a draw): the
    /// segment in force at `near` is looked up once, and only a step outside it is looked up on
    /// its own. The same phases as `phase`. Allocation-free.
    pub fn phases_near(&self, near: i64) -> impl Fn(i64) -> f64 + '_ {
        let i = self.segment_index(near as f64);
        // The steps `segment` finds this segment for: the first applies to everything before it.
        let from = if i == 0 { f64::NEG_INFINITY } else { self.segments[i].step };
        let until = self.segments.get(i + 1).map_or(f64::INFINITY, |next| next.step);
        let segment = self.segments[i];
        move |step| if (from..until).contains(&(step as f64)) { segment.phase_at(step as f64) } else { self.phase(step) }
    }

    /// Whether `step` lies within `reach` beats of a downbeat (on the same rounded count as
    /// [`BeatClock::position`], so a take does not depend on where it began).
    pub fn near_downbeat(&self, step: i64, reach: f64) -> bool {
        let segment = self.segment(step as f64);
        let per_bar = segment.song.meter.beats_per_bar() as f64;
        let in_bar = segment.beats_at(step as f64).rem_euclid(per_bar);
        in_bar <= reach || in_bar >= per_bar - reach
    }

    /// The length of the beat at `step` in steps.
    pub fn period_steps(&self, step: i64) -> f64 {
        let song = self.segment(step as f64).song;
        STEPS_PER_MINUTE * song.meter.beat_quarters() / song.bpm
    }

    /// The song position at `step`, with the tempo and meter in force there.
    pub fn song_at(&self, step: f64) -> SongPosition {
        let segment = self.segment(step);
        let quarters = segment.quarters_at(step);
        let bar = segment.song.meter.bar_quarters();
        let bars = ((quarters - segment.song.bar_start_quarters) / bar).floor();
        SongPosition { quarters, bar_start_quarters: segment.song.bar_start_quarters + bars * bar, ..segment.song }
    }

    /// The step at which the song reaches `quarters` (after `from`, in the segment in force there).
    pub fn step_of(&self, quarters: f64, from: f64) -> f64 {
        let mut segment = self.segment(from);
        for next in self.segments.iter().filter(|s| s.step > from) {
            if next.song.quarters > quarters {
                break;
            }
            segment = next;
        }
        segment.step_of(quarters)
    }

    /// From the first beat at or after `step` on, the clock follows `change`: a new tempo or
    /// meter (a new meter starts a bar there), and with a position, where the song is (the
    /// host's count corrects the clock's, which a tempo ramp would otherwise leave behind).
    /// Changes already scheduled after that beat are dropped.
    pub fn change(&mut self, step: f64, change: SongChange) {
        let now = self.song_at(step);
        let (at, song) = match change {
            SongChange::At(song) => {
                let song = clamped(song);
                let next = song.next_beat_quarters();
                (step + (next - song.quarters) * STEPS_PER_MINUTE / song.bpm, SongPosition { quarters: next, ..song })
            }
            SongChange::Tempo { bpm, meter } => {
                let new = clamped(SongPosition { bpm, meter, ..now });
                if (new.bpm, new.meter) == (now.bpm, now.meter) {
                    return;
                }
                let next = now.next_beat_quarters();
                let bar_start = if meter == now.meter { now.bar_start_quarters } else { next };
                (self.segment(step).step_of(next), SongPosition { quarters: next, bar_start_quarters: bar_start, ..new })
            }
        };
        self.schedule(Segment { step: at, song });
    }

    /// The song jumps (a loop, a relocation): at `step` it is at `song`.
    pub fn locate(&mut self, step: f64, song: SongPosition) {
        self.schedule(Segment { step, song: clamped(song) });
    }

    fn schedule(&mut self, segment: Segment) {
        self.segments.retain(|s| s.step < segment.step);
        if self.segments.len() == MAX_SEGMENTS {
            self.segments.remove(0);
        }
        self.segments.push(segment);
    }

    /// Forgets the changes before the one in force at `step` (the engine has passed them).
    pub fn forget_before(&mut self, step: f64) {
        let i = self.segments.partition_point(|s| s.step <= step).saturating_sub(1);
        self.segments.drain(..i);
    }
}

fn clamped(song: SongPosition) -> SongPosition {
    let bpm = if song.bpm.is_finite() { song.bpm.clamp(*BPM_RANGE.start(), *BPM_RANGE.end()) } else { 120.0 };
    SongPosition { bpm, ..song }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(n: u16, d: u16) -> Meter {
        Meter::new(n, d).unwrap()
    }

    #[test]
    fn meters_count_beats_as_pianists_do() {
        assert_eq!((meter(4, 4).beats_per_bar(), meter(4, 4).beat_quarters()), (4, 1.0));
        assert_eq!((meter(3, 4).beats_per_bar(), meter(3, 4).beat_quarters()), (3, 1.0));
        assert_eq!((meter(6, 8).beats_per_bar(), meter(6, 8).beat_quarters()), (2, 1.5));
        assert_eq!((meter(12, 8).beats_per_bar(), meter(12, 8).bar_quarters()), (4, 6.0));
        assert_eq!((meter(3, 8).beats_per_bar(), meter(2, 2).beat_quarters()), (3, 2.0));
        assert_eq!(Meter::parse(" 3/4").unwrap(), meter(3, 4));
        for bad in ["3", "3/5", "0/4", "x/4", "33/4", "4/64"] {
            assert!(Meter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_steady_tempo_puts_beats_and_bars_where_the_song_has_them() {
        let clock = BeatClock::steady(120.0, meter(3, 4)); // a beat = 50 steps
        let at = |step| clock.position(step);
        assert_eq!(at(0), BeatPosition::in_beat(0, 50, Some(0), Some(3)));
        assert_eq!((at(30).to_beat, at(30).to_quarter, at(30).to_third), (20, 7, 3));
        assert_eq!(at(25).phase_bin, 12);
        assert_eq!(at(49).phase_bin, 23);
        assert_eq!((at(50).phase_bin, at(50).beat_in_bar), (0, Some(1)));
        assert_eq!(at(150).beat_in_bar, Some(0), "bar 2");
        assert_eq!(at(-50).beat_in_bar, Some(2), "before bar 1: the bar before it");
        let six_eight = BeatClock::steady(90.0, meter(6, 8)); // a dotted quarter = 100 steps
        assert_eq!(six_eight.position(100), BeatPosition::in_beat(0, 100, Some(1), Some(2)));
        assert_eq!(clock.song_at(175.0).bar_start_quarters, 3.0);
        assert!((clock.step_of(7.0, 0.0) - 350.0).abs() < 1e-9);
        // Phases, beat lengths and downbeats (bars of 150 steps), for Tightness.
        assert_eq!((clock.phase(75), clock.phase(150), clock.period_steps(75)), (0.5, 0.0, 50.0));
        assert!(clock.near_downbeat(152, 0.08) && clock.near_downbeat(147, 0.08), "within 4 steps of bar 2");
        assert!(!clock.near_downbeat(155, 0.08) && !clock.near_downbeat(50, 0.08), "not a downbeat");
        assert!((six_eight.phase(150) - 0.5).abs() < 1e-9 && six_eight.near_downbeat(200, 0.08));
    }

    #[test]
    fn the_same_song_position_reached_by_another_sum_gives_the_same_positions() {
        // Where a take begins at clock 6.05 s with the song at 0 at 6.0 s: (6.05 - 6.0) * 2.
        let song = |quarters| SongPosition { quarters, bar_start_quarters: 0.0, bpm: 120.0, meter: Meter::FOUR_FOUR };
        let (a, b) = (BeatClock::new(0.0, song(0.1)), BeatClock::new(0.0, song((6.05 - 6.0) * 2.0)));
        assert_ne!(0.1, (6.05 - 6.0) * 2.0);
        assert!((0..1000).all(|step| a.position(step) == b.position(step)));
        // So do Tightness's phase and downbeats: at 120 BPM 0.08 beat is exactly 4 steps, where
        // the unrounded sums fall on either side.
        assert!((0..1000).all(|step| a.phase(step) == b.phase(step) && a.near_downbeat(step, 0.08) == b.near_downbeat(step, 0.08)));
        assert_eq!(
            (0..1000).filter(|&step| a.near_downbeat(step, 0.08)).count(),
            5 * 9,
            "steps -4..=4 around the downbeats at 195, 395, ..., 995"
        );
    }

    #[test]
    fn a_tempo_change_takes_effect_from_the_next_beat() {
        let mut clock = BeatClock::steady(120.0, Meter::FOUR_FOUR);
        clock.change(60.0, SongChange::Tempo { bpm: 60.0, meter: Meter::FOUR_FOUR }); // asked mid-beat 2: from beat 3 (step 100) on
        assert_eq!(clock.position(99).period_steps, 50);
        assert_eq!(clock.position(100), BeatPosition::in_beat(0, 100, Some(2), Some(4)));
        assert_eq!(clock.position(150).phase_bin, 12);
        assert_eq!(clock.position(300).beat_in_bar, Some(0), "bar 2 begins after two slow beats");
        assert!((clock.step_of(4.0, 0.0) - 300.0).abs() < 1e-9);
        // The same tempo again changes nothing; a new meter starts a bar at the next beat.
        clock.change(310.0, SongChange::Tempo { bpm: 60.0, meter: Meter::FOUR_FOUR });
        assert_eq!(clock.segments.len(), 2);
        clock.change(310.0, SongChange::Tempo { bpm: 60.0, meter: meter(3, 4) });
        assert_eq!(clock.position(400).beat_in_bar, Some(0));
        assert_eq!(clock.position(700).beat_in_bar, Some(0));
        assert_eq!(clock.position(600).beats_per_bar, Some(3));
    }

    #[test]
    fn the_hosts_position_corrects_the_clock_from_the_next_beat() {
        // The clock runs at 120 (a beat = 50 steps); the host says that at step 60 it is already
        // at quarter 1.5 at 90 BPM: from the host's next beat (quarter 2, 33.3 steps later) on.
        let mut clock = BeatClock::steady(120.0, Meter::FOUR_FOUR);
        let host = SongPosition { quarters: 1.5, bar_start_quarters: 0.0, bpm: 90.0, meter: Meter::FOUR_FOUR };
        clock.change(60.0, SongChange::At(host));
        assert_eq!(clock.position(93).period_steps, 50, "the old beat until the host's next one");
        assert_eq!(clock.position(94), BeatPosition::in_beat(1, 67, Some(2), Some(4)));
        assert!((clock.song_at(60.0 + 100.0 / 3.0 + 200.0 / 3.0).quarters - 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_jump_or_a_loop_starts_from_the_new_position() {
        let mut clock = BeatClock::steady(120.0, Meter::FOUR_FOUR);
        clock.change(500.0, SongChange::Tempo { bpm: 90.0, meter: Meter::FOUR_FOUR });
        // The loop goes back to bar 3 (quarter 8) at step 400; the later change is dropped.
        clock.locate(400.0, SongPosition { quarters: 8.0, bar_start_quarters: 8.0, bpm: 120.0, meter: Meter::FOUR_FOUR });
        assert_eq!(clock.segments.len(), 2);
        assert_eq!(clock.position(400).beat_in_bar, Some(0));
        assert_eq!(clock.position(650).period_steps, 50);
        assert_eq!(clock.song_at(425.0).quarters, 8.5);
        clock.forget_before(450.0);
        assert_eq!(clock.segments.len(), 1);
        assert_eq!(clock.position(450).beat_in_bar, Some(1));
    }

    #[test]
    fn phases_near_a_step_are_the_phases_of_each_step() {
        let mut clock = BeatClock::steady(120.0, Meter::FOUR_FOUR);
        clock.change(60.0, SongChange::Tempo { bpm: 77.0, meter: meter(3, 4) });
        clock.locate(333.0, SongPosition { quarters: 8.3, bar_start_quarters: 8.0, bpm: 131.0, meter: Meter::FOUR_FOUR });
        for near in [-120, -1, 0, 37, 99, 100, 250, 332, 333, 400] {
            let phases = clock.phases_near(near);
            assert!((near - 150..near + 150).all(|step| phases(step).to_bits() == clock.phase(step).to_bits()), "near {near}");
        }
    }

    #[test]
    fn tempos_are_kept_in_range_and_changes_stay_bounded() {
        let mut clock = BeatClock::steady(f64::NAN, Meter::FOUR_FOUR);
        assert_eq!(clock.song_at(0.0).bpm, 120.0);
        clock.locate(0.0, SongPosition { quarters: 0.0, bar_start_quarters: 0.0, bpm: 1e9, meter: Meter::FOUR_FOUR });
        assert_eq!(clock.song_at(0.0).bpm, 400.0);
        for k in 0..1000 {
            clock.change(k as f64 * 100.0, SongChange::Tempo { bpm: 60.0 + (k % 7) as f64, meter: Meter::FOUR_FOUR });
        }
        assert!(clock.segments.len() <= MAX_SEGMENTS);
        assert!(clock.segments.capacity() <= MAX_SEGMENTS, "no growth past the first allocation");
    }
}
