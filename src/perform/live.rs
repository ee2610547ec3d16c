//! A part performed as it is heard (the plugin's Perform my part, while the transport runs): the
//! track's notes arrive one by one, and each chord is performed once the model has heard
//! [`LOOK_AHEAD`] of the part after it. The result is played [`LATENCY`] after the part, which
//! the plugin reports to the host as latency, so the DAW lines it up with the other tracks.
//!
//! Live, the song's grid rules: the performance keeps the part's tempo (no rubato), and each
//! onset and release moves at most [`MAX_DEVIATION`] from where it is written. Velocity, chord
//! spread, onset timing, articulation and pedalling are the model's, as in [`super::render`].
//!
//! What is decided depends only on the notes' times, never on when they were heard: a chord
//! sees the notes that begin up to [`LOOK_AHEAD`] after it and the releases heard by then. So
//! a part performs the same in real time, offline or faster, for any block size.

use super::align::TARGET_COUNT;
use super::features::{FEATURE_COUNT, features};
use super::render::{CHORD_ORDER_GAP, PEDAL_CATCH, PEDAL_THRESHOLD, RELEASE_GAP, RenderOptions, SHORTEST_NOTE, render_notes};
use super::score::{Score, ScoreNote};
use crate::codec::{Note, PedalChange, Performance, Pitch};
use crate::engine::Meter;

/// How much of the part after a chord the model hears before performing it (seconds).
pub const LOOK_AHEAD: f64 = 1.0;
/// The most an onset or a release moves from where the part has it (seconds).
pub const MAX_DEVIATION: f64 = 0.1;
/// No event is played more than this before the part's note it belongs to (seconds).
pub const EARLIEST: f64 = MAX_DEVIATION + RELEASE_GAP;
/// Room for a host's buffer and the model's time between hearing a note and playing it.
const REAL_TIME_SLACK: f64 = 0.2;
/// How long after the part its performance plays: the look-ahead, room to play early, and the
/// real-time slack.
pub const LATENCY: f64 = LOOK_AHEAD + EARLIEST + REAL_TIME_SLACK;
/// The notes before a chord that the model hears with it.
const CONTEXT_NOTES: usize = 400;
/// The column of `piece_position` among the features.
const PIECE_POSITION: usize = 17;
/// Written onsets this close (quarter notes) are one chord.
const CHORD_TOLERANCE: f64 = 1e-3;

/// What the performance plays, at a time of the part's clock (add [`LATENCY`] to play it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LiveEvent {
    NoteOn { key: u8, velocity: u8 },
    NoteOff { key: u8 },
    Pedal { down: bool },
}

/// A note of the part: its key, written velocity, onset (clock seconds, song quarter notes),
/// and release once heard.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HeardNote {
    key: Pitch,
    velocity: u8,
    on: f64,
    quarters: f64,
    off: Option<(f64, f64)>,
}

/// A played note waiting for its release: its performed onset, its onset in the part, and how
/// much longer than written the model plays it.
#[derive(Debug, Clone, Copy)]
struct Sounding {
    played_on: f64,
    heard_on: f64,
    stretch: f64,
}

/// The model's answer for a window of the score: one row per note.
pub type Outputs = Vec<[f32; TARGET_COUNT]>;

/// Performs a part as it is heard.
pub struct LivePerformer {
    bpm: f64,
    meter: Meter,
    options: RenderOptions,
    notes: Vec<HeardNote>,
    /// The first note whose chord is not performed yet.
    next: usize,
    chords_done: u64,
    last_onset: f64,
    pedal_down: bool,
    /// When the pedal was last pressed (it is lifted after that).
    pedal_pressed: f64,
    sounding: [Option<Sounding>; 128],
    /// Releases heard for keys that sound, by clock time (in arrival order).
    releases: Vec<(f64, u8)>,
}

