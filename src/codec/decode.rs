//! Events -> performance, through the music state.

use super::events::{Event, Pitch, STEPS_PER_SECOND};
use super::performance::{Note, PedalChange, Performance};
use super::state::{Change, KeyDown, MusicState};

/// A note still sounding when the events run out rings at least this long.
const TRAILING_NOTE_SECONDS: f64 = 0.5;

/// Decodes events into a performance: an unmatched NOTE_OFF is ignored, a repeated NOTE_ON of
/// a sounding pitch ends the earlier note first, a note still sounding 5 s after its onset is
/// closed there (the music state's guard), notes still sounding at the end ring on briefly,
/// and a pedal still down at the end is lifted.
pub fn decode(events: &[Event]) -> Performance {
    let seconds = |step: i64| step as f64 / STEPS_PER_SECOND;
    let mut state = MusicState::new();
    let (mut notes, mut pedal) = (Vec::new(), Vec::new());
    let note = |pitch: Pitch, press: KeyDown, end: i64| Note {
        pitch: pitch.midi(),
        velocity: press.velocity.midi(),
        start: seconds(press.onset),
        end: seconds(end),
    };
    for &event in events {
        state.apply(event, |change| match change {
            Change::Release { pitch, at, press, .. } => notes.push(note(pitch, press, at)),
            Change::Pedal { down, at } => pedal.push(PedalChange { time: seconds(at), down }),
            Change::Press { .. } => {}
        });
    }
    let (now, guard) = (state.step(), state.max_note_steps());
    let trailing = (TRAILING_NOTE_SECONDS * STEPS_PER_SECOND) as i64;
    let mut end = now;
    for (pitch, press) in state.keys_down() {
        let stop = now.max(press.onset + trailing).min(press.onset + guard);
        end = end.max(stop);
        notes.push(note(pitch, press, stop));
    }
    if state.pedal_down() {
        pedal.push(PedalChange { time: seconds(end), down: false });
    }
    notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
    let duration = notes.iter().map(|n| n.end).fold(seconds(end), f64::max);
    Performance { notes, pedal, duration }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{MAX_NOTE_SECONDS, from_text};

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
