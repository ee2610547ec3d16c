//! What a model of format 2 sees beside the events, derived from the events alone: the music-state
//! features, the key control, and the grammar (which events can follow). The trainer has the same
//! definitions in Python (`models/pianoforte_train/features.py`), checked against the vectors this
//! crate writes into `docs/spec/vectors.json`; the layout is in `docs/spec/events.json`.
//!
//! **State features** (`STATE_SIZE` floats) describe the music state after every event so far
//! (the state in which the next event is drawn): 88 keys down (1.0 each, with the 5 s stuck-note
//! guard), the pedal, the current velocity bin (one-hot, 32) and the time since the last NOTE_ON
//! (one-hot of 12 buckets: the number of `SINCE_ONSET_EDGES` `<=` the steps since it, or
//! `SINCE_ONSET_NONE` before the first NOTE_ON).
//!
//! **Key control** (12 floats): the pitch-class histogram (C = 0) of the NOTE_ONs whose time lies
//! in `[t - 400, t + 400)` steps around the time `t` of the event to predict, divided by their
//! number; all zeros means "no key".
//!
//! **Grammar**: a stream the codec writes never has
//! - anything but a NOTE_ON right after a VELOCITY (a VELOCITY is written only before a NOTE_ON);
//! - a NOTE_ON of a key that is down, a NOTE_OFF of a key that is neither down nor *due* (released
//!   by the stuck-note guard, its NOTE_OFF not yet seen);
//! - a TIME_SHIFT right after a TIME_SHIFT shorter than the longest (gaps are written longest first);
//! - a VELOCITY equal to the current bin once a NOTE_ON was played (only changes are written);
//! - PEDAL down while down, PEDAL up while up.
//!
//! A format-2 model is a distribution over the events the grammar allows: training, evaluation and
//! sampling all mask the rest.

use super::events::{Event, MAX_SHIFT_STEPS, PITCHES, VELOCITY_BINS, VOCABULARY};
use super::state::{Change, MusicState, Release};

pub const KEYS_OFFSET: usize = 0;
pub const PEDAL_OFFSET: usize = KEYS_OFFSET + PITCHES as usize;
pub const VELOCITY_OFFSET: usize = PEDAL_OFFSET + 1;
pub const SINCE_ONSET_OFFSET: usize = VELOCITY_OFFSET + VELOCITY_BINS as usize;
/// Bucket edges of the time since the last NOTE_ON, in steps.
pub const SINCE_ONSET_EDGES: [i64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/// The bucket before the first NOTE_ON.
pub const SINCE_ONSET_NONE: usize = SINCE_ONSET_EDGES.len() + 1;
pub const STATE_SIZE: usize = SINCE_ONSET_OFFSET + SINCE_ONSET_NONE + 1;
const _: () = assert!(STATE_SIZE == 133);

/// The key control: a pitch-class histogram.
pub const KEY_SIZE: usize = 12;
/// The key control's window is `[t - half, t + half)` steps (8 s in all).
pub const KEY_HALF_WINDOW_STEPS: i64 = 400;

/// The bucket of the time since the last NOTE_ON.
pub fn since_onset_bucket(steps: i64) -> usize {
    SINCE_ONSET_EDGES.iter().filter(|&&edge| edge <= steps).count()
}

/// Writes the state features of `state` into `out` (`STATE_SIZE` values). Allocation-free.
pub fn write_state_features(state: &MusicState, out: &mut [f32]) {
    out.fill(0.0);
    for (pitch, _) in state.keys_down() {
        out[KEYS_OFFSET + pitch.index()] = 1.0;
    }
    out[PEDAL_OFFSET] = if state.pedal_down() { 1.0 } else { 0.0 };
    out[VELOCITY_OFFSET + state.velocity().get() as usize] = 1.0;
    let bucket = state.last_onset().map_or(SINCE_ONSET_NONE, |at| since_onset_bucket(state.step() - at));
    out[SINCE_ONSET_OFFSET + bucket] = 1.0;
}

/// The key control at every event of a whole document of token ids (a histogram, not dropped).
pub fn key_histograms(ids: &[u16]) -> Vec<[f32; KEY_SIZE]> {
    let v = &VOCABULARY;
    let mut times = Vec::with_capacity(ids.len());
    let mut now = 0i64;
    for &id in ids {
        times.push(now);
        if (v.time_shift_offset..v.velocity_offset).contains(&id) {
            now += (id - v.time_shift_offset + 1) as i64;
        }
    }
    // Onsets in time order with running pitch-class counts.
    let mut onsets = Vec::new();
    let mut counts = vec![[0u32; KEY_SIZE]];
    for (&id, &time) in ids.iter().zip(&times) {
        if id < v.note_off_offset {
            let mut row = *counts.last().expect("starts with zeros");
            row[(id as usize + v.min_pitch as usize) % KEY_SIZE] += 1;
            counts.push(row);
            onsets.push(time);
        }
    }
    times
        .iter()
        .map(|&t| {
            let lo = onsets.partition_point(|&o| o < t - KEY_HALF_WINDOW_STEPS);
            let hi = onsets.partition_point(|&o| o < t + KEY_HALF_WINDOW_STEPS);
            let mut out = [0.0f32; KEY_SIZE];
            let total = (hi - lo) as f64;
            if total > 0.0 {
                for (pc, value) in out.iter_mut().enumerate() {
                    *value = ((counts[hi][pc] - counts[lo][pc]) as f64 / total) as f32;
                }
            }
            out
        })
        .collect()
}

/// The music state plus what the grammar needs: the previous event and the keys the guard
/// released whose NOTE_OFF has not come yet.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grammar {
    state: MusicState,
    due: u128,
    prev: Option<Event>,
}