impl LivePerformer {
    /// A part in `bpm` (quarter notes per minute) and `meter`; `options` as for a whole score.
    pub fn new(bpm: f64, meter: Meter, options: RenderOptions) -> LivePerformer {
        LivePerformer {
            bpm: bpm.max(1.0),
            meter,
            options,
            notes: Vec::new(),
            next: 0,
            chords_done: 0,
            last_onset: f64::NEG_INFINITY,
            pedal_down: false,
            pedal_pressed: f64::NEG_INFINITY,
            sounding: [None; 128],
            releases: Vec::new(),
        }
    }

    /// A note of the part begins at clock second `at`, song quarter note `quarters`.
    pub fn note_on(&mut self, at: f64, quarters: f64, key: u8, velocity: u8) {
        if let Some(key) = Pitch::new(key) {
            self.notes.push(HeardNote { key, velocity, on: at, quarters, off: None });
        }
    }

    /// A note of the part ends.
    pub fn note_off(&mut self, at: f64, quarters: f64, key: u8) {
        if let Some(note) = self.notes.iter_mut().rev().find(|n| n.key.midi() == key && n.off.is_none()) {
            note.off = Some((at.max(note.on), quarters.max(note.quarters)));
            self.releases.push((at.max(note.on), key));
        }
    }

    /// Performs what the part, heard before clock second `heard_until` (every note that begins
    /// or ends before it has been given), decides: the chords that begin more than
    /// [`LOOK_AHEAD`] before it and the releases up to then. `run` is the model. Events go to
    /// `out` in the part's clock, in time order per key.
    pub fn decide(
        &mut self,
        heard_until: f64,
        run: &mut impl FnMut(&[[f32; FEATURE_COUNT]]) -> Result<Outputs, String>,
        out: &mut Vec<(f64, LiveEvent)>,
    ) -> Result<(), String> {
        let until = heard_until - LOOK_AHEAD;
        loop {
            let chord_at = self.notes.get(self.next).map(|n| n.on).filter(|&t| t < until);
            let release = self
                .releases
                .iter()
                .enumerate()
                .filter(|(_, r)| r.0 < until)
                .min_by(|a, b| a.1.0.total_cmp(&b.1.0).then(a.1.1.cmp(&b.1.1)));
            match (chord_at, release.map(|(i, r)| (i, *r))) {
                // A key released where it is struck again is released by the strike.
                (Some(t), Some((i, (at, key)))) if at < t => self.release(i, at, key, out),
                (Some(_), _) => self.perform_chord(run, out)?,
                (None, Some((i, (at, key)))) => self.release(i, at, key, out),
                (None, None) => break,
            }
        }
        self.forget();
        Ok(())
    }

    /// Everything the performance plays before this time of the part's clock is decided once
    /// the part is heard before `heard_until`: no later decision plays earlier.
    pub fn decided_until(heard_until: f64) -> f64 {
        heard_until - LOOK_AHEAD - EARLIEST
    }

    /// Performs the chord at `self.next` with the model over its window of the part.
    fn perform_chord(
        &mut self,
        run: &mut impl FnMut(&[[f32; FEATURE_COUNT]]) -> Result<Outputs, String>,
        out: &mut Vec<(f64, LiveEvent)>,
    ) -> Result<(), String> {
        let first = self.notes[self.next];
        let members = self.notes[self.next..].iter().take_while(|n| (n.quarters - first.quarters).abs() < CHORD_TOLERANCE).count();
        let (score, order) = self.window(first.on + LOOK_AHEAD);
        let mut rows = features(&score);
        // Where the part is in its piece is unknown while it plays: the middle.
        rows.iter_mut().for_each(|r| r[PIECE_POSITION] = 0.5);
        let mut outputs = run(&rows)?;
        // Live the part's tempo rules: no local tempo.
        outputs.iter_mut().for_each(|o| o[1] = 0.0);
        let seed = self.options.seed ^ self.chords_done.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let (_, laid) = render_notes(&score, &outputs, RenderOptions { seed, ..self.options });
        let mut onsets: Vec<(f64, Note, usize, f64)> = Vec::with_capacity(members);
        for member in self.next..self.next + members {
            // Every note of the chord begins within the window (before its horizon).
            let Some(w) = order.iter().position(|&o| o == member) else { continue };
            let written = score.seconds_at(score.notes[w].start);
            let deviation = (laid[w].start - written).clamp(-MAX_DEVIATION, MAX_DEVIATION);
            onsets.push((self.notes[member].on + deviation, laid[w], w, self.notes[member].on));
        }
        onsets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let pedal = onsets.iter().any(|&(_, _, w, _)| outputs[w][4] >= PEDAL_THRESHOLD);
        let mut chord_first = f64::INFINITY;
        for (at, laid_note, w, heard_on) in onsets {
            let at = at.max(self.last_onset + CHORD_ORDER_GAP);
            chord_first = chord_first.min(at);
            self.strike(at, laid_note, score.notes[w], heard_on, out);
        }
        let next_chord = self.notes.get(self.next + members).map_or(f64::INFINITY, |n| n.on);
        self.pedal_at_chord(chord_first, next_chord, pedal, out);
        self.next += members;
        self.chords_done += 1;
        Ok(())
    }

