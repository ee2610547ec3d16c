//! The performance event language: 310 events shared by the dataset builder, the trainer,
//! the model file and the plugin. This module is the single source of truth for it.
//!
//! A [`Performance`] (notes and sustain-pedal changes with times in seconds) is encoded into
//! a sequence of [`Event`]s and decoded back. See `docs/events.md` for the written spec.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The fixed, versioned event vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vocabulary {
    pub version: u32,
    pub size: u16,
    pub note_on_offset: u16,
    pub note_off_offset: u16,
    pub time_shift_offset: u16,
    pub velocity_offset: u16,
    pub pedal_down: u16,
    pub pedal_up: u16,
    pub min_pitch: u8,
    pub max_pitch: u8,
    pub time_step_ms: u32,
    pub max_shift_steps: u8,
    pub velocity_bins: u8,
}

pub const MIN_PITCH: u8 = 21;
pub const MAX_PITCH: u8 = 108;
pub const PITCHES: u16 = (MAX_PITCH - MIN_PITCH + 1) as u16; // 88
/// One time step is 10 ms; a TIME_SHIFT moves 1..=100 steps.
pub const STEPS_PER_SECOND: f64 = 100.0;
pub const MAX_SHIFT_STEPS: u8 = 100;
pub const VELOCITY_BINS: u8 = 32;

/// Version 1 of the vocabulary: ids are contiguous in this order.
pub const VOCABULARY: Vocabulary = Vocabulary {
    version: 1,
    size: 310,
    note_on_offset: 0,
    note_off_offset: PITCHES,
    time_shift_offset: 2 * PITCHES,
    velocity_offset: 2 * PITCHES + MAX_SHIFT_STEPS as u16,
    pedal_down: 2 * PITCHES + MAX_SHIFT_STEPS as u16 + VELOCITY_BINS as u16,
    pedal_up: 2 * PITCHES + MAX_SHIFT_STEPS as u16 + VELOCITY_BINS as u16 + 1,
    min_pitch: MIN_PITCH,
    max_pitch: MAX_PITCH,
    time_step_ms: 10,
    max_shift_steps: MAX_SHIFT_STEPS,
    velocity_bins: VELOCITY_BINS,
};

/// One event of the performance language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A key goes down (MIDI pitch 21..=108).
    NoteOn(u8),
    /// A key comes up (MIDI pitch 21..=108).
    NoteOff(u8),
    /// Time moves on by 1..=100 steps of 10 ms.
    TimeShift(u8),
    /// The velocity bin (0..32) for the following NOTE_ONs.
    Velocity(u8),
    PedalDown,
    PedalUp,
}

impl Event {
    pub fn id(self) -> u16 {
        let v = &VOCABULARY;
        match self {
            Event::NoteOn(p) => v.note_on_offset + (p - MIN_PITCH) as u16,
            Event::NoteOff(p) => v.note_off_offset + (p - MIN_PITCH) as u16,
            Event::TimeShift(s) => v.time_shift_offset + (s - 1) as u16,
            Event::Velocity(b) => v.velocity_offset + b as u16,
            Event::PedalDown => v.pedal_down,
            Event::PedalUp => v.pedal_up,
        }
    }

    pub fn from_id(id: u16) -> Option<Event> {
        let v = &VOCABULARY;
        Some(match id {
            _ if id < v.note_off_offset => Event::NoteOn(MIN_PITCH + id as u8),
            _ if id < v.time_shift_offset => Event::NoteOff(MIN_PITCH + (id - v.note_off_offset) as u8),
            _ if id < v.velocity_offset => Event::TimeShift((id - v.time_shift_offset) as u8 + 1),
            _ if id < v.pedal_down => Event::Velocity((id - v.velocity_offset) as u8),
            _ if id == v.pedal_down => Event::PedalDown,
            _ if id == v.pedal_up => Event::PedalUp,
            _ => return None,
        })
    }

    /// Whether the event's fields are inside the vocabulary (ids are only defined for these).
    pub fn is_valid(self) -> bool {
        match self {
            Event::NoteOn(p) | Event::NoteOff(p) => (MIN_PITCH..=MAX_PITCH).contains(&p),
            Event::TimeShift(s) => (1..=MAX_SHIFT_STEPS).contains(&s),
            Event::Velocity(b) => b < VELOCITY_BINS,
            Event::PedalDown | Event::PedalUp => true,
        }
    }
}

