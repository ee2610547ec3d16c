//! What a stream of events means at each moment: the keys down (note pairing), the pedal, the
//! current velocity bin, the clock in 10 ms steps and the stuck-note guard. This is the one
//! implementation; decoding, the MIDI reader, the engine's guards, the plugin's worker, clips and
//! the editor all use it. The trainer has the same machine in Python, checked against the shared
//! vectors in `docs/spec/vectors.json`.

use super::events::{Event, Pitch, STEPS_PER_SECOND, VelocityBin};

/// The stuck-note guard: a key still down this long after its onset is released there.
pub const MAX_NOTE_SECONDS: f64 = 5.0;
pub const MAX_NOTE_STEPS: i64 = 500;
const _: () = assert!(MAX_NOTE_STEPS as f64 == MAX_NOTE_SECONDS * STEPS_PER_SECOND);

/// Which of the 128 MIDI keys are down, each with what it was pressed with. Pressing a key that
/// is already down hands back the earlier press: a repeated NOTE_ON ends the earlier note.
#[derive(Debug, Clone, PartialEq)]
pub struct Keys<T> {
    held: [Option<T>; 128],
    count: usize,
}

impl<T: Copy> Default for Keys<T> {
    fn default() -> Self {
        Keys { held: [None; 128], count: 0 }
    }
}

impl<T: Copy> Keys<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Presses `key` with `value`; returns the earlier press if the key was already down.
    pub fn press(&mut self, key: u8, value: T) -> Option<T> {
        let earlier = self.held[key as usize & 0x7f].replace(value);
        self.count += earlier.is_none() as usize;
        earlier
    }

    /// Releases `key`; returns its press, or None if it was up.
    pub fn release(&mut self, key: u8) -> Option<T> {
        let press = self.held[key as usize & 0x7f].take();
        self.count -= press.is_some() as usize;
        press
    }

    pub fn get(&self, key: u8) -> Option<&T> {
        self.held[key as usize & 0x7f].as_ref()
    }

    pub fn is_down(&self, key: u8) -> bool {
        self.get(key).is_some()
    }

    /// How many keys are down.
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The keys down with their presses, lowest key first.
    pub fn iter(&self) -> impl Iterator<Item = (u8, T)> + '_ {
        self.held.iter().enumerate().filter_map(|(key, press)| press.map(|p| (key as u8, p)))
    }

    /// Releases every key, lowest first, handing each to `released`.
    pub fn release_all(&mut self, mut released: impl FnMut(u8, T)) {
        for key in 0..128u8 {
            if let Some(press) = self.release(key) {
                released(key, press);
            }
        }
    }
}

/// A key down in the music state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyDown {
    /// The step of its NOTE_ON.
    pub onset: i64,
    pub velocity: VelocityBin,
}

/// Why a key came up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Its NOTE_OFF.
    NoteOff,
    /// A new NOTE_ON of the same key (the new note starts at the same step).
    Restruck,
    /// The stuck-note guard, `MAX_NOTE_STEPS` after the onset.
    Guard,
}

/// What an event changed, in time order; steps are the state's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Press { pitch: Pitch, at: i64, velocity: VelocityBin },
    Release { pitch: Pitch, at: i64, press: KeyDown, why: Release },
    Pedal { down: bool, at: i64 },
}

/// The streaming music state, fed one event at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct MusicState {
    step: i64,
    velocity: VelocityBin,
    pedal_down: bool,
    keys: Keys<KeyDown>,
    last_onset: Option<i64>,
    max_note_steps: i64,
}

impl Default for MusicState {
    fn default() -> Self {
        MusicState::with_max_note_steps(MAX_NOTE_STEPS)
    }
}