    /// Plays one note of a chord: a key still sounding is released just before.
    fn strike(&mut self, at: f64, laid: Note, written: ScoreNote, heard_on: f64, out: &mut Vec<(f64, LiveEvent)>) {
        let key = written.pitch.midi();
        if let Some(sounding) = self.sounding[key as usize].take() {
            out.push(((at - RELEASE_GAP).max(sounding.played_on), LiveEvent::NoteOff { key }));
            self.releases.retain(|&(t, k)| k != key || t > heard_on);
        }
        let written_seconds = ((written.end - written.start) * 60.0 / self.bpm).max(SHORTEST_NOTE);
        let stretch = (laid.end - laid.start) / written_seconds;
        self.sounding[key as usize] = Some(Sounding { played_on: at, heard_on, stretch });
        out.push((at, LiveEvent::NoteOn { key, velocity: laid.velocity }));
        self.last_onset = self.last_onset.max(at);
    }

    /// The model's pedal at a chord: changed (legato) where it pedals, lifted where it does not.
    fn pedal_at_chord(&mut self, at: f64, next_chord: f64, pedal: bool, out: &mut Vec<(f64, LiveEvent)>) {
        if self.pedal_down {
            out.push((at.max(self.pedal_pressed + RELEASE_GAP), LiveEvent::Pedal { down: false }));
            self.pedal_down = false;
        }
        if pedal {
            self.pedal_pressed = at + PEDAL_CATCH.min((next_chord - at).max(0.0) / 2.0);
            out.push((self.pedal_pressed, LiveEvent::Pedal { down: true }));
            self.pedal_down = true;
        }
    }

    /// The release `releases[index]` (clock `at`) of `key`, as articulated by the model; the
    /// pedal lifts after the last sounding note when the part rests.
    fn release(&mut self, index: usize, at: f64, key: u8, out: &mut Vec<(f64, LiveEvent)>) {
        self.releases.remove(index);
        let Some(sounding) = self.sounding[key as usize].take() else { return };
        let played = sounding.played_on + (at - sounding.heard_on) * sounding.stretch;
        // Before the key is struck again (heard: it begins within the look-ahead, or never).
        let again = self.notes[self.next..].iter().find(|n| n.key.midi() == key && n.on >= at && n.on <= at + LOOK_AHEAD);
        let latest = again.map_or(f64::INFINITY, |n| n.on - MAX_DEVIATION - RELEASE_GAP);
        let end = played.clamp(at - MAX_DEVIATION, at + MAX_DEVIATION).min(latest).max(sounding.played_on + RELEASE_GAP);
        out.push((end, LiveEvent::NoteOff { key }));
        let rests = self.notes.get(self.next).is_none_or(|n| n.on > at + LOOK_AHEAD);
        if self.pedal_down && rests && self.sounding.iter().all(Option::is_none) {
            out.push((end.max(self.pedal_pressed + RELEASE_GAP), LiveEvent::Pedal { down: false }));
            self.pedal_down = false;
        }
    }