/// The velocity bin (0..32) of a MIDI velocity 1..=127 (0 is treated as 1).
pub fn velocity_bin(velocity: u8) -> u8 {
    let v = velocity.clamp(1, 127) as u32;
    ((v - 1) * VELOCITY_BINS as u32 / 127) as u8
}

/// The MIDI velocity a bin decodes to: the middle of the velocities that fall into it.
pub fn bin_velocity(bin: u8) -> u8 {
    let bin = bin.min(VELOCITY_BINS - 1);
    let (mut lo, mut hi) = (127u8, 1u8);
    for v in 1..=127u8 {
        if velocity_bin(v) == bin {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    ((lo as u16 + hi as u16) / 2) as u8
}

impl fmt::Display for Event {
    /// The readable form used by `pianoforte encode` / `decode`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Event::NoteOn(p) => write!(f, "ON {p}"),
            Event::NoteOff(p) => write!(f, "OFF {p}"),
            Event::TimeShift(s) => write!(f, "SHIFT {}ms", s as u32 * 10),
            Event::Velocity(b) => write!(f, "VEL {}", bin_velocity(b)),
            Event::PedalDown => write!(f, "PEDAL down"),
            Event::PedalUp => write!(f, "PEDAL up"),
        }
    }
}

impl std::str::FromStr for Event {
    type Err = String;

    /// Parses one event in the readable form; `VEL` takes a MIDI velocity (1..=127).
    fn from_str(s: &str) -> Result<Event, String> {
        let mut words = s.split_whitespace();
        let (Some(kind), Some(arg), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("expected two words like `ON 60`, got `{s}`"));
        };
        let number = |text: &str| -> Result<u32, String> {
            text.parse::<u32>().map_err(|_| format!("`{text}` is not a number in `{s}`"))
        };
        let pitch = |text: &str| -> Result<u8, String> {
            let p = number(text)?;
            if (MIN_PITCH as u32..=MAX_PITCH as u32).contains(&p) {
                Ok(p as u8)
            } else {
                Err(format!("pitch {p} is outside the piano range {MIN_PITCH}..={MAX_PITCH}"))
            }
        };
        match kind.to_ascii_uppercase().as_str() {
            "ON" => Ok(Event::NoteOn(pitch(arg)?)),
            "OFF" => Ok(Event::NoteOff(pitch(arg)?)),
            "VEL" => match number(arg)? {
                v @ 1..=127 => Ok(Event::Velocity(velocity_bin(v as u8))),
                v => Err(format!("velocity {v} is outside 1..=127")),
            },
            "SHIFT" => {
                let ms = number(arg.trim_end_matches("ms"))?;
                if ms % 10 != 0 || !(10..=1000).contains(&ms) {
                    return Err(format!("a shift is 10..=1000 ms in steps of 10, got {ms} ms"));
                }
                Ok(Event::TimeShift((ms / 10) as u8))
            }
            "PEDAL" => match arg.to_ascii_lowercase().as_str() {
                "down" => Ok(Event::PedalDown),
                "up" => Ok(Event::PedalUp),
                other => Err(format!("pedal is `down` or `up`, got `{other}`")),
            },
            other => Err(format!("unknown event `{other}` (expected ON, OFF, SHIFT, VEL or PEDAL)")),
        }
    }
}

/// One played note, times in seconds from the start of the performance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub pitch: u8,
    pub velocity: u8,
    pub start: f64,
    pub end: f64,
}

/// A change of the sustain pedal (CC64 >= 64 is down).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PedalChange {
    pub time: f64,
    pub down: bool,
}

/// A piano performance: what the codec encodes and what MIDI files are read into.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    /// Sorted by start time.
    pub notes: Vec<Note>,
    /// Sorted by time; only real state changes.
    pub pedal: Vec<PedalChange>,
    /// Length in seconds (at least the last event's time).
    pub duration: f64,
}

/// Decoding closes a note still sounding this long after its onset (stuck-note guard).
pub const MAX_NOTE_SECONDS: f64 = 5.0;
/// A note still sounding when the events run out rings at least this long.
const TRAILING_NOTE_SECONDS: f64 = 0.5;

