//! Perform my part, live: while the transport runs, the track's own notes are the part, and the
//! engine thread performs them through [`crate::perform::live`], [`LATENCY`] behind the part
//! (reported to the host, so the DAW lines the performance up with the other tracks).
//!
//! What is played depends only on the part's notes and the song's tempo, never on when this
//! thread runs: the same in real time, offline and faster.

use super::events::{Midi, Played, Timed};
use crate::engine::Meter;
use crate::perform::live::{LATENCY, LiveEvent, LivePerformer};
use crate::perform::model::PerformModel;
use crate::perform::render::RenderOptions;
use std::collections::VecDeque;

/// The part being performed, from one start of the transport.
pub struct LivePart {
    performer: LivePerformer,
    generation: u32,
    /// The song's tempo, and where its quarter notes are on the clock (clock seconds at
    /// quarter note 0).
    bpm: f64,
    quarter_zero: f64,
    decided: Vec<(f64, LiveEvent)>,
}

impl LivePart {
    /// A part in `bpm` and `meter` whose quarter note `quarters` is at clock second `clock`,
    /// performed with `seed` for the audio thread's `generation`.
    pub fn new(bpm: f64, meter: Meter, (quarters, clock): (f64, f64), seed: u64, generation: u32) -> LivePart {
        let options = RenderOptions { temperature: crate::perform::DEFAULT_TEMPERATURE, seed };
        LivePart {
            performer: LivePerformer::new(bpm, meter, options),
            generation,
            bpm,
            quarter_zero: clock - quarters * 60.0 / bpm,
            decided: Vec::new(),
        }
    }

    /// The musician's (the track's) event, as the audio thread heard it.
    pub fn hear(&mut self, played: &Played) {
        let quarters = (played.time - self.quarter_zero) * self.bpm / 60.0;
        match played.midi {
            Midi::NoteOn { key, velocity } => self.performer.note_on(played.time, quarters, key, velocity),
            Midi::NoteOff { key } => self.performer.note_off(played.time, quarters, key),
            // The model pedals; the part's own pedal is not part of the score.
            Midi::Pedal { .. } => {}
        }
    }

    /// Performs what the part heard before clock second `heard_until` decides, into `pending`
    /// (kept in time order) on the performance clock.
    pub fn decide(&mut self, heard_until: f64, model: &mut PerformModel, pending: &mut VecDeque<Timed>) -> Result<(), String> {
        self.decided.clear();
        self.performer.decide(heard_until, &mut |rows| model.run(rows), &mut self.decided)?;
        for &(at, event) in &self.decided {
            let midi = match event {
                LiveEvent::NoteOn { key, velocity } => Midi::NoteOn { key, velocity },
                LiveEvent::NoteOff { key } => Midi::NoteOff { key },
                LiveEvent::Pedal { down } => Midi::Pedal { down },
            };
            let time = at + LATENCY;
            let place = pending.partition_point(|e| e.time <= time);
            pending.insert(place, Timed { time, generation: self.generation, midi });
        }
        Ok(())
    }

    /// Every event before this performance-clock time is decided once the part is heard before
    /// `heard_until`.
    pub fn decided_until(heard_until: f64) -> f64 {
        LivePerformer::decided_until(heard_until) + LATENCY
    }
}