    /// The part around the chord at `self.next` as a score: up to [`CONTEXT_NOTES`] before it and
    /// what begins up to `horizon`, with releases heard by then (else held to there); and, per
    /// score note, its index in `self.notes`.
    fn window(&self, horizon: f64) -> (Score, Vec<usize>) {
        let from = self.next.saturating_sub(CONTEXT_NOTES);
        let to = self.next + self.notes[self.next..].iter().take_while(|n| n.on <= horizon).count();
        let horizon_quarters = |n: &HeardNote| n.quarters + (horizon - n.on) * self.bpm / 60.0;
        let mut order: Vec<usize> = (from..to).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&self.notes[a], &self.notes[b]);
            a.quarters.total_cmp(&b.quarters).then(a.key.cmp(&b.key))
        });
        let mut notes: Vec<ScoreNote> = Vec::with_capacity(order.len());
        for &i in &order {
            let n = &self.notes[i];
            let end = n.off.filter(|o| o.0 <= horizon).map_or_else(|| horizon_quarters(n), |o| o.1);
            // One written onset per chord, as a score has it.
            let start = notes.last().filter(|p| (n.quarters - p.start).abs() < CHORD_TOLERANCE).map_or(n.quarters, |p| p.start);
            notes.push(ScoreNote { pitch: n.key, velocity: n.velocity, start, end: end.max(start) });
        }
        let score = Score { notes, tempos: vec![(0.0, self.bpm)], meters: vec![(0.0, self.meter)], notices: Vec::new() };
        (score, order)
    }

    /// Drops notes no window will see again (bounded memory over a long part).
    fn forget(&mut self) {
        let drop = self.next.saturating_sub(CONTEXT_NOTES);
        if drop > 256 {
            self.notes.drain(..drop);
            self.next -= drop;
        }
    }
}

/// A whole score performed as [`LivePerformer`] would hear it (played on its own tempo map),
/// for measuring what the live look-ahead costs against the whole-score performance; with the
/// performed note of each score note, in the score's order.
pub fn perform_as_heard(
    score: &Score,
    run: &mut impl FnMut(&[[f32; FEATURE_COUNT]]) -> Result<Outputs, String>,
    options: RenderOptions,
) -> Result<(Performance, Vec<Note>), String> {
    let bpm = score.tempos.first().map_or(120.0, |t| t.1);
    let meter = score.meters.first().map_or(Meter::FOUR_FOUR, |m| m.1);
    let mut live = LivePerformer::new(bpm, meter, options);
    let mut heard: Vec<(f64, bool, usize)> = Vec::new();
    for (i, n) in score.notes.iter().enumerate() {
        heard.push((score.seconds_at(n.start), true, i));
        heard.push((score.seconds_at(n.end), false, i));
    }
    heard.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut events = Vec::new();
    for (at, on, i) in heard {
        let n = score.notes[i];
        if on {
            live.note_on(at, n.start, n.pitch.midi(), n.velocity);
        } else {
            live.note_off(at, n.end, n.pitch.midi());
        }
        live.decide(at, run, &mut events)?;
    }
    live.decide(f64::INFINITY, run, &mut events)?;
    let performance = performance_of(&events);
    // The k-th note of a key in the score is the k-th played on it.
    let mut by_key: Vec<std::collections::VecDeque<Note>> = vec![Default::default(); 128];
    for note in &performance.notes {
        by_key[note.pitch as usize].push_back(*note);
    }
    let laid = score
        .notes
        .iter()
        .map(|n| by_key[n.pitch.midi() as usize].pop_front().ok_or("a score note was not played"))
        .collect::<Result<_, _>>()?;
    Ok((performance, laid))
}

