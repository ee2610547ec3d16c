//! A deterministic stand-in pianist for the host tests (`PIANOFORTE_SOURCE=synthetic` in a
//! test build): exercises the timing machinery without a model or ONNX Runtime.

use super::source::{ModelInfo, Source, StepControls};
use crate::codec::{Event, Pitch, STEPS_PER_SECOND, Shift, VelocityBin};

const MIDDLE_C: Pitch = match Pitch::new(60) {
    Some(p) => p,
    None => unreachable!(),
};

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
        Synthetic { rng: 1, pending: Vec::new(), step: 0, queue: Default::default(), centre: 60, next_pedal: 0, pedal: false }
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
            due.push((self.next_pedal, Event::pedal(self.pedal)));
            self.next_pedal += 200;
        }
        due.sort_by_key(|&(at, e)| (at, matches!(e, Event::NoteOn(_))));
        let mut now = self.step;
        let mut emit_at = |queue: &mut std::collections::VecDeque<Event>, at: i64, e: Event| {
            queue.extend(Shift::covering(at - now).map(Event::TimeShift));
            now = now.max(at);
            queue.push_back(e);
        };
        for (at, e) in due {
            emit_at(&mut self.queue, at, e);
        }
        let r = self.random();
        self.centre = (self.centre + (r % 5) as i32 - 2).clamp(40, 84);
        let pitch = (self.centre + [0, 4, 7, 12, 7, 4][(r >> 8) as usize % 6]) as u8;
        let (low, high) = (controls.key_low.max(Pitch::LOWEST.midi()), controls.key_high.min(Pitch::HIGHEST.midi()));
        let pitch = super::player::fold_key(pitch, low, high).and_then(Pitch::new).unwrap_or(MIDDLE_C);
        let bin = VelocityBin::new((12 + (r >> 16) % 14) as u8).expect("below 32");
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
        ModelInfo { name: "synthetic test pattern".into(), figures: vec![("kind".into(), "deterministic, for tests".into())] }
    }

    fn restart(&mut self, _primer: &[Event], seed: u64, _controls: &StepControls) -> Result<(), String> {
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
