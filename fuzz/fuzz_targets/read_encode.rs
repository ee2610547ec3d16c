//! Any bytes: read -> encode -> ids -> events -> decode -> write -> read again.
//!
//! `midi::read` may refuse the input (that is its job) but must never panic; what it
//! accepts goes through the whole codec, and every step must keep the invariants below.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pianoforte::codec::{self, MAX_NOTE_SECONDS, Performance, Pitch};
use pianoforte::codec::midi::{self, MAX_DURATION_SECONDS, MidiError};

/// What every performance must look like, read from a file or decoded.
fn check_shape(p: &Performance, what: &str) {
    let mut previous = (f64::NEG_INFINITY, 0u8);
    for n in &p.notes {
        assert!(Pitch::new(n.pitch).is_some(), "{what}: pitch {}", n.pitch);
        assert!((1..=127).contains(&n.velocity), "{what}: velocity {}", n.velocity);
        assert!(n.start.is_finite() && n.start >= 0.0 && n.end >= n.start, "{what}: {n:?}");
        assert!(n.end <= p.duration, "{what}: {n:?} ends after the duration {}", p.duration);
        assert!((n.start, n.pitch) >= previous, "{what}: notes out of order at {n:?}");
        previous = (n.start, n.pitch);
    }
    assert!(p.pedal.windows(2).all(|w| w[0].time <= w[1].time && w[0].down != w[1].down), "{what}: pedal {:?}", p.pedal);
    assert!(p.pedal.first().is_none_or(|c| c.down), "{what}: the pedal starts up");
}

fuzz_target!(|data: &[u8]| {
    let Ok(read) = midi::read(data) else { return };
    let p0 = &read.performance;
    check_shape(p0, "read");
    assert!(p0.duration <= MAX_DURATION_SECONDS);

    // Encode; the ids and the text form carry the events exactly.
    let events = codec::encode(p0);
    let ids = codec::to_ids(&events);
    assert!(ids.iter().all(|&id| id < 310));
    let events = codec::from_ids(&ids).expect("ids of valid events");
    assert_eq!(codec::from_text(&codec::to_text(&events)).unwrap(), events);

    // Decode: every NOTE_ON makes exactly one note, inside the piano range and at most 5 s
    // long; every pedal change survives, and a pedal still down is lifted at the end.
    let p1 = codec::decode(&events);
    check_shape(&p1, "decoded");
    assert_eq!(p1.notes.len(), p0.notes.len());
    assert!(p1.notes.iter().all(|n| n.end - n.start <= MAX_NOTE_SECONDS + 1e-9));
    let ends_down = p0.pedal.last().is_some_and(|c| c.down);
    assert_eq!(p1.pedal.len(), p0.pedal.len() + ends_down as usize);

    // A decoded performance is a fixed point: it lies on the 10 ms grid, one key never sounds
    // twice at once, notes are at most 5 s long and velocities are bin centres, so decoding its
    // encoding gives back the same notes and pedal, and encoding is stable from then on.
    let e2 = codec::encode(&p1);
    let p2 = codec::decode(&e2);
    assert_eq!(p2.notes, p1.notes);
    assert_eq!(p2.pedal, p1.pedal);
    assert_eq!(codec::encode(&p2), e2);

    // Written out and read back, the decoded performance encodes the same (notes shorter than
    // a tick are written one tick long, still inside their 10 ms step). Decoding may add up to
    // 0.5 s of ring-out to a performance of almost 6 h: then the reader may call it absurd.
    let bytes = midi::write(&p1);
    match midi::read(&bytes) {
        Ok(again) => {
            assert_eq!(again.dropped_out_of_range, 0);
            assert_eq!(again.performance.notes.len(), p1.notes.len());
            assert_eq!(codec::encode(&again.performance), e2);
        }
        Err(MidiError::AbsurdDuration(_)) if p1.duration > MAX_DURATION_SECONDS - 0.01 => {}
        Err(e) => panic!("a written file does not read back: {e}"),
    }
});