fn to_step(seconds: f64) -> i64 {
    let x = seconds * STEPS_PER_SECOND;
    // `x.round() as i64` without the call into libm that plain x86-64 needs for `round`: below
    // 2^52 the cast truncates exactly and `x - t` is the exact fraction, rounded half away from 0.
    if x.abs() < (1u64 << 52) as f64 {
        let t = x as i64;
        let fraction = x - t as f64;
        t + (fraction >= 0.5) as i64 - (fraction <= -0.5) as i64
    } else {
        x.round() as i64
    }
}

/// Sort key for events that land on the same 10 ms step; see `docs/events.md`.
/// Order: NOTE_OFFs of notes begun earlier, pedal changes (in time order), then NOTE_ONs by
/// pitch, each note that also ends in this step followed straight away by its NOTE_OFF.
///
/// Packed into one `u128` so that sorting compares plain integers: from the top, the step
/// (sign bit flipped, so signed order is unsigned order), rank, pitch, sequence number and
/// whether it is the NOTE_OFF right after its NOTE_ON; these make every key unique, and the
/// last byte carries the event's payload (velocity bin, or pedal down) without affecting order.
fn slot_key(step: i64, rank: u8, pitch: u8, seq: u32, after_on: bool, payload: u8) -> u128 {
    let low = (rank as u64) << 56 | (pitch as u64) << 48 | (seq as u64) << 16 | (after_on as u64) << 8 | payload as u64;
    ((step as u64 ^ 1 << 63) as u128) << 64 | low as u128
}

const RANK_OFF: u8 = 0;
const RANK_PEDAL: u8 = 1;
const RANK_ON: u8 = 2;

