//! Property tests of the codec: any performance survives encode/decode within the grid, and
//! any event stream (even a nonsensical one) decodes into a playable performance.

use pianoforte::codec::midi;
use pianoforte::codec::{self, Event, MAX_NOTE_SECONDS, Note, PedalChange, Performance, VelocityBin};
use proptest::prelude::*;

const TOLERANCE: f64 = 0.005 + 1e-9;

/// Notes that a real keyboard can produce: one key is never down twice at once.
fn performance() -> impl Strategy<Value = Performance> {
    let note = (21u8..=108, 0.0f64..120.0, 0.0f64..7.0, 1u8..=127).prop_map(|(pitch, start, length, velocity)| Note {
        pitch,
        velocity,
        start,
        end: start + length,
    });
    let pedal = prop::collection::vec(0.0f64..125.0, 0..40);
    (prop::collection::vec(note, 0..300), pedal).prop_map(|(mut notes, mut pedal_times)| {
        notes.sort_by(|a, b| a.pitch.cmp(&b.pitch).then(a.start.total_cmp(&b.start)));
        for i in 1..notes.len() {
            if notes[i].pitch == notes[i - 1].pitch && notes[i - 1].end > notes[i].start {
                notes[i - 1].end = notes[i].start;
            }
        }
        notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)).then(a.end.total_cmp(&b.end)));
        pedal_times.sort_by(f64::total_cmp);
        let pedal = pedal_times.iter().enumerate().map(|(i, &time)| PedalChange { time, down: i % 2 == 0 }).collect();
        let duration = notes.iter().map(|n| n.end).fold(125.0, f64::max);
        Performance { notes, pedal, duration }
    })
}

fn steps(t: f64) -> f64 {
    (t * 100.0).round()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn encode_ids_is_to_ids_of_encode(p in performance()) {
        prop_assert_eq!(codec::encode_ids(&p), codec::to_ids(&codec::encode(&p)));
    }

    #[test]
    fn performances_survive_encode_decode(p in performance()) {
        let events = codec::encode(&p);
        prop_assert!(events.iter().all(|e| e.id() < 310));
        // Through a MIDI file, as every consumer sees it.
        let back = midi::read(&midi::write(&codec::decode(&events))).unwrap().performance;
        prop_assert_eq!(back.notes.len(), p.notes.len());
        let by_pitch = |notes: &[Note]| {
            let mut v = notes.to_vec();
            v.sort_by(|a, b| a.pitch.cmp(&b.pitch).then(a.start.total_cmp(&b.start)).then(a.end.total_cmp(&b.end)));
            v
        };
        for (a, b) in by_pitch(&p.notes).iter().zip(&by_pitch(&back.notes)) {
            prop_assert_eq!(a.pitch, b.pitch);
            prop_assert!((a.start - b.start).abs() <= TOLERANCE, "{:?} -> {:?}", a, b);
            let capped = steps(a.end) - steps(a.start) > MAX_NOTE_SECONDS * 100.0;
            let expected_end = if capped { b.start + MAX_NOTE_SECONDS } else { a.end };
            // A note that quantises to zero length is written one tick (1 ms) long.
            let one_tick = steps(a.end) == steps(a.start) && b.end - b.start <= 0.001 + 1e-9;
            prop_assert!(one_tick || (expected_end - b.end).abs() <= TOLERANCE + 1e-6, "{:?} -> {:?}", a, b);
            prop_assert_eq!(VelocityBin::of_midi(a.velocity), VelocityBin::of_midi(b.velocity));
        }
        let ends_down = p.pedal.last().is_some_and(|c| c.down);
        prop_assert_eq!(back.pedal.len(), p.pedal.len() + ends_down as usize);
        for (a, b) in p.pedal.iter().zip(&back.pedal) {
            prop_assert_eq!(a.down, b.down);
            prop_assert!((a.time - b.time).abs() <= TOLERANCE);
        }
    }

    #[test]
    fn any_event_stream_decodes_into_a_playable_performance(ids in prop::collection::vec(0u16..310, 0..2000)) {
        let events = codec::from_ids(&ids).unwrap();
        let p = codec::decode(&events);
        let mut by_pitch = p.notes.clone();
        by_pitch.sort_by(|a, b| a.pitch.cmp(&b.pitch).then(a.start.total_cmp(&b.start)));
        for n in &p.notes {
            prop_assert!((21..=108).contains(&n.pitch));
            prop_assert!(n.end >= n.start && n.end - n.start <= MAX_NOTE_SECONDS + 1e-9);
        }
        for pair in by_pitch.windows(2) {
            if pair[0].pitch == pair[1].pitch {
                prop_assert!(pair[0].end <= pair[1].start + 1e-9, "overlapping notes {:?}", pair);
            }
        }
        prop_assert!(p.pedal.last().is_none_or(|c| !c.down), "the pedal ends up");
        // Decoding then encoding reaches a fixed point after one pass.
        let once = codec::encode(&p);
        prop_assert_eq!(codec::encode(&codec::decode(&once)), once);
    }

    #[test]
    fn text_form_round_trips(ids in prop::collection::vec(0u16..310, 0..500)) {
        let events: Vec<Event> = codec::from_ids(&ids).unwrap();
        prop_assert_eq!(codec::from_text(&codec::to_text(&events)).unwrap(), events);
    }
}
