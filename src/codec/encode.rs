//! Performance -> events: times are quantised to the 10 ms grid first, then ordered canonically.

use super::events::{Event, Pitch, STEPS_PER_SECOND, Shift, VelocityBin};
use super::performance::Performance;

/// Seconds to the nearest 10 ms step (half away from zero): how every time enters the grid.
pub fn to_step(seconds: f64) -> i64 {
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
        if Pitch::new(note.pitch).is_none() {
            continue;
        }
        let (on, off) = (to_step(note.start), to_step(note.end.max(note.start)));
        let (seq, pitch) = (seq as u32, note.pitch);
        slots.push(slot_key(on, RANK_ON, pitch, seq, false, VelocityBin::of_midi(note.velocity).get()));
        slots.push(if off == on { slot_key(on, RANK_ON, pitch, seq, true, 0) } else { slot_key(off, RANK_OFF, pitch, seq, false, 0) });
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
        Shift::covering(step.max(0) - now).for_each(|s| push(Event::TimeShift(s)));
        now = now.max(step);
        match rank {
            RANK_ON if !after_on => {
                let velocity = VelocityBin::new(payload).expect("slots hold velocity bins");
                if bin != Some(velocity) {
                    push(Event::Velocity(velocity));
                    bin = Some(velocity);
                }
                push(Event::NoteOn(Pitch::new(pitch).expect("slots hold piano keys")));
            }
            RANK_ON | RANK_OFF => push(Event::NoteOff(Pitch::new(pitch).expect("slots hold piano keys"))),
            _ => {
                let down = payload == 1;
                if down != pedal_down {
                    pedal_down = down;
                    push(Event::pedal(down));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Note, decode, to_text};

    #[test]
    fn long_gaps_become_several_shifts_and_times_do_not_drift() {
        let notes =
            vec![Note { pitch: 60, velocity: 80, start: 0.004, end: 2.506 }, Note { pitch: 62, velocity: 80, start: 2.344, end: 3.0 }];
        let events = encode(&Performance { notes: notes.clone(), pedal: vec![], duration: 3.0 });
        let shifts: Vec<_> = events.iter().filter(|e| matches!(e, Event::TimeShift(_))).collect();
        let shift = |s| Event::TimeShift(Shift::new(s).unwrap());
        assert_eq!(shifts[..3], [&shift(100), &shift(100), &shift(34)]);
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
        let notes =
            vec![Note { pitch: 60, velocity: 50, start: 1.000, end: 1.003 }, Note { pitch: 60, velocity: 100, start: 1.004, end: 1.5 }];
        let decoded = decode(&encode(&Performance { notes, ..Default::default() }));
        assert_eq!(decoded.notes.len(), 2);
        assert_eq!((decoded.notes[0].start, decoded.notes[0].end), (1.0, 1.0));
        assert_eq!((decoded.notes[1].start, decoded.notes[1].end), (1.0, 1.5));
        assert_eq!(VelocityBin::of_midi(decoded.notes[1].velocity), VelocityBin::of_midi(100));
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
}
