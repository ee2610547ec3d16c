//! The note-density control: what the model is conditioned on, and how music maps to it.
//!
//! The time of event k is the sum of the TIME_SHIFT steps strictly before it. Its density is the
//! number of NOTE_ONs of the document whose time lies in `[time_k - W/2, time_k + W/2)` (W =
//! `window_steps`, 400 steps = 4 s), divided by the window in seconds: notes per second. The bin is
//! the number of edges `<=` the density; the control vector is the bin's one-hot, or the
//! `no_control_index` one-hot for "no control". This mirrors `pianoforte_train.vocab.density_bins`.

use crate::codec::density;
use crate::engine::model::ControlCard;

/// The density control of a model (from its card).
#[derive(Debug, Clone, PartialEq)]
pub struct DensityControl {
    edges: Vec<f64>,
    half_window: i64,
    window_seconds: f64,
    size: usize,
    no_control: usize,
    /// Notes per second the model actually plays with each bin's control (the card's
    /// `density_calibration.measured_notes_per_second`); requests go to the nearest (in log).
    measured: Option<Vec<f64>>,
}

/// What the engine is asked to play: a density in notes per second, or nothing in particular.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Control {
    #[default]
    Off,
    NotesPerSecond(f32),
}

/// What key the engine is asked to play in (format-2 models; format-1 models ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum KeyControl {
    /// The model's own choice, held: the key control is off for its first [`KEY_CHOICE_ONSETS`]
    /// notes (a primer's included); then the card key that best fits them holds for the rest of
    /// the performance, as a pianist stays in the key they began in. Left unconditioned, the
    /// model wanders between keys (key clarity 0.69-0.72 against MAESTRO's 0.77).
    #[default]
    Any,
    /// No key at all: the key control stays off (all zeros), the unconditioned model.
    Off,
    /// A key of the model card's table (0..12 C major .. B major, 12..24 C minor .. B minor).
    Key(u8),
    /// A pitch-class histogram (C = 0), e.g. of what a player played; normalised to sum 1.
    PitchClasses([f32; 12]),
}

/// How many note onsets `KeyControl::Any` hears before it settles on a key.
pub const KEY_CHOICE_ONSETS: u32 = 16;

impl KeyControl {
    /// Writes the control vector into `out` (12 values); `table` gives the vectors of named keys.
    /// `Any` writes zeros: the engine writes its chosen key once it has one.
    pub fn write(&self, table: impl Fn(usize) -> Option<[f32; 12]>, out: &mut [f32]) {
        out.fill(0.0);
        match *self {
            KeyControl::Any | KeyControl::Off => {}
            KeyControl::Key(k) => {
                if let Some(v) = table(k as usize) {
                    out.copy_from_slice(&v);
                }
            }
            KeyControl::PitchClasses(h) => {
                let total: f32 = h.iter().map(|x| x.max(0.0)).sum();
                if total > 0.0 {
                    for (o, x) in out.iter_mut().zip(h) {
                        *o = x.max(0.0) / total;
                    }
                }
            }
        }
    }
}

/// The key of `table` whose vector best fits a pitch-class histogram (C = 0): the highest Pearson
/// correlation, the first on a tie. None when the histogram or every key vector is flat.
pub fn best_fitting_key(pitch_classes: &[f32; 12], table: &[[f32; 12]]) -> Option<usize> {
    let mut best: Option<(f32, usize)> = None;
    for (k, key) in table.iter().enumerate() {
        if let Some(r) = correlation(pitch_classes, key)
            && best.is_none_or(|(b, _)| r > b)
        {
            best = Some((r, k));
        }
    }
    best.map(|(_, k)| k)
}

fn correlation(a: &[f32; 12], b: &[f32; 12]) -> Option<f32> {
    let (mean_a, mean_b) = (a.iter().sum::<f32>() / 12.0, b.iter().sum::<f32>() / 12.0);
    let (mut ab, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x - mean_a, y - mean_b);
        (ab, aa, bb) = (ab + x * y, aa + x * x, bb + y * y);
    }
    (aa > 0.0 && bb > 0.0).then(|| ab / (aa * bb).sqrt())
}