/// Sorts slot keys whose steps lie in `first..=last`. A performance spans a few times as many
/// 10 ms steps as it has slots, so a counting sort by step, then sorting each step's few slots,
/// does in linear time what a comparison sort does in n log n; sparse spans take the latter.
fn sort_slots(mut slots: Vec<u128>, first: i64, last: i64) -> Vec<u128> {
    let n = slots.len();
    let span = last as i128 - first as i128 + 1;
    if n < 64 || n > u32::MAX as usize || span > 8 * n as i128 + 4096 {
        slots.sort_unstable();
        return slots;
    }
    // The key's high word is the step with its sign bit flipped: `first`'s is the smallest.
    let (high, base) = (|key: u128| (key >> 64) as u64, first as u64 ^ 1 << 63);
    let bucket = |key: u128| (high(key) - base) as usize;
    // starts[b + 1] counts step b; as prefix sums, starts[b] is where step b begins.
    let mut starts = vec![0u32; span as usize + 1];
    for &key in &slots {
        starts[bucket(key) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut sorted = vec![0u128; n];
    for &key in &slots {
        let at = &mut starts[bucket(key)];
        sorted[*at as usize] = key;
        *at += 1;
    }
    let mut i = 0;
    while i < n {
        let step = high(sorted[i]);
        let len = sorted[i..].iter().take_while(|&&key| high(key) == step).count();
        if len > 1 {
            sorted[i..i + len].sort_unstable();
        }
        i += len;
    }
    sorted
}

/// Encodes a performance: times are quantized to the 10 ms grid first and shifts derived from
/// the quantized times, so the error is at most 5 ms per event and never accumulates.
/// Notes must lie in 21..=108 (out-of-range notes are skipped).
pub fn encode(performance: &Performance) -> Vec<Event> {
    let mut events = Vec::with_capacity(event_capacity(performance));
    encode_into(performance, |event| events.push(event));
    events
}

/// `to_ids(&encode(performance))` without the list of events in between: what the dataset
/// builder stores, in one pass.
pub fn encode_ids(performance: &Performance) -> Vec<u16> {
    let mut ids = Vec::with_capacity(event_capacity(performance));
    encode_into(performance, |event| ids.push(event.id()));
    ids
}

/// A first guess at the number of events: twice the slots (two per note, one per pedal
/// change), to leave room for VELOCITYs and TIME_SHIFTs. MAESTRO averages 4.8 per note.
fn event_capacity(performance: &Performance) -> usize {
    2 * (2 * performance.notes.len() + performance.pedal.len())
}

/// Encodes a performance, handing each event to `push` in order (`encode`, `encode_ids`).
#[inline]
fn encode_into(performance: &Performance, mut push: impl FnMut(Event)) {
    let mut slots: Vec<u128> = Vec::with_capacity(performance.notes.len() * 2 + performance.pedal.len());
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for (seq, note) in performance.notes.iter().enumerate() {
        if !(MIN_PITCH..=MAX_PITCH).contains(&note.pitch) {
            continue;
        }
        let (on, off) = (to_step(note.start), to_step(note.end.max(note.start)));
        let (seq, pitch) = (seq as u32, note.pitch);
        slots.push(slot_key(on, RANK_ON, pitch, seq, false, velocity_bin(note.velocity)));
        slots.push(if off == on {
            slot_key(on, RANK_ON, pitch, seq, true, 0)
        } else {
            slot_key(off, RANK_OFF, pitch, seq, false, 0)
        });
        (first, last) = (first.min(on), last.max(off));
    }
    for (seq, change) in performance.pedal.iter().enumerate() {
        let step = to_step(change.time);
        slots.push(slot_key(step, RANK_PEDAL, 0, seq as u32, false, change.down as u8));
        (first, last) = (first.min(step), last.max(step));
    }
    let slots = sort_slots(slots, first, last);

    let (mut now, mut bin, mut pedal_down) = (0i64, None, false);
    for key in slots {
        let step = ((key >> 64) as u64 ^ 1 << 63) as i64;
        let (rank, pitch, after_on, payload) = ((key >> 56) as u8, (key >> 48) as u8, (key >> 8) as u8 & 1 == 1, key as u8);
        // The TIME_SHIFTs up to this step, as `push_shifts` writes them.
        let mut gap = step.max(0) - now;
        while gap > 0 {
            let s = gap.min(MAX_SHIFT_STEPS as i64);
            push(Event::TimeShift(s as u8));
            gap -= s;
        }
        now = now.max(step);
        match rank {
            RANK_ON if !after_on => {
                if bin != Some(payload) {
                    push(Event::Velocity(payload));
                    bin = Some(payload);
                }
                push(Event::NoteOn(pitch));
            }
            RANK_ON | RANK_OFF => push(Event::NoteOff(pitch)),
            _ => {
                let down = payload == 1;
                if down != pedal_down {
                    pedal_down = down;
                    push(if down { Event::PedalDown } else { Event::PedalUp });
                }
            }
        }
    }
}

/// Appends the TIME_SHIFTs for a gap of `steps` (longest shifts first).
pub fn push_shifts(events: &mut Vec<Event>, mut steps: i64) {
    while steps > 0 {
        let s = steps.min(MAX_SHIFT_STEPS as i64);
        events.push(Event::TimeShift(s as u8));
        steps -= s;
    }
}

/// Decodes events into a performance: an unmatched NOTE_OFF is ignored, a repeated NOTE_ON of
/// a sounding pitch ends the earlier note first, a note still sounding 5 s after its onset is
/// closed there, notes still sounding at the end ring on briefly, and a pedal still down at
/// the end is lifted.
pub fn decode(events: &[Event]) -> Performance {
    let mut open: [Option<(i64, u8)>; 128] = [None; 128];
    let mut notes = Vec::new();
    let mut pedal = Vec::new();
    let (mut now, mut bin, mut pedal_down) = (0i64, velocity_bin(64), false);
    let max_steps = (MAX_NOTE_SECONDS * STEPS_PER_SECOND) as i64;
    let close = |notes: &mut Vec<Note>, pitch: u8, (start, velocity): (i64, u8), end: i64| {
        notes.push(Note {
            pitch,
            velocity,
            start: start as f64 / STEPS_PER_SECOND,
            end: end as f64 / STEPS_PER_SECOND,
        });
    };
    for &event in events.iter().filter(|e| e.is_valid()) {
        match event {
            Event::TimeShift(s) => {
                now += s as i64;
                for (pitch, slot) in open.iter_mut().enumerate() {
                    if let Some((start, vel)) = *slot
                        && now - start >= max_steps
                    {
                        close(&mut notes, pitch as u8, (start, vel), start + max_steps);
                        *slot = None;
                    }
                }
            }
            Event::Velocity(b) => bin = b,
            Event::NoteOn(p) => {
                if let Some(earlier) = open[p as usize].take() {
                    close(&mut notes, p, earlier, now);
                }
                open[p as usize] = Some((now, bin_velocity(bin)));
            }
            Event::NoteOff(p) => {
                if let Some(note) = open[p as usize].take() {
                    close(&mut notes, p, note, now);
                }
            }
            Event::PedalDown | Event::PedalUp => {
                let down = event == Event::PedalDown;
                if down != pedal_down {
                    pedal_down = down;
                    pedal.push(PedalChange { time: now as f64 / STEPS_PER_SECOND, down });
                }
            }
        }
    }
    let trailing = (TRAILING_NOTE_SECONDS * STEPS_PER_SECOND) as i64;
    let mut end = now;
    for (pitch, slot) in open.iter().enumerate() {
        if let Some((start, vel)) = *slot {
            let stop = now.max(start + trailing).min(start + max_steps);
            end = end.max(stop);
            close(&mut notes, pitch as u8, (start, vel), stop);
        }
    }
    if pedal_down {
        pedal.push(PedalChange { time: end as f64 / STEPS_PER_SECOND, down: false });
    }
    notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
    let duration = notes.iter().map(|n| n.end).fold(end as f64 / STEPS_PER_SECOND, f64::max);
    Performance { notes, pedal, duration }
}

/// Token ids of events (what the token files and the model use).
pub fn to_ids(events: &[Event]) -> Vec<u16> {
    events.iter().map(|e| e.id()).collect()
}

/// Events of token ids; fails on the first id outside the vocabulary.
pub fn from_ids(ids: &[u16]) -> Result<Vec<Event>, String> {
    ids.iter()
        .map(|&id| Event::from_id(id).ok_or_else(|| format!("token id {id} is outside the 310-event vocabulary")))
        .collect()
}

/// The readable text form, one event per line.
pub fn to_text(events: &[Event]) -> String {
    let mut out = String::with_capacity(events.len() * 8);
    for e in events {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out
}

/// Parses the readable form: one event per line; blank lines and `#` comments are skipped.
pub fn from_text(text: &str) -> Result<Vec<Event>, String> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or("").trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| line.parse::<Event>().map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_contiguous_and_cover_the_vocabulary() {
        for id in 0..VOCABULARY.size {
            let event = Event::from_id(id).expect("every id below 310 is an event");
            assert!(event.is_valid());
            assert_eq!(event.id(), id);
        }
        assert_eq!(Event::from_id(310), None);
        assert_eq!(Event::NoteOn(21).id(), 0);
        assert_eq!(Event::NoteOn(108).id(), 87);
        assert_eq!(Event::NoteOff(21).id(), 88);
        assert_eq!(Event::TimeShift(1).id(), 176);
        assert_eq!(Event::TimeShift(100).id(), 275);
        assert_eq!(Event::Velocity(0).id(), 276);
        assert_eq!(Event::Velocity(31).id(), 307);
        assert_eq!(Event::PedalDown.id(), 308);
        assert_eq!(Event::PedalUp.id(), 309);
    }

    #[test]
    fn velocity_bins_cover_1_to_127_monotonically() {
        assert_eq!(velocity_bin(1), 0);
        assert_eq!(velocity_bin(127), 31);
        let mut counts = [0; 32];
        for v in 1..=127u8 {
            counts[velocity_bin(v) as usize] += 1;
            assert!(velocity_bin(v) >= velocity_bin(v - 1).min(velocity_bin(v)));
            assert_eq!(velocity_bin(bin_velocity(velocity_bin(v))), velocity_bin(v));
        }
        assert!(counts.iter().all(|&c| c == 3 || c == 4), "{counts:?}");
    }

    #[test]
    fn text_form_round_trips() {
        let text = "VEL 72\nON 60\nSHIFT 120ms\nOFF 60\nPEDAL down\n# comment\n\nPEDAL up\n";
        let events = from_text(text).unwrap();
        assert_eq!(events.len(), 6);
        assert_eq!(events[2], Event::TimeShift(12));
        assert_eq!(from_text(&to_text(&events)).unwrap(), events);
        assert!(from_text("ON 20").unwrap_err().contains("outside the piano range"));
        assert!(from_text("SHIFT 15ms").is_err());
        assert!(from_text("JUMP 3").unwrap_err().contains("unknown event"));
    }

    #[test]
    fn long_gaps_become_several_shifts_and_times_do_not_drift() {
        let notes = vec![
            Note { pitch: 60, velocity: 80, start: 0.004, end: 2.506 },
            Note { pitch: 62, velocity: 80, start: 2.344, end: 3.0 },
        ];
        let events = encode(&Performance { notes: notes.clone(), pedal: vec![], duration: 3.0 });
        let shifts: Vec<_> = events.iter().filter(|e| matches!(e, Event::TimeShift(_))).collect();
        assert_eq!(shifts[..3], [&Event::TimeShift(100), &Event::TimeShift(100), &Event::TimeShift(34)]);
        let decoded = decode(&events);
        for (a, b) in notes.iter().zip(&decoded.notes) {
            assert!((a.start - b.start).abs() <= 0.005 + 1e-9 && (a.end - b.end).abs() <= 0.005 + 1e-9);
        }
    }

    #[test]
    fn simultaneous_events_have_one_order() {
        // A chord written in two orders encodes identically: offs first, then ons by pitch.
        let a = Note { pitch: 64, velocity: 90, start: 1.0, end: 2.0 };
        let b = Note { pitch: 60, velocity: 90, start: 1.001, end: 2.0 };
        let p1 = Performance { notes: vec![a, b], ..Default::default() };
        let p2 = Performance { notes: vec![b, a], ..Default::default() };
        assert_eq!(encode(&p1), encode(&p2));
        let text = to_text(&encode(&p1));
        assert!(text.contains("ON 60\nON 64\n"), "{text}");
    }

    #[test]
    fn very_short_and_repeated_notes_survive() {
        // A note shorter than one step, then the same key again within the step.
        let notes = vec![
            Note { pitch: 60, velocity: 50, start: 1.000, end: 1.003 },
            Note { pitch: 60, velocity: 100, start: 1.004, end: 1.5 },
        ];
        let decoded = decode(&encode(&Performance { notes, ..Default::default() }));
        assert_eq!(decoded.notes.len(), 2);
        assert_eq!((decoded.notes[0].start, decoded.notes[0].end), (1.0, 1.0));
        assert_eq!((decoded.notes[1].start, decoded.notes[1].end), (1.0, 1.5));
        assert_eq!(velocity_bin(decoded.notes[1].velocity), velocity_bin(100));
    }

    #[test]
    fn the_counting_sort_of_slots_equals_a_plain_sort() {
        // Spans dense and sparse, negative steps, repeated steps and the i64 extremes.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (n, span) in [(64, 1), (100, 10), (1000, 5000), (3000, 400), (500, 1 << 40), (200, u64::MAX)] {
            let mut slots = Vec::new();
            let (mut first, mut last) = (i64::MAX, i64::MIN);
            for seq in 0..n {
                let step = ((next() % span) as i64).wrapping_sub((span / 3) as i64);
                let rank = (next() % 3) as u8;
                slots.push(slot_key(step, rank, 21 + (next() % 88) as u8, seq, next() % 2 == 0, next() as u8));
                (first, last) = (first.min(step), last.max(step));
            }
            let mut expected = slots.clone();
            expected.sort_unstable();
            assert_eq!(sort_slots(slots, first, last), expected, "n {n}, span {span}");
        }
    }

    #[test]
    fn steps_round_half_away_from_zero_like_f64_round() {
        for x in [0.0, 0.004999, 0.005, 0.015, -0.005, -0.015, 0.49999999999999994 / 100.0, 1e13, -1e13, 1e300, f64::NAN] {
            assert_eq!(to_step(x), (x * STEPS_PER_SECOND).round() as i64, "{x}");
        }
        for i in 0..100_000 {
            let x = i as f64 * 0.000_37 - 5.0;
            assert_eq!(to_step(x), (x * STEPS_PER_SECOND).round() as i64, "{x}");
        }
    }

    #[test]
    fn decoding_guards_against_bad_streams() {
        let events = from_text("OFF 61\nVEL 100\nON 60\nSHIFT 1000ms\nON 60\nPEDAL down\nSHIFT 1000ms\n").unwrap();
        let p = decode(&events);
        // The unmatched OFF is ignored; the repeated ON closes the first note at 1 s.
        assert_eq!(p.notes.len(), 2);
        assert_eq!((p.notes[0].start, p.notes[0].end), (0.0, 1.0));
        // The second note still sounds at the end: it rings until the end of the stream.
        assert_eq!((p.notes[1].start, p.notes[1].end), (1.0, 2.0));
        // The pedal is lifted at the end.
        assert_eq!(p.pedal.last().map(|c| c.down), Some(false));

        let stuck = from_text(&format!("ON 60\n{}", "SHIFT 1000ms\n".repeat(8))).unwrap();
        let p = decode(&stuck);
        assert_eq!((p.notes[0].start, p.notes[0].end), (0.0, MAX_NOTE_SECONDS));
    }
}