impl MusicState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A state whose stuck-note guard releases keys after `steps` (the engine's own limit).
    pub fn with_max_note_steps(steps: i64) -> Self {
        MusicState {
            step: 0,
            velocity: VelocityBin::INITIAL,
            pedal_down: false,
            keys: Keys::new(),
            last_onset: None,
            max_note_steps: steps.max(1),
        }
    }

    /// Feeds one event; `changed` hears what it did to keys and pedal, in time order. A
    /// TIME_SHIFT first releases, in time order, every key that reaches the guard.
    pub fn apply(&mut self, event: Event, mut changed: impl FnMut(Change)) {
        match event {
            Event::TimeShift(shift) => {
                self.step += shift.steps() as i64;
                while let Some(pitch) = self.next_due() {
                    let press = self.keys.release(pitch.midi()).expect("due keys are down");
                    let at = press.onset + self.max_note_steps;
                    changed(Change::Release { pitch, at, press, why: Release::Guard });
                }
            }
            Event::Velocity(bin) => self.velocity = bin,
            Event::NoteOn(pitch) => {
                let press = KeyDown { onset: self.step, velocity: self.velocity };
                if let Some(earlier) = self.keys.press(pitch.midi(), press) {
                    changed(Change::Release { pitch, at: self.step, press: earlier, why: Release::Restruck });
                }
                self.last_onset = Some(self.step);
                changed(Change::Press { pitch, at: self.step, velocity: self.velocity });
            }
            Event::NoteOff(pitch) => {
                if let Some(press) = self.keys.release(pitch.midi()) {
                    changed(Change::Release { pitch, at: self.step, press, why: Release::NoteOff });
                }
            }
            Event::PedalDown | Event::PedalUp => {
                let down = event == Event::PedalDown;
                if down != self.pedal_down {
                    self.pedal_down = down;
                    changed(Change::Pedal { down, at: self.step });
                }
            }
        }
    }

    /// The key that reached the guard first (lowest pitch among equals), if any.
    fn next_due(&self) -> Option<Pitch> {
        let due = self.keys.iter().filter(|(_, press)| self.step - press.onset >= self.max_note_steps);
        due.min_by_key(|&(key, press)| (press.onset, key)).and_then(|(key, _)| Pitch::new(key))
    }

    /// Feeds events, ignoring the changes.
    pub fn extend(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.apply(event, |_| {});
        }
    }

    /// The clock: steps of 10 ms since the start.
    pub fn step(&self) -> i64 {
        self.step
    }

    pub fn seconds(&self) -> f64 {
        self.step as f64 / STEPS_PER_SECOND
    }

    /// The velocity bin the next NOTE_ON gets.
    pub fn velocity(&self) -> VelocityBin {
        self.velocity
    }

    pub fn pedal_down(&self) -> bool {
        self.pedal_down
    }

    pub fn keys(&self) -> &Keys<KeyDown> {
        &self.keys
    }

    /// The keys down, lowest first.
    pub fn keys_down(&self) -> impl Iterator<Item = (Pitch, KeyDown)> + '_ {
        self.keys.iter().filter_map(|(key, press)| Some((Pitch::new(key)?, press)))
    }

    pub fn is_down(&self, pitch: Pitch) -> bool {
        self.keys.is_down(pitch.midi())
    }

    /// The step of the latest NOTE_ON.
    pub fn last_onset(&self) -> Option<i64> {
        self.last_onset
    }

    pub fn max_note_steps(&self) -> i64 {
        self.max_note_steps
    }

    /// Changes the guard; keys already past it are released by the next TIME_SHIFT.
    pub fn set_max_note_steps(&mut self, steps: i64) {
        self.max_note_steps = steps.max(1);
    }

    /// How many steps may pass before the first key reaches the guard (None: no key down).
    pub fn steps_to_guard(&self) -> Option<i64> {
        self.keys.iter().map(|(_, press)| self.max_note_steps - (self.step - press.onset)).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::from_text;

    fn changes(text: &str) -> (MusicState, Vec<Change>) {
        let mut state = MusicState::new();
        let mut seen = Vec::new();
        for event in from_text(text).unwrap() {
            state.apply(event, |c| seen.push(c));
        }
        (state, seen)
    }

    fn pitch(p: u8) -> Pitch {
        Pitch::new(p).unwrap()
    }

    #[test]
    fn keys_pair_presses_and_releases() {
        let mut keys = Keys::new();
        assert_eq!(keys.press(60, 1), None);
        assert_eq!(keys.press(60, 2), Some(1));
        assert_eq!(keys.press(200, 3), None, "keys are 7-bit: 200 is key 72");
        assert_eq!(keys.count(), 2);
        assert_eq!(keys.release(61), None);
        assert_eq!(keys.release(60), Some(2));
        assert_eq!(keys.iter().collect::<Vec<_>>(), [(72, 3)]);
        let mut released = Vec::new();
        keys.release_all(|k, v| released.push((k, v)));
        assert_eq!((released, keys.count()), (vec![(72, 3)], 0));
    }

    #[test]
    fn a_repeated_note_on_ends_the_earlier_note_at_the_same_step() {
        let (state, seen) = changes("VEL 100\nON 60\nSHIFT 100ms\nON 60\nOFF 61\n");
        let loud = VelocityBin::of_midi(100);
        assert_eq!(
            seen,
            [
                Change::Press { pitch: pitch(60), at: 0, velocity: loud },
                Change::Release { pitch: pitch(60), at: 10, press: KeyDown { onset: 0, velocity: loud }, why: Release::Restruck },
                Change::Press { pitch: pitch(60), at: 10, velocity: loud },
            ]
        );
        assert_eq!((state.keys().count(), state.last_onset(), state.step()), (1, Some(10), 10));
    }

    #[test]
    fn the_guard_releases_keys_in_time_order_at_their_limit() {
        let (state, seen) = changes("ON 64\nSHIFT 1000ms\nON 60\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\n");
        let releases: Vec<_> =
            seen.iter().filter_map(|c| if let Change::Release { pitch, at, .. } = c { Some((pitch.midi(), *at)) } else { None }).collect();
        assert_eq!(releases, [(64, 500), (60, 600)]);
        assert!(state.keys().is_empty());
        // Two keys due in the same shift: the earlier onset first, whatever the pitch.
        let (_, seen) =
            changes("ON 70\nSHIFT 10ms\nON 50\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\nSHIFT 1000ms\n");
        let order: Vec<_> =
            seen.iter().filter_map(|c| if let Change::Release { pitch, .. } = c { Some(pitch.midi()) } else { None }).collect();
        assert_eq!(order, [70, 50]);
    }

    #[test]
    fn only_real_pedal_changes_are_reported() {
        let (state, seen) = changes("PEDAL up\nPEDAL down\nPEDAL down\nSHIFT 20ms\nPEDAL up\n");
        assert_eq!(seen, [Change::Pedal { down: true, at: 0 }, Change::Pedal { down: false, at: 2 }]);
        assert!(!state.pedal_down());
    }

    #[test]
    fn steps_to_guard_is_the_room_left_before_the_first_release() {
        let (state, _) = changes("ON 60\nSHIFT 1000ms\nON 62\nSHIFT 300ms\n");
        assert_eq!(state.steps_to_guard(), Some(500 - 130));
        assert_eq!(MusicState::new().steps_to_guard(), None);
        assert_eq!(MusicState::new().velocity(), VelocityBin::of_midi(64));
    }
}