impl DensityControl {
    pub fn from_card(card: &ControlCard) -> DensityControl {
        DensityControl {
            edges: card.edges.clone(),
            half_window: card.window_steps / 2,
            window_seconds: card.window_steps as f64 / card.steps_per_second,
            size: card.size,
            no_control: card.no_control_index,
            measured: None,
        }
    }

    /// The density control of a model card, with its calibration when the card has one (one
    /// positive number per density bin).
    pub fn from_model_card(card: &crate::engine::model::ModelCard) -> DensityControl {
        let mut control = DensityControl::from_card(&card.control);
        let measured: Option<Vec<f64>> = card
            .extra
            .get("density_calibration")
            .and_then(|c| c.get("measured_notes_per_second"))
            .and_then(|m| m.as_array())
            .and_then(|m| m.iter().map(|v| v.as_f64()).collect());
        control.measured = measured.filter(|m| m.len() == control.edges.len() + 1 && m.iter().all(|&x| x.is_finite() && x > 0.0));
        control
    }

    /// Whether requests go through a measured calibration.
    pub fn is_calibrated(&self) -> bool {
        self.measured.is_some()
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
        density::bin_of(&self.edges, notes_per_second)
    }

    /// The control index for a setting (a density bin, or the no-control index).
    pub fn index_of(&self, control: Control) -> usize {
        match control {
            Control::Off => self.no_control,
            Control::NotesPerSecond(d) => match &self.measured {
                // The bin whose measured output is nearest the request, in log notes/s.
                Some(measured) => {
                    let want = (d as f64).max(0.05).ln();
                    let mut best = (f64::INFINITY, 0);
                    for (bin, &m) in measured.iter().enumerate() {
                        let distance = (m.ln() - want).abs();
                        if distance < best.0 {
                            best = (distance, bin);
                        }
                    }
                    best.1
                }
                None => self.bin_of(d as f64),
            },
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
        density::density_bins(ids, &self.edges, 2 * self.half_window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> DensityControl {
        DensityControl::from_card(&ControlCard {
            kind: "note_density".into(),
            window_steps: density::DENSITY_WINDOW_STEPS,
            steps_per_second: 100.0,
            edges: density::DENSITY_EDGES.to_vec(),
            size: density::CONTROL_SIZE,
            no_control_index: density::NO_CONTROL_INDEX,
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

    /// The 24 keys as rotations of two profiles (major, minor), in the card's order.
    fn rotated_table(major: [f32; 12], minor: [f32; 12]) -> Vec<[f32; 12]> {
        let rotate = |p: [f32; 12], tonic: usize| std::array::from_fn(|pc| p[(pc + 12 - tonic) % 12]);
        (0..12).map(|t| rotate(major, t)).chain((0..12).map(|t| rotate(minor, t))).collect()
    }

    #[test]
    fn the_best_fitting_key_of_a_scale_is_its_key() {
        // Krumhansl-Kessler profiles: an independent stand-in for the card's measured vectors.
        let major = [6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88];
        let minor = [6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17];
        let table = rotated_table(major, minor);
        // D minor: D F A (tonic triad, twice), with E G Bb C#.
        let mut d_minor = [0.0f32; 12];
        for (pc, n) in [(2, 4.0), (5, 3.0), (9, 3.0), (4, 1.0), (7, 1.0), (10, 1.0), (1, 1.0)] {
            d_minor[pc] = n;
        }
        assert_eq!(best_fitting_key(&d_minor, &table), Some(14));
        // Eb major: Eb G Bb, with Ab and D.
        let mut e_flat = [0.0f32; 12];
        for (pc, n) in [(3, 4.0), (7, 3.0), (10, 3.0), (8, 1.0), (2, 1.0)] {
            e_flat[pc] = n;
        }
        assert_eq!(best_fitting_key(&e_flat, &table), Some(3));
        assert_eq!(best_fitting_key(&[0.0; 12], &table), None, "nothing heard: no key");
        assert_eq!(best_fitting_key(&[1.0; 12], &table), None, "all twelve alike: no key");
        assert_eq!(best_fitting_key(&d_minor, &[[0.0; 12]; 24]), None, "a table without keys (format 1)");
    }
}
