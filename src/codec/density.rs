//! The note-density control as a property of the music: the density of event k is the number of
//! NOTE_ONs whose time lies in `[time_k - W/2, time_k + W/2)` (W = 400 steps = 4 s), divided by
//! the window in seconds; its bin is the number of edges `<=` that density. The time of event k
//! is the sum of the TIME_SHIFT steps strictly before it. Models carry their own edges in their
//! card; these are the ones the trainer uses for new models (written to `docs/spec/events.json`).

use super::events::{STEPS_PER_SECOND, VOCABULARY};

/// Bin edges in notes per second.
pub const DENSITY_EDGES: [f64; 14] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 18.0, 22.0, 27.0, 33.0];
/// The window, in steps, centred on each event.
pub const DENSITY_WINDOW_STEPS: i64 = 400;
/// The control vector: one-hot of the density bin, or of the last index for "no control".
pub const CONTROL_SIZE: usize = DENSITY_EDGES.len() + 2;
pub const NO_CONTROL_INDEX: usize = CONTROL_SIZE - 1;

/// The bin of a density: the number of edges `<=` it.
pub fn bin_of(edges: &[f64], notes_per_second: f64) -> usize {
    edges.partition_point(|&e| e <= notes_per_second)
}

/// The density bin of every event of a whole document of token ids.
pub fn density_bins(ids: &[u16], edges: &[f64], window_steps: i64) -> Vec<usize> {
    let times = event_times(ids);
    let on_times: Vec<i64> = ids.iter().zip(&times).filter(|&(&id, _)| id < VOCABULARY.note_off_offset).map(|(_, &t)| t).collect();
    let (half, window_seconds) = (window_steps / 2, window_steps as f64 / STEPS_PER_SECOND);
    times
        .iter()
        .map(|&t| {
            let hi = on_times.partition_point(|&x| x < t + half);
            let lo = on_times.partition_point(|&x| x < t - half);
            bin_of(edges, (hi - lo) as f64 / window_seconds)
        })
        .collect()
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
    use crate::codec::{Event, Pitch, Shift};

    #[test]
    fn bins_follow_the_edges() {
        let bin = |d| bin_of(&DENSITY_EDGES, d);
        assert_eq!([bin(0.0), bin(0.99), bin(1.0), bin(7.9), bin(8.0), bin(100.0)], [0, 0, 1, 6, 7, 14]);
        assert_eq!((CONTROL_SIZE, NO_CONTROL_INDEX), (16, 15));
    }

    #[test]
    fn density_counts_onsets_in_a_centred_window() {
        // 8 notes 0.5 s apart (t = 0, 0.5, ..., 3.5 s), then silence: at t = 0 the window
        // [-2 s, 2 s) holds 4 onsets (1 note/s); at 2 s, [0, 4 s) holds all 8 (2 notes/s).
        let c4 = Pitch::new(60).unwrap();
        let events: Vec<Event> =
            (0..8).flat_map(|_| [Event::NoteOn(c4), Event::NoteOff(c4), Event::TimeShift(Shift::new(50).unwrap())]).collect();
        let ids = crate::codec::to_ids(&events);
        let bins = density_bins(&ids, &DENSITY_EDGES, DENSITY_WINDOW_STEPS);
        assert_eq!(bins[0], 1); // 4 / 4 s = 1 note/s
        assert_eq!(bins[12], 2); // the 5th note at 2 s: 8 / 4 s
        assert_eq!(bins[23], 1); // the last shift, at 3.5 s: [1.5 s, 5.5 s) holds 5 onsets
        assert_eq!(event_times(&ids)[12], 200);
    }
}
