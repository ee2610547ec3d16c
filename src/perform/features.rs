//! What the performance model sees of each score note: the one definition, used to write the
//! training tables (`pianoforte align`) and to perform (`pianoforte perform`). The trainer reads
//! the tables and never computes a feature itself.

use super::score::Score;
use super::stats::{mean_and_spread, median};

/// Bumped whenever a feature changes; the model card carries the version it was trained on.
pub const FEATURE_VERSION: u32 = 2;

/// The features of a note, in column order.
pub const FEATURES: [&str; 22] = [
    "pitch",
    "top_of_chord",
    "bottom_of_chord",
    "chord_size",
    "log_duration_beats",
    "log_ioi_next_beats",
    "log_ioi_previous_beats",
    "bar_position",
    "on_beat",
    "downbeat",
    "beat_fraction",
    "beats_per_bar",
    "log_tempo_change",
    "log_tempo",
    "pitch_against_neighbours",
    "local_density",
    "below_top",
    "piece_position",
    "top_line_interval",
    "rest_before_beats",
    "written_velocity",
    "written_dynamics",
];
pub const FEATURE_COUNT: usize = FEATURES.len();

/// Shortest length and gap in beats the features tell apart (a 128th note in 4/4).
const SHORTEST_BEATS: f64 = 1.0 / 32.0;
/// The gap before the first chord and after the last, in beats.
const EDGE_GAP_BEATS: f64 = 4.0;
/// Neighbours within this many beats count for the local pitch and density.
const NEIGHBOURHOOD_BEATS: f64 = 2.0;

/// Notes struck together in the score: `notes[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Chord {
    pub start: usize,
    pub end: usize,
}

/// The score's chords (notes with the same start), in order.
pub fn chords(score: &Score) -> Vec<Chord> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < score.notes.len() {
        let at = score.notes[start].start;
        let end = start + score.notes[start..].iter().take_while(|n| n.start == at).count();
        out.push(Chord { start, end });
        start = end;
    }
    out
}

/// One row of [`FEATURE_COUNT`] floats per note of `score`, in its order.
pub fn features(score: &Score) -> Vec<[f32; FEATURE_COUNT]> {
    let chords = chords(score);
    let notes = &score.notes;
    let median_bpm = median(score.notes.iter().map(|n| score.bpm_at(n.start)).collect());
    let beats = |quarters: f64, at: f64| quarters / score.place(at).beat_quarters;
    let top = |c: &Chord| notes[c.end - 1].pitch.midi() as f64;
    // Written dynamics, if the score has any: each velocity against the piece's mean.
    let (written_mean, written_spread) = mean_and_spread(notes.iter().map(|n| n.velocity as f64));
    let dynamics = written_spread > 0.0;
    let mut rows = Vec::with_capacity(notes.len());
    let mut window = 0..0;
    for (k, chord) in chords.iter().enumerate() {
        let at = notes[chord.start].start;
        let place = score.place(at);
        let gap = |other: Option<&Chord>| other.map(|o| (notes[o.start].start - at).abs());
        let next = gap(chords.get(k + 1)).map_or(EDGE_GAP_BEATS, |q| beats(q, at));
        let previous = k.checked_sub(1).map(|p| &chords[p]);
        let before = gap(previous).map_or(EDGE_GAP_BEATS, |q| beats(q, at));
        let sounding_until = previous.map_or(f64::NEG_INFINITY, |p| notes[p.start..p.end].iter().map(|n| n.end).fold(f64::MIN, f64::max));
        let rest = beats((at - sounding_until).clamp(0.0, EDGE_GAP_BEATS * place.beat_quarters), at);
        let reach = NEIGHBOURHOOD_BEATS * place.beat_quarters;
        while window.start < notes.len() && notes[window.start].start < at - reach {
            window.start += 1;
        }
        window.end = window.end.max(window.start);
        while window.end < notes.len() && notes[window.end].start <= at + reach {
            window.end += 1;
        }
        let neighbours = &notes[window.clone()];
        let mean_pitch = neighbours.iter().map(|n| n.pitch.midi() as f64).sum::<f64>() / neighbours.len().max(1) as f64;
        let fraction = place.beat_in_bar.fract();
        let top_interval = previous.map_or(0.0, |p| top(chord) - top(p));
        for (i, note) in notes[chord.start..chord.end].iter().enumerate() {
            let pitch = note.pitch.midi() as f64;
            let row = [
                (pitch - 60.0) / 24.0,
                (i + 1 == chord.end - chord.start) as u8 as f64,
                (i == 0) as u8 as f64,
                (chord.end - chord.start) as f64 / 8.0,
                beats(note.end - note.start, at).max(SHORTEST_BEATS).ln(),
                next.max(SHORTEST_BEATS).ln(),
                before.max(SHORTEST_BEATS).ln(),
                place.beat_in_bar / place.beats_per_bar as f64,
                (fraction < 1e-6) as u8 as f64,
                (place.beat_in_bar < 1e-6) as u8 as f64,
                fraction,
                place.beats_per_bar as f64 / 8.0,
                (score.bpm_at(at) / median_bpm).ln(),
                (median_bpm / 100.0).ln(),
                (pitch - mean_pitch) / 12.0,
                neighbours.len() as f64 / (2.0 * NEIGHBOURHOOD_BEATS) / 4.0,
                (top(chord) - pitch) / 24.0,
                k as f64 / chords.len() as f64,
                (top_interval / 12.0).clamp(-2.0, 2.0),
                rest / EDGE_GAP_BEATS,
                if dynamics { (note.velocity as f64 - written_mean) / 32.0 } else { 0.0 },
                dynamics as u8 as f64,
            ];
            rows.push(row.map(|x| x as f32));
        }
    }
    rows
}
