//! The note-density control: what the model is conditioned on, and how music maps to it.
//!
//! The time of event k is the sum of the TIME_SHIFT steps strictly before it. Its density is the
//! number of NOTE_ONs of the document whose time lies in `[time_k - W/2, time_k + W/2)` (W =
//! `window_steps`, 400 steps = 4 s), divided by the window in seconds: notes per second. The bin is
//! the number of edges `<=` the density; the control vector is the bin's one-hot, or the
//! `no_control_index` one-hot for "no control". This mirrors `pianoforte_train.vocab.density_bins`.

use crate::codec::VOCABULARY;
use crate::model::ControlCard;

/// The density control of a model (from its card).
#[derive(Debug, Clone, PartialEq)]
pub struct DensityControl {
    edges: Vec<f64>,
    half_window: i64,
    window_seconds: f64,
    size: usize,
    no_control: usize,
}

/// What the engine is asked to play: a density in notes per second, or nothing in particular.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Control {
    #[default]
    Off,
    NotesPerSecond(f32),
}

impl DensityControl {
    pub fn from_card(card: &ControlCard) -> DensityControl {
        DensityControl {
            edges: card.edges.clone(),
            half_window: card.window_steps / 2,
            window_seconds: card.window_steps as f64 / card.steps_per_second,
            size: card.size,
            no_control: card.no_control_index,
        }
    }

    /// Length of a control vector.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The index meaning "no control".
    pub fn no_control(&self) -> usize {
        self.no_control
    }

    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// The bin of a density in notes per second: the number of edges `<=` it.
    pub fn bin_of(&self, notes_per_second: f64) -> usize {
        self.edges.partition_point(|&e| e <= notes_per_second)
    }

    /// The control index for a setting (a density bin, or the no-control index).
    pub fn index_of(&self, control: Control) -> usize {
        match control {
            Control::Off => self.no_control,
            Control::NotesPerSecond(d) => self.bin_of(d as f64),
        }
    }

    /// The lowest density of a bin (its lower edge; 0 for bin 0) and its upper edge, if any.
    pub fn bin_range(&self, bin: usize) -> (f64, Option<f64>) {
        let lo = if bin == 0 { 0.0 } else { self.edges[bin - 1] };
        (lo, self.edges.get(bin).copied())
    }

    /// Writes the one-hot vector of control index `index` into `out` (length `size`).
    pub fn write_one_hot(&self, index: usize, out: &mut [f32]) {
        out.fill(0.0);
        out[index] = 1.0;
    }

    /// The density bin of every event of a whole document of token ids.
    pub fn bins(&self, ids: &[u16]) -> Vec<usize> {
        let times = event_times(ids);
        let on_times: Vec<i64> = ids
            .iter()
            .zip(&times)
            .filter(|&(&id, _)| id < VOCABULARY.note_off_offset)
            .map(|(_, &t)| t)
            .collect();
        times
            .iter()
            .map(|&t| {
                let hi = on_times.partition_point(|&x| x < t + self.half_window);
                let lo = on_times.partition_point(|&x| x < t - self.half_window);
                self.bin_of((hi - lo) as f64 / self.window_seconds)
            })
            .collect()
    }
}

/// Steps of 10 ms a token moves time on by (0 for everything but TIME_SHIFT).
pub fn shift_steps(id: u16) -> i64 {
    let v = &VOCABULARY;
    if (v.time_shift_offset..v.velocity_offset).contains(&id) { (id - v.time_shift_offset + 1) as i64 } else { 0 }
}

/// The time of every event in steps: the sum of the shifts strictly before it.
pub fn event_times(ids: &[u16]) -> Vec<i64> {
    let mut now = 0;
    ids.iter()
        .map(|&id| {
            let t = now;
            now += shift_steps(id);
            t
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Event;

    fn contract() -> DensityControl {
        DensityControl::from_card(&ControlCard {
            kind: "note_density".into(),
            window_steps: 400,
            steps_per_second: 100.0,
            edges: vec![1., 2., 3., 4., 5., 6., 8., 10., 12., 15., 18., 22., 27., 33.],
            size: 16,
            no_control_index: 15,
        })
    }

    #[test]
    fn bins_follow_the_edges() {
        let c = contract();
        assert_eq!(c.bin_of(0.0), 0);
        assert_eq!(c.bin_of(0.99), 0);
        assert_eq!(c.bin_of(1.0), 1);
        assert_eq!(c.bin_of(7.9), 6);
        assert_eq!(c.bin_of(8.0), 7);
        assert_eq!(c.bin_of(100.0), 14);
        assert_eq!(c.index_of(Control::Off), 15);
        assert_eq!(c.bin_range(7), (8.0, Some(10.0)));
    }

    #[test]
    fn density_counts_onsets_in_a_centred_window() {
        // 8 notes 0.5 s apart (t = 0, 0.5, ..., 3.5 s), then silence: at t = 0 the window
        // [-2 s, 2 s) holds 4 onsets (1 note/s); at 2 s, [0, 4 s) holds all 8 (2 notes/s).
        let mut events = Vec::new();
        for _ in 0..8 {
            events.push(Event::NoteOn(60));
            events.push(Event::NoteOff(60));
            events.push(Event::TimeShift(50));
        }
        let ids = crate::codec::to_ids(&events);
        let bins = contract().bins(&ids);
        assert_eq!(bins[0], 1); // 4 / 4 s = 1 note/s
        assert_eq!(bins[12], 2); // the 5th note at 2 s: 8 / 4 s
        assert_eq!(event_times(&ids)[12], 200);
    }
}
