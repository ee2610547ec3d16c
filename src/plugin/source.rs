//! "A source of timed events": what the engine thread asks for the next event of the performance.
//!
//! The real one is the ONNX engine (`crate::engine`, adapted in `engine_source.rs`); a small
//! synthetic source plays a deterministic pattern for tests of the timing machinery without a
//! model or ONNX Runtime (selected with `PIANOFORTE_SOURCE=synthetic`).
//!
//! Sources speak the codec's event language ([`Event`]); [`Decoder`] turns that stream into MIDI
//! events with times, the way `codec::decode` does (including its 5 s stuck-note guard).

use super::events::Midi;
use crate::codec::{self, Event, MAX_NOTE_SECONDS, STEPS_PER_SECOND};

/// What the engine reads from the parameters at every step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepControls {
    pub temperature: f32,
    /// Notes per second, or None for Auto (the model chooses).
    pub density: Option<f32>,
    pub key_low: u8,
    pub key_high: u8,
}

impl Default for StepControls {
    fn default() -> Self {
        StepControls { temperature: 1.0, density: None, key_low: 21, key_high: 108 }
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
    /// Starts a new performance that continues `primer` (empty: from silence) with `seed`.
    fn restart(&mut self, primer: &[Event], seed: u64) -> Result<(), String>;
    /// The next event of the performance.
    fn next(&mut self, controls: &StepControls) -> Result<Event, String>;
}

/// Turns a stream of codec events into MIDI events with model times in seconds.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Model time in 10 ms steps.
    step: i64,
    velocity_bin: u8,
    /// Onset step of each sounding pitch, or -1.
    onset: [i64; 128],
    pedal_down: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder { step: 0, velocity_bin: codec::VELOCITY_BINS / 2 - 1, onset: [-1; 128], pedal_down: false }
    }
}

impl Decoder {
    /// Model time in seconds.
    pub fn seconds(&self) -> f64 {
        self.step as f64 / STEPS_PER_SECOND
    }

    /// Feeds one event; `emit(seconds, midi)` gets what it means, in time order.
    pub fn feed(&mut self, event: Event, mut emit: impl FnMut(f64, Midi)) {
        let guard_steps = (MAX_NOTE_SECONDS * STEPS_PER_SECOND).round() as i64;
        match event {
            Event::TimeShift(steps) => {
                let target = self.step + steps as i64;
                // The stuck-note guard: a note held 5 s ends there.
                loop {
                    let mut first: Option<(i64, usize)> = None;
                    for (pitch, &onset) in self.onset.iter().enumerate() {
                        if onset >= 0 && onset + guard_steps <= target && first.is_none_or(|(s, _)| onset + guard_steps < s) {
                            first = Some((onset + guard_steps, pitch));
                        }
                    }
                    let Some((at, pitch)) = first else { break };
                    self.onset[pitch] = -1;
                    emit(at as f64 / STEPS_PER_SECOND, Midi::NoteOff { key: pitch as u8 });
                }
                self.step = target;
            }
            Event::Velocity(bin) => self.velocity_bin = bin.min(codec::VELOCITY_BINS - 1),
            Event::NoteOn(pitch) => {
                let at = self.seconds();
                if self.onset[pitch as usize] >= 0 {
                    emit(at, Midi::NoteOff { key: pitch });
                }
                self.onset[pitch as usize] = self.step;
                emit(at, Midi::NoteOn { key: pitch, velocity: codec::bin_velocity(self.velocity_bin) });
            }
            Event::NoteOff(pitch) => {
                if self.onset[pitch as usize] >= 0 {
                    self.onset[pitch as usize] = -1;
                    emit(self.seconds(), Midi::NoteOff { key: pitch });
                }
            }
            Event::PedalDown | Event::PedalUp => {
                let down = event == Event::PedalDown;
                if down != self.pedal_down {
                    self.pedal_down = down;
                    emit(self.seconds(), Midi::Pedal { down });
                }
            }
        }
    }
}

/// A deterministic stand-in pianist: broken chords around a slowly wandering centre, at the
/// requested density (6 notes/s on Auto), pedal changes every two seconds. Only for tests.
pub struct Synthetic {
    rng: u64,
    pending: Vec<(i64, Event)>,
    step: i64,
    queue: std::collections::VecDeque<Event>,
    centre: i32,
    next_pedal: i64,
    pedal: bool,
}