/// The notes and pedal of live events.
pub fn performance_of(events: &[(f64, LiveEvent)]) -> Performance {
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut open: [Option<(f64, u8)>; 128] = [None; 128];
    let (mut notes, mut pedal) = (Vec::new(), Vec::new());
    for (at, event) in sorted {
        match event {
            LiveEvent::NoteOn { key, velocity } => open[key as usize] = Some((at, velocity)),
            LiveEvent::NoteOff { key } => {
                if let Some((start, velocity)) = open[key as usize].take() {
                    notes.push(Note { pitch: key, velocity, start, end: at });
                }
            }
            LiveEvent::Pedal { down } => pedal.push(PedalChange { time: at, down }),
        }
    }
    notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
    let duration = notes.iter().map(|n| n.end).fold(0.0, f64::max) + 0.5;
    Performance { notes, pedal, duration }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the model: louder when higher, onsets a little late on high keys, the
    /// pedal at every other note; reads nothing but the window's length and pitches.
    fn model(windows: &mut Vec<usize>) -> impl FnMut(&[[f32; FEATURE_COUNT]]) -> Result<Outputs, String> + '_ {
        move |rows| {
            windows.push(rows.len());
            Ok(rows.iter().enumerate().map(|(i, r)| [50.0 + 30.0 * r[0], 0.3, 0.05 * r[0], -0.2, (i % 2) as f32]).collect())
        }
    }

    /// A part at 120 BPM: (quarter, key, length in quarters); a chord is notes at one quarter.
    fn part(notes: &[(f64, u8, f64)]) -> Vec<(f64, bool, f64, u8)> {
        let mut events: Vec<(f64, bool, f64, u8)> = Vec::new();
        for &(q, key, length) in notes {
            events.push((q * 0.5, true, q, key));
            events.push(((q + length) * 0.5, false, q + length, key));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        events
    }

    fn options() -> RenderOptions {
        RenderOptions { temperature: 0.5, seed: 7 }
    }

    /// Feeds the part, deciding after each event as far as `heard` says it is heard.
    fn perform(events: &[(f64, bool, f64, u8)], heard: impl Fn(f64) -> f64) -> Vec<(f64, LiveEvent)> {
        let mut live = LivePerformer::new(120.0, Meter::FOUR_FOUR, options());
        let (mut windows, mut out) = (Vec::new(), Vec::new());
        let mut run = model(&mut windows);
        for &(at, on, quarters, key) in events {
            if on {
                live.note_on(at, quarters, key, 100);
            } else {
                live.note_off(at, quarters, key);
            }
            live.decide(heard(at), &mut run, &mut out).unwrap();
        }
        live.decide(f64::INFINITY, &mut run, &mut out).unwrap();
        out
    }

    fn scale_with_chords() -> Vec<(f64, u8, f64)> {
        let mut notes: Vec<(f64, u8, f64)> = (0..32).map(|i| (i as f64 * 0.5, 60 + (i % 12) as u8, 0.5)).collect();
        notes.extend((0..8).flat_map(|bar| [48, 52, 55].map(|k| (bar as f64 * 2.0, k, 2.0))));
        notes
    }

    #[test]
    fn every_note_is_played_once_near_where_it_is_written() {
        let notes = scale_with_chords();
        let played = performance_of(&perform(&part(&notes), |t| t));
        assert_eq!(played.notes.len(), notes.len());
        let mut written: Vec<(f64, u8, f64)> = notes.iter().map(|&(q, k, l)| (q * 0.5, k, (q + l) * 0.5)).collect();
        written.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for w in &written {
            let n = played.notes.iter().find(|n| n.pitch == w.1 && (n.start - w.0).abs() <= MAX_DEVIATION + 3.0 * CHORD_ORDER_GAP);
            let n = n.unwrap_or_else(|| panic!("{w:?} not played within {MAX_DEVIATION} s"));
            assert!((n.end - w.2).abs() <= MAX_DEVIATION + 1e-9 && n.end > n.start, "{n:?} released far from {w:?}");
        }
        // Louder when higher (the stand-in's rule), not flat.
        let velocity = |k| played.notes.iter().find(|n| n.pitch == k).unwrap().velocity;
        assert!(velocity(71) > velocity(48), "{} vs {}", velocity(71), velocity(48));
        // A chord's notes are spread, and every pedal press is lifted.
        let first_chord: Vec<f64> =
            played.notes.iter().filter(|n| [48, 52, 55].contains(&n.pitch) && n.start < 0.5).map(|n| n.start).collect();
        assert_eq!(first_chord.len(), 3);
        assert!(first_chord.windows(2).all(|w| w[1] > w[0]), "{first_chord:?}");
        assert!(!played.pedal.is_empty() && !played.pedal.last().unwrap().down);
    }

    #[test]
    fn what_is_played_does_not_depend_on_when_it_was_heard() {
        let events = part(&scale_with_chords());
        let as_it_comes = perform(&events, |t| t);
        let in_blocks = perform(&events, |t| (t / 0.37).floor() * 0.37);
        let all_at_the_end = perform(&events, |_| f64::NEG_INFINITY);
        let first_difference = |a: &[(f64, LiveEvent)], b: &[(f64, LiveEvent)]| a.iter().zip(b).position(|(x, y)| x != y);
        if let Some(i) = first_difference(&as_it_comes, &in_blocks) {
            panic!("{:?}\n{:?}", &as_it_comes[i.saturating_sub(3)..i + 3], &in_blocks[i.saturating_sub(3)..i + 3]);
        }
        assert_eq!(first_difference(&as_it_comes, &all_at_the_end), None);
        assert_eq!((as_it_comes.len(), in_blocks.len()), (all_at_the_end.len(), all_at_the_end.len()));
    }

    #[test]
    fn a_chord_hears_the_part_up_to_the_look_ahead_only() {
        let notes = scale_with_chords();
        let mut longer = notes.clone();
        longer.extend([(40.0, 90, 1.0), (41.0, 30, 1.0)]); // 20 s later
        let before =
            |out: Vec<(f64, LiveEvent)>| out.into_iter().filter(|e| e.0 < 16.0 - LOOK_AHEAD - 2.0 * MAX_DEVIATION).collect::<Vec<_>>();
        assert_eq!(before(perform(&part(&notes), |t| t)), before(perform(&part(&longer), |t| t)));
        // And nothing is decided before the part is heard a look-ahead past it.
        let mut live = LivePerformer::new(120.0, Meter::FOUR_FOUR, options());
        let (mut windows, mut out) = (Vec::new(), Vec::new());
        live.note_on(0.0, 0.0, 60, 100);
        live.decide(LOOK_AHEAD, &mut model(&mut windows), &mut out).unwrap();
        assert!(out.is_empty());
        live.decide(LOOK_AHEAD + 0.001, &mut model(&mut windows), &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn nothing_decided_later_plays_before_what_was_decided() {
        let events = part(&scale_with_chords());
        let mut live = LivePerformer::new(120.0, Meter::FOUR_FOUR, options());
        let (mut windows, mut out) = (Vec::new(), Vec::new());
        let mut run = model(&mut windows);
        let mut decided = f64::NEG_INFINITY;
        for &(at, on, quarters, key) in &events {
            if on {
                live.note_on(at, quarters, key, 100);
            } else {
                live.note_off(at, quarters, key);
            }
            let before = out.len();
            live.decide(at, &mut run, &mut out).unwrap();
            assert!(out[before..].iter().all(|e| e.0 >= decided), "an event before {decided} came after it was decided");
            decided = LivePerformer::decided_until(at);
        }
    }

    #[test]
    fn a_long_part_keeps_a_bounded_memory() {
        let notes: Vec<(f64, u8, f64)> = (0..3000).map(|i| (i as f64 * 0.25, 40 + (i % 40) as u8, 0.25)).collect();
        let mut live = LivePerformer::new(120.0, Meter::FOUR_FOUR, options());
        let (mut windows, mut out) = (Vec::new(), Vec::new());
        let mut run = model(&mut windows);
        for (at, on, quarters, key) in part(&notes) {
            if on {
                live.note_on(at, quarters, key, 100);
            } else {
                live.note_off(at, quarters, key);
            }
            live.decide(at, &mut run, &mut out).unwrap();
            assert!(live.notes.len() <= CONTEXT_NOTES + 256 + 16, "{} notes kept", live.notes.len());
        }
        drop(run);
        assert!(windows.iter().all(|&w| w <= CONTEXT_NOTES + 16), "windows up to {:?}", windows.iter().max());
    }
}