impl Grammar {
    pub fn new() -> Grammar {
        Grammar::default()
    }

    /// Feeds one event.
    pub fn apply(&mut self, event: Event) {
        let due = &mut self.due;
        self.state.apply(event, |change| {
            if let Change::Release { pitch, why: Release::Guard, .. } = change {
                *due |= 1 << pitch.index();
            }
        });
        if let Event::NoteOn(pitch) | Event::NoteOff(pitch) = event {
            self.due &= !(1 << pitch.index());
        }
        self.prev = Some(event);
    }

    pub fn state(&self) -> &MusicState {
        &self.state
    }

    /// The previous event (None at the start).
    pub fn prev(&self) -> Option<Event> {
        self.prev
    }

    /// Whether `event` can follow.
    pub fn allows(&self, event: Event) -> bool {
        allows(&self.state, self.prev, self.due, event)
    }

    /// Sets the logits of every event that cannot follow to -inf (`logits` has one per event id).
    pub fn mask(&self, logits: &mut [f32]) {
        for (id, logit) in logits.iter_mut().enumerate().take(VOCABULARY.size as usize) {
            if !Event::from_id(id as u16).is_some_and(|e| self.allows(e)) {
                *logit = f32::NEG_INFINITY;
            }
        }
    }
}

/// The grammar's rule for one event, given the state, the previous event and the due keys (bit =
/// key index). The engine uses it with its own state.
pub fn allows(state: &MusicState, prev: Option<Event>, due: u128, event: Event) -> bool {
    if matches!(prev, Some(Event::Velocity(_))) && !matches!(event, Event::NoteOn(_)) {
        return false;
    }
    match event {
        Event::NoteOn(pitch) => !state.is_down(pitch),
        Event::NoteOff(pitch) => state.is_down(pitch) || due & (1 << pitch.index()) != 0,
        Event::TimeShift(_) => !matches!(prev, Some(Event::TimeShift(s)) if s.steps() < MAX_SHIFT_STEPS),
        Event::Velocity(bin) => state.last_onset().is_none() || bin != state.velocity(),
        Event::PedalDown => !state.pedal_down(),
        Event::PedalUp => state.pedal_down(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Pitch, Shift, VelocityBin, from_text};

    fn grammar(text: &str) -> Grammar {
        let mut g = Grammar::new();
        for event in from_text(text).unwrap() {
            g.apply(event);
        }
        g
    }

    #[test]
    fn features_follow_the_state() {
        let g = grammar("VEL 100\nON 60\nPEDAL down\nSHIFT 50ms\n");
        let mut out = [9.0f32; STATE_SIZE];
        write_state_features(g.state(), &mut out);
        let on: Vec<usize> = out.iter().enumerate().filter(|(_, v)| **v != 0.0).map(|(i, _)| i).collect();
        let vel = VelocityBin::of_midi(100).get() as usize;
        assert_eq!(on, [60 - 21, PEDAL_OFFSET, VELOCITY_OFFSET + vel, SINCE_ONSET_OFFSET + 3]);
        let mut fresh = [0.0f32; STATE_SIZE];
        write_state_features(&MusicState::new(), &mut fresh);
        assert_eq!(fresh[SINCE_ONSET_OFFSET + SINCE_ONSET_NONE], 1.0);
        assert_eq!((since_onset_bucket(0), since_onset_bucket(1), since_onset_bucket(511), since_onset_bucket(512)), (0, 1, 9, 10));
    }

    #[test]
    fn the_grammar_rules() {
        let c4 = Pitch::new(60).unwrap();
        let g = grammar("VEL 100\n");
        assert!(g.allows(Event::NoteOn(c4)) && !g.allows(Event::PedalDown) && !g.allows(Event::TimeShift(Shift::LONGEST)));
        let g = grammar("VEL 100\nON 60\nSHIFT 30ms\n");
        assert!(!g.allows(Event::NoteOn(c4)) && g.allows(Event::NoteOff(c4)));
        assert!(!g.allows(Event::TimeShift(Shift::LONGEST)), "after a short shift");
        assert!(!g.allows(Event::Velocity(VelocityBin::of_midi(100))) && g.allows(Event::Velocity(VelocityBin::of_midi(20))));
        assert!(!g.allows(Event::PedalUp) && g.allows(Event::PedalDown));
        assert!(grammar("SHIFT 1000ms\n").allows(Event::TimeShift(Shift::new(3).unwrap())));
        assert!(Grammar::new().allows(Event::Velocity(VelocityBin::INITIAL)), "before the first NOTE_ON");
        // A key the guard released may still get its NOTE_OFF, once.
        let g = grammar("ON 60\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 10ms\n");
        assert!(!g.state().is_down(c4) && g.allows(Event::NoteOff(c4)));
        let mut g2 = g.clone();
        g2.apply(Event::NoteOff(c4));
        assert!(!g2.allows(Event::NoteOff(c4)));
        let mut logits = [0.0f32; 310];
        g.mask(&mut logits);
        assert_eq!(logits.iter().filter(|x| x.is_finite()).count(), 88 + 1 + 31 + 1, "ONs, the due OFF, velocities, pedal down");
    }

    #[test]
    fn key_histograms_count_onsets_in_the_window() {
        let ids =
            crate::codec::to_ids(&from_text("ON 60\nON 64\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nON 62\n").unwrap());
        let h = key_histograms(&ids);
        assert_eq!(h[0][0], 0.5);
        assert_eq!(h[0][4], 0.5);
        // The onsets at 0 are 4 s earlier: still inside the 8 s window.
        assert_eq!((h[6][0], h[6][2], h[6][4]), ((1.0f64 / 3.0) as f32, (1.0f64 / 3.0) as f32, (1.0f64 / 3.0) as f32));
    }
}