impl Synthetic {
    pub fn new() -> Self {
        Synthetic {
            rng: 1,
            pending: Vec::new(),
            step: 0,
            queue: Default::default(),
            centre: 60,
            next_pedal: 0,
            pedal: false,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Queues the events up to and including the next onset.
    fn plan(&mut self, controls: &StepControls) {
        let density = controls.density.unwrap_or(6.0).clamp(0.5, 60.0) as f64;
        let gap = ((STEPS_PER_SECOND / density).round() as i64).max(1);
        let onset = self.step + gap;
        // Releases and pedal changes due before the onset, in time order.
        let mut due: Vec<(i64, Event)> = Vec::new();
        self.pending.retain(|&(at, e)| {
            if at <= onset {
                due.push((at, e));
                false
            } else {
                true
            }
        });
        while self.next_pedal <= onset {
            self.pedal = !self.pedal;
            due.push((self.next_pedal, if self.pedal { Event::PedalDown } else { Event::PedalUp }));
            self.next_pedal += 200;
        }
        due.sort_by_key(|&(at, e)| (at, matches!(e, Event::NoteOn(_))));
        let mut now = self.step;
        let mut emit_at = |queue: &mut std::collections::VecDeque<Event>, at: i64, e: Event| {
            while at > now {
                let shift = (at - now).min(100);
                queue.push_back(Event::TimeShift(shift as u8));
                now += shift;
            }
            queue.push_back(e);
        };
        for (at, e) in due {
            emit_at(&mut self.queue, at, e);
        }
        let r = self.random();
        self.centre = (self.centre + (r % 5) as i32 - 2).clamp(40, 84);
        let pitch = (self.centre + [0, 4, 7, 12, 7, 4][(r >> 8) as usize % 6]) as u8;
        let pitch = super::player::fold_key(pitch, controls.key_low.max(21), controls.key_high.min(108)).unwrap_or(60);
        let bin = (12 + (r >> 16) % 14) as u8;
        let length = 10 + ((r >> 24) % 50) as i64;
        emit_at(&mut self.queue, onset, Event::Velocity(bin));
        // A sounding pitch is released first (the decoder would do it anyway).
        if let Some(i) = self.pending.iter().position(|&(_, e)| e == Event::NoteOff(pitch)) {
            self.pending.remove(i);
            self.queue.push_back(Event::NoteOff(pitch));
        }
        self.queue.push_back(Event::NoteOn(pitch));
        self.pending.push((onset + length, Event::NoteOff(pitch)));
        self.step = now;
    }
}

impl Default for Synthetic {
    fn default() -> Self {
        Self::new()
    }
}

impl Source for Synthetic {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            name: "synthetic test pattern".into(),
            figures: vec![("kind".into(), "deterministic, for tests".into())],
        }
    }

    fn restart(&mut self, _primer: &[Event], seed: u64) -> Result<(), String> {
        *self = Synthetic::new();
        self.rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Ok(())
    }

    fn next(&mut self, controls: &StepControls) -> Result<Event, String> {
        if self.queue.is_empty() {
            self.plan(controls);
        }
        Ok(self.queue.pop_front().expect("plan queues at least one event"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_matches_codec_decode() {
        let mut source = Synthetic::new();
        source.restart(&[], 7).unwrap();
        let controls = StepControls { density: Some(12.0), ..Default::default() };
        let events: Vec<Event> = (0..2000).map(|_| source.next(&controls).unwrap()).collect();
        assert!(events.iter().all(|e| e.is_valid()));
        let mut decoder = Decoder::default();
        let mut ons = Vec::new();
        let mut last = 0.0;
        for &e in &events {
            decoder.feed(e, |t, m| {
                assert!(t >= last - 1e-9, "decoder output goes back in time");
                last = t;
                if let Midi::NoteOn { key, .. } = m {
                    ons.push((key, (t * 1000.0).round() as i64));
                }
            });
        }
        let performance = codec::decode(&events);
        let expected: Vec<(u8, i64)> =
            performance.notes.iter().map(|n| (n.pitch, (n.start * 1000.0).round() as i64)).collect();
        assert_eq!(ons, expected);
        // About 12 notes per second.
        let rate = ons.len() as f64 / decoder.seconds();
        assert!((rate - 12.0).abs() < 1.0, "rate {rate}");
    }

    #[test]
    fn decoder_guards_stuck_notes() {
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for e in [Event::NoteOn(60), Event::TimeShift(100), Event::TimeShift(100), Event::TimeShift(100),
                  Event::TimeShift(100), Event::TimeShift(100), Event::TimeShift(100)] {
            decoder.feed(e, |t, m| out.push((t, m)));
        }
        assert_eq!(out[1], (5.0, Midi::NoteOff { key: 60 }));
    }
}
