//! The 310 events, their ids and their readable text form. Pitches, shifts and velocity bins are
//! newtypes that can only hold values inside the vocabulary, so every [`Event`] has an id.

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

/// A key of the piano: MIDI pitch 21 (A0) ..= 108 (C8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pitch(u8);

impl Pitch {
    pub const LOWEST: Pitch = Pitch(MIN_PITCH);
    pub const HIGHEST: Pitch = Pitch(MAX_PITCH);

    /// The key of a MIDI pitch, if the piano has it.
    pub const fn new(midi: u8) -> Option<Pitch> {
        if midi >= MIN_PITCH && midi <= MAX_PITCH { Some(Pitch(midi)) } else { None }
    }

    /// The key with index 0..88 from the bottom.
    pub const fn from_index(index: usize) -> Option<Pitch> {
        if index < PITCHES as usize { Some(Pitch(MIN_PITCH + index as u8)) } else { None }
    }

    /// The MIDI pitch.
    pub const fn midi(self) -> u8 {
        self.0
    }

    /// 0 for A0 .. 87 for C8.
    pub const fn index(self) -> usize {
        (self.0 - MIN_PITCH) as usize
    }

    /// The 88 keys, bottom up.
    pub fn all() -> impl DoubleEndedIterator<Item = Pitch> {
        (MIN_PITCH..=MAX_PITCH).map(Pitch)
    }
}

/// A TIME_SHIFT's length: 1..=100 steps of 10 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shift(u8);

impl Shift {
    pub const LONGEST: Shift = Shift(MAX_SHIFT_STEPS);

    pub const fn new(steps: u8) -> Option<Shift> {
        if steps >= 1 && steps <= MAX_SHIFT_STEPS { Some(Shift(steps)) } else { None }
    }

    pub const fn steps(self) -> u8 {
        self.0
    }

    /// The shifts that make up a gap of `steps` (longest first; none for a gap <= 0).
    pub fn covering(mut steps: i64) -> impl Iterator<Item = Shift> {
        std::iter::from_fn(move || {
            (steps > 0).then(|| {
                let s = steps.min(MAX_SHIFT_STEPS as i64);
                steps -= s;
                Shift(s as u8)
            })
        })
    }
}

/// A velocity bin, 0..32: the loudness of the NOTE_ONs that follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VelocityBin(u8);

impl VelocityBin {
    /// The bin a performance starts with, before any VELOCITY event: the bin of MIDI velocity 64.
    pub const INITIAL: VelocityBin = VelocityBin::of_midi(64);

    pub const fn new(bin: u8) -> Option<VelocityBin> {
        if bin < VELOCITY_BINS { Some(VelocityBin(bin)) } else { None }
    }

    /// The bin of a MIDI velocity 1..=127 (0 is treated as 1).
    pub const fn of_midi(velocity: u8) -> VelocityBin {
        let v = if velocity == 0 {
            1
        } else if velocity > 127 {
            127
        } else {
            velocity
        } as u32;
        VelocityBin(((v - 1) * VELOCITY_BINS as u32 / 127) as u8)
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    /// The MIDI velocity the bin decodes to: the middle of the velocities that fall into it.
    pub const fn midi(self) -> u8 {
        // The lowest velocity of bin b is the smallest v with (v - 1) * 32 / 127 >= b.
        const fn lowest(b: u32) -> u32 {
            (127 * b).div_ceil(VELOCITY_BINS as u32) + 1
        }
        let b = self.0 as u32;
        let highest = if b + 1 == VELOCITY_BINS as u32 { 127 } else { lowest(b + 1) - 1 };
        ((lowest(b) + highest) / 2) as u8
    }
}

/// One event of the performance language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A key goes down.
    NoteOn(Pitch),
    /// A key comes up.
    NoteOff(Pitch),
    /// Time moves on.
    TimeShift(Shift),
    /// The velocity bin for the following NOTE_ONs.
    Velocity(VelocityBin),
    PedalDown,
    PedalUp,
}

impl Event {
    pub fn id(self) -> u16 {
        let v = &VOCABULARY;
        match self {
            Event::NoteOn(p) => v.note_on_offset + p.index() as u16,
            Event::NoteOff(p) => v.note_off_offset + p.index() as u16,
            Event::TimeShift(s) => v.time_shift_offset + (s.steps() - 1) as u16,
            Event::Velocity(b) => v.velocity_offset + b.get() as u16,
            Event::PedalDown => v.pedal_down,
            Event::PedalUp => v.pedal_up,
        }
    }

