//! "A source of timed events": what the engine thread asks for the next event of the performance.
//!
//! The real one is the ONNX engine (`crate::engine`, adapted in `engine_source.rs`); in test
//! builds `synthetic.rs` plays a deterministic pattern for tests of the timing machinery without
//! a model or ONNX Runtime (selected with `PIANOFORTE_SOURCE=synthetic`).
//!
//! Sources speak the codec's event language ([`Event`]); [`Decoder`] turns that stream into MIDI
//! events with times, the way `codec::decode` does (including its 5 s stuck-note guard).

use super::events::Midi;
use crate::codec::{Change, Event, MusicState, Pitch, STEPS_PER_SECOND};
use crate::engine::beat_clock::{SongChange, SongPosition};
use crate::engine::control::KeyControl;

/// What the engine reads from the parameters at every step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepControls {
    pub temperature: f32,
    /// The motif memory's strength (`Sampling::memory`).
    pub motifs: f32,
    /// The pull towards the beat's grid (`Sampling::tightness`).
    pub tightness: f32,
    /// Notes per second, or None for Auto (the model chooses).
    pub density: Option<f32>,
    pub key_low: u8,
    pub key_high: u8,
    /// The key (tonality) to play in; format-1 models ignore it.
    pub tonality: KeyControl,
}

impl Default for StepControls {
    fn default() -> Self {
        StepControls {
            temperature: crate::plugin::params::DEFAULT_TEMPERATURE,
            motifs: crate::plugin::params::DEFAULT_MOTIFS,
            tightness: crate::plugin::params::DEFAULT_TIGHTNESS,
            density: None,
            key_low: Pitch::LOWEST.midi(),
            key_high: Pitch::HIGHEST.midi(),
            tonality: KeyControl::Any,
        }
    }
}

/// The model's name and the figures of its card, shown in the editor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelInfo {
    pub name: String,
    /// (label, value) pairs such as ("parameters", "2.1 M").
    pub figures: Vec<(String, String)>,
}

/// A source of performance events.
pub trait Source: Send {
    fn info(&self) -> ModelInfo;
    /// Starts a new performance that continues `primer` (empty: from silence) with `seed`,
    /// primed under `controls` (the Key and Density of now).
    fn restart(&mut self, primer: &[Event], seed: u64, controls: &StepControls) -> Result<(), String>;
    /// The next event of the performance.
    fn next(&mut self, controls: &StepControls) -> Result<Event, String>;
    /// The model's index of the key called `name` ("D minor"), from its card.
    fn key_index(&self, _name: &str) -> Option<u8> {
        None
    }
    /// The name (from the model's card) of the key Key "Any" settled on, if it has.
    fn chosen_key(&self) -> Option<String> {
        None
    }
    /// From the next restart on, the performance (its first event after the primer) begins at
    /// `song` (`None`: free time), and the primer ended `primer_gap` seconds before. Models that
    /// hear beats follow it; the others ignore it.
    fn follow(&mut self, _song: Option<SongPosition>, _primer_gap: f64) {}
    /// The song changes `seconds` into the performance (its tempo or meter, and where it is when
    /// the host says): from the next beat on.
    fn change_song(&mut self, _seconds: f64, _change: SongChange) {}
    /// Whether the model hears the song's beats (format 3).
    fn hears_beats(&self) -> bool {
        false
    }
}

/// Turns a stream of codec events into MIDI events with model times in seconds: the codec's
/// music state (its stuck-note guard included) says what each event does.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    state: MusicState,
}

impl Decoder {
    /// Model time in seconds.
    pub fn seconds(&self) -> f64 {
        self.state.seconds()
    }

    /// Feeds one event; `emit(seconds, midi)` gets what it means, in time order.
    pub fn feed(&mut self, event: Event, mut emit: impl FnMut(f64, Midi)) {
        let seconds = |at: i64| at as f64 / STEPS_PER_SECOND;
        self.state.apply(event, |change| match change {
            Change::Press { pitch, at, velocity } => emit(seconds(at), Midi::NoteOn { key: pitch.midi(), velocity: velocity.midi() }),
            Change::Release { pitch, at, .. } => emit(seconds(at), Midi::NoteOff { key: pitch.midi() }),
            Change::Pedal { down, at } => emit(seconds(at), Midi::Pedal { down }),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{self, Note, Shift, from_text};
    use crate::plugin::synthetic::Synthetic;

    /// The MIDI stream the decoder emits, read back into notes the way the plugin's clips are.
    fn decoded(events: &[Event]) -> (Vec<Note>, Vec<(f64, bool)>, f64) {
        let mut decoder = Decoder::default();
        let (mut out, mut last) = (Vec::new(), 0.0);
        for &e in events {
            decoder.feed(e, |t, m| {
                assert!(t >= last - 1e-9, "decoder output goes back in time");
                last = t;
                out.push((t, m));
            });
        }
        let mut open: codec::Keys<(f64, u8)> = codec::Keys::new();
        let (mut notes, mut pedal) = (Vec::new(), Vec::new());
        for (t, m) in out {
            match m {
                Midi::NoteOn { key, velocity } => assert!(open.press(key, (t, velocity)).is_none(), "NOTE_ON of a sounding key"),
                Midi::NoteOff { key } => {
                    let (start, velocity) = open.release(key).expect("NOTE_OFF of a sounding key");
                    notes.push(Note { pitch: key, velocity, start, end: t });
                }
                Midi::Pedal { down } => pedal.push((t, down)),
            }
        }
        notes.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.pitch.cmp(&b.pitch)));
        (notes, pedal, decoder.seconds())
    }

    #[test]
    fn decoder_matches_codec_decode() {
        let mut source = Synthetic::new();
        source.restart(&[], 7, &StepControls::default()).unwrap();
        let controls = StepControls { density: Some(12.0), ..Default::default() };
        let mut events: Vec<Event> = (0..2000).map(|_| source.next(&controls).unwrap()).collect();
        // Close what still sounds, so both sides end every note the same way.
        events.extend([Event::PedalUp, Event::TimeShift(Shift::LONGEST)]);
        events.extend(Pitch::all().map(Event::NoteOff));
        let (notes, pedal, seconds) = decoded(&events);
        let performance = codec::decode(&events);
        // Pitch, velocity, onset and release of every note, and every pedal change.
        assert_eq!(notes, performance.notes);
        let expected: Vec<(f64, bool)> = performance.pedal.iter().map(|c| (c.time, c.down)).collect();
        assert_eq!(pedal, expected);
        assert!(pedal.len() > 10 && notes.iter().map(|n| n.velocity).collect::<std::collections::BTreeSet<_>>().len() > 5);
        // About 12 notes per second.
        let rate = notes.len() as f64 / seconds;
        assert!((rate - 12.0).abs() < 1.0, "rate {rate}");
    }

    #[test]
    fn decoder_guards_stuck_notes() {
        let events = from_text(&format!("ON 60\n{}", "SHIFT 1000ms\n".repeat(6))).unwrap();
        let (notes, _, _) = decoded(&events);
        assert_eq!((notes[0].start, notes[0].end), (0.0, 5.0));
    }
}