    pub fn from_id(id: u16) -> Option<Event> {
        let v = &VOCABULARY;
        let index = |offset: u16| (id - offset) as usize;
        Some(match id {
            _ if id < v.note_off_offset => Event::NoteOn(Pitch::from_index(index(v.note_on_offset))?),
            _ if id < v.time_shift_offset => Event::NoteOff(Pitch::from_index(index(v.note_off_offset))?),
            _ if id < v.velocity_offset => Event::TimeShift(Shift::new(index(v.time_shift_offset) as u8 + 1)?),
            _ if id < v.pedal_down => Event::Velocity(VelocityBin::new(index(v.velocity_offset) as u8)?),
            _ if id == v.pedal_down => Event::PedalDown,
            _ if id == v.pedal_up => Event::PedalUp,
            _ => return None,
        })
    }

    /// The pedal event for a state.
    pub fn pedal(down: bool) -> Event {
        if down { Event::PedalDown } else { Event::PedalUp }
    }
}

impl fmt::Display for Event {
    /// The readable form used by `pianoforte encode` / `decode`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Event::NoteOn(p) => write!(f, "ON {}", p.midi()),
            Event::NoteOff(p) => write!(f, "OFF {}", p.midi()),
            Event::TimeShift(s) => write!(f, "SHIFT {}ms", s.steps() as u32 * 10),
            Event::Velocity(b) => write!(f, "VEL {}", b.midi()),
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
        let number = |text: &str| -> Result<u32, String> { text.parse::<u32>().map_err(|_| format!("`{text}` is not a number in `{s}`")) };
        let pitch = |text: &str| -> Result<Pitch, String> {
            let p = number(text)?;
            u8::try_from(p)
                .ok()
                .and_then(Pitch::new)
                .ok_or_else(|| format!("pitch {p} is outside the piano range {MIN_PITCH}..={MAX_PITCH}"))
        };
        match kind.to_ascii_uppercase().as_str() {
            "ON" => Ok(Event::NoteOn(pitch(arg)?)),
            "OFF" => Ok(Event::NoteOff(pitch(arg)?)),
            "VEL" => match number(arg)? {
                v @ 1..=127 => Ok(Event::Velocity(VelocityBin::of_midi(v as u8))),
                v => Err(format!("velocity {v} is outside 1..=127")),
            },
            "SHIFT" => {
                let ms = number(arg.trim_end_matches("ms"))?;
                match (ms % 10, u8::try_from(ms / 10).ok().and_then(Shift::new)) {
                    (0, Some(shift)) => Ok(Event::TimeShift(shift)),
                    _ => Err(format!("a shift is 10..=1000 ms in steps of 10, got {ms} ms")),
                }
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

/// The names of the 12 pitch classes, C = 0: the model card's spelling ("Eb major"), used for keys
/// and note names alike.
pub const PITCH_CLASS_NAMES: [&str; 12] = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];

/// The letter and accidentals of a note name ("C", "F#", "Eb", "B♭3"): semitones above C (the
/// accidentals may take it below 0 or past 11) and the rest of the text. One parser for note
/// names (the plugin's key range) and key names (the model's key control).
pub fn parse_note_letter(text: &str) -> Option<(i32, &str)> {
    let letter = text.chars().next()?;
    let mut semitones = match letter.to_ascii_uppercase() {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let mut rest = &text[letter.len_utf8()..];
    loop {
        if let Some(r) = rest.strip_prefix(['#', '♯']) {
            (semitones, rest) = (semitones + 1, r);
        } else if let Some(r) = rest.strip_prefix(['b', '♭']) {
            (semitones, rest) = (semitones - 1, r);
        } else {
            return Some((semitones, rest));
        }
    }
}

/// Token ids of events (what the token files and the model use).
pub fn to_ids(events: &[Event]) -> Vec<u16> {
    events.iter().map(|e| e.id()).collect()
}

/// Events of token ids; fails on the first id outside the vocabulary.
pub fn from_ids(ids: &[u16]) -> Result<Vec<Event>, String> {
    ids.iter().map(|&id| Event::from_id(id).ok_or_else(|| format!("token id {id} is outside the 310-event vocabulary"))).collect()
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

    fn on(p: u8) -> Event {
        Event::NoteOn(Pitch::new(p).unwrap())
    }

    #[test]
    fn ids_are_contiguous_and_cover_the_vocabulary() {
        for id in 0..VOCABULARY.size {
            let event = Event::from_id(id).expect("every id below 310 is an event");
            assert_eq!(event.id(), id);
        }
        assert_eq!(Event::from_id(310), None);
        assert_eq!(on(21).id(), 0);
        assert_eq!(on(108).id(), 87);
        assert_eq!(Event::NoteOff(Pitch::LOWEST).id(), 88);
        assert_eq!(Event::TimeShift(Shift::new(1).unwrap()).id(), 176);
        assert_eq!(Event::TimeShift(Shift::LONGEST).id(), 275);
        assert_eq!(Event::Velocity(VelocityBin::new(0).unwrap()).id(), 276);
        assert_eq!(Event::Velocity(VelocityBin::new(31).unwrap()).id(), 307);
        assert_eq!(Event::PedalDown.id(), 308);
        assert_eq!(Event::PedalUp.id(), 309);
    }

    #[test]
    fn newtypes_refuse_values_outside_the_vocabulary() {
        assert_eq!(Pitch::new(20), None);
        assert_eq!(Pitch::new(109), None);
        assert_eq!(Pitch::new(5), None);
        assert_eq!(Pitch::from_index(88), None);
        assert_eq!(Shift::new(0), None);
        assert_eq!(Shift::new(101), None);
        assert_eq!(VelocityBin::new(32), None);
        assert_eq!(Pitch::all().count(), 88);
        let gaps: Vec<Vec<u8>> = [0, 1, 100, 101, 250].iter().map(|&g| Shift::covering(g).map(Shift::steps).collect()).collect();
        assert_eq!(gaps, [vec![], vec![1], vec![100], vec![100, 1], vec![100, 100, 50]]);
    }

    #[test]
    fn velocity_bins_cover_1_to_127_monotonically() {
        assert_eq!(VelocityBin::of_midi(0).get(), 0);
        assert_eq!(VelocityBin::of_midi(1).get(), 0);
        assert_eq!(VelocityBin::of_midi(127).get(), 31);
        assert_eq!(VelocityBin::INITIAL, VelocityBin::of_midi(64));
        let mut counts = [0; 32];
        for v in 1..=127u8 {
            let bin = VelocityBin::of_midi(v);
            counts[bin.get() as usize] += 1;
            // Louder never falls into a lower bin, and a step up rises at most one bin.
            let below = VelocityBin::of_midi(v - 1).get();
            assert!(bin.get() == below || bin.get() == below + 1, "velocity {v}: bin {} after {below}", bin.get());
            assert_eq!(VelocityBin::of_midi(bin.midi()), bin);
        }
        assert!(counts.iter().all(|&c| c == 3 || c == 4), "{counts:?}");
        // Each bin decodes to the middle of the velocities that fall into it.
        for bin in (0..32).map(|b| VelocityBin::new(b).unwrap()) {
            let members: Vec<u32> = (1..=127u8).filter(|&v| VelocityBin::of_midi(v) == bin).map(u32::from).collect();
            assert_eq!(bin.midi() as u32, (members[0] + members[members.len() - 1]) / 2, "{bin:?}");
        }
    }

    #[test]
    fn text_form_round_trips() {
        let text = "VEL 72\nON 60\nSHIFT 120ms\nOFF 60\nPEDAL down\n# comment\n\nPEDAL up\n";
        let events = from_text(text).unwrap();
        assert_eq!(events.len(), 6);
        assert_eq!(events[2], Event::TimeShift(Shift::new(12).unwrap()));
        assert_eq!(from_text(&to_text(&events)).unwrap(), events);
        assert!(from_text("ON 20").unwrap_err().contains("outside the piano range"));
        assert!(from_text("ON 300").unwrap_err().contains("outside the piano range"));
        assert!(from_text("SHIFT 15ms").is_err());
        assert!(from_text("SHIFT 1010ms").is_err());
        assert!(from_text("SHIFT 0ms").is_err());
        assert!(from_text("JUMP 3").unwrap_err().contains("unknown event"));
    }
}
