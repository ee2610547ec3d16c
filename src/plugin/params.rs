//! The plugin's parameters (automatable, with units) and its remembered settings.

use crate::codec::Pitch;
use nice_plug::prelude::*;
use std::sync::{Arc, Mutex};

/// What the plugin does with notes played into it (they always pass through).
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plays on its own; incoming notes only pass through.
    #[id = "free"]
    #[name = "Free"]
    Free,
    /// Listens while you play, then continues from what you played.
    #[id = "continue"]
    #[name = "Continue my playing"]
    Continue,
}

/// Density below this is "Auto" (the model chooses).
pub const DENSITY_AUTO_BELOW: f32 = 1.0;
const LOWEST_KEY: i32 = Pitch::LOWEST.midi() as i32;
const HIGHEST_KEY: i32 = Pitch::HIGHEST.midi() as i32;
const KEY_RANGE: IntRange = IntRange::Linear { min: LOWEST_KEY, max: HIGHEST_KEY };
pub const DENSITY_MAX: f32 = 30.0;

/// Note names like "C4" (middle C = 60) for the key range.
pub fn note_name(key: i32) -> String {
    const NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
    let key = key.clamp(0, 127);
    format!("{}{}", NAMES[(key % 12) as usize], key / 12 - 1)
}

/// Parses "C4", "c#4", "Bb3", "60".
pub fn parse_note_name(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return Some(n);
    }
    let mut chars = text.chars();
    let letter = chars.next()?.to_ascii_uppercase();
    let base = match letter {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let rest: String = chars.collect();
    let (accidental, octave) = if let Some(r) = rest.strip_prefix('#') {
        (1, r)
    } else if let Some(r) = rest.strip_prefix('b') {
        (-1, r)
    } else {
        (0, rest.as_str())
    };
    let octave: i32 = octave.trim().parse().ok()?;
    Some((octave + 1) * 12 + base + accidental)
}

#[derive(Params)]
pub struct PianoforteParams {
    /// Below 1 safer and more repetitive, above 1 more adventurous.
    #[id = "temperature"]
    pub temperature: FloatParam,
    /// Notes per second asked of the model; the lowest setting is "Auto".
    #[id = "density"]
    pub density: FloatParam,
    /// Play even while the host's transport stands still.
    #[id = "play"]
    pub play: BoolParam,
    #[id = "mode"]
    pub mode: EnumParam<Mode>,
    /// The performance's random seed; a new seed starts a new performance.
    #[id = "seed"]
    pub seed: IntParam,
    #[id = "velocity_min"]
    pub velocity_min: IntParam,
    #[id = "velocity_max"]
    pub velocity_max: IntParam,
    #[id = "key_low"]
    pub key_low: IntParam,
    #[id = "key_high"]
    pub key_high: IntParam,
    #[id = "bypass"]
    pub bypass: BoolParam,

    /// The clips folder ("" = "pianoforte clips" in the documents folder).
    #[persist = "clips-folder"]
    pub clips_folder: Arc<Mutex<String>>,
    /// A model file chosen by the user ("" = the built-in model).
    #[persist = "model-path"]
    pub model_path: Arc<Mutex<String>>,
    /// Seconds a clip holds (0 = the whole take).
    #[persist = "clip-seconds"]
    pub clip_seconds: Arc<Mutex<u32>>,
}

impl Default for PianoforteParams {
    fn default() -> Self {
        PianoforteParams {
            temperature: FloatParam::new("Temperature", 1.0, FloatRange::Linear { min: 0.1, max: 2.0 })
                .with_step_size(0.01)
                .with_value_to_string(formatters::v2s_f32_rounded(2)),
            density: FloatParam::new(
                "Density",
                0.0,
                FloatRange::Skewed { min: 0.0, max: DENSITY_MAX, factor: FloatRange::skew_factor(-0.8) },
            )
            .with_step_size(0.1)
            .with_value_to_string(Arc::new(|v| if v < DENSITY_AUTO_BELOW { "Auto".to_string() } else { format!("{v:.1} notes/s") }))
            .with_string_to_value(Arc::new(|s| {
                let s = s.trim().trim_end_matches("notes/s").trim();
                if s.eq_ignore_ascii_case("auto") { Some(0.0) } else { s.parse::<f32>().ok() }
            })),
            play: BoolParam::new("Play", false),
            mode: EnumParam::new("Mode", Mode::Free),
            seed: IntParam::new("Seed", 1, IntRange::Linear { min: 1, max: 9999 }),
            velocity_min: IntParam::new("Velocity min", 1, IntRange::Linear { min: 1, max: 127 }),
            velocity_max: IntParam::new("Velocity max", 127, IntRange::Linear { min: 1, max: 127 }),
            key_low: IntParam::new("Lowest key", LOWEST_KEY, KEY_RANGE)
                .with_value_to_string(Arc::new(note_name))
                .with_string_to_value(Arc::new(parse_note_name)),
            key_high: IntParam::new("Highest key", HIGHEST_KEY, KEY_RANGE)
                .with_value_to_string(Arc::new(note_name))
                .with_string_to_value(Arc::new(parse_note_name)),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
            clips_folder: Arc::new(Mutex::new(String::new())),
            model_path: Arc::new(Mutex::new(String::new())),
            clip_seconds: Arc::new(Mutex::new(30)),
        }
    }
}

impl PianoforteParams {
    /// Density in notes per second, None for Auto.
    pub fn density_setting(&self) -> Option<f32> {
        let v = self.density.value();
        (v >= DENSITY_AUTO_BELOW).then_some(v)
    }

    pub fn model_path(&self) -> String {
        self.model_path.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn clips_folder(&self) -> String {
        self.clips_folder.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn clip_seconds(&self) -> u32 {
        self.clip_seconds.lock().map(|s| *s).unwrap_or(30)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_names_round_trip() {
        assert_eq!(note_name(60), "C4");
        assert_eq!(note_name(21), "A0");
        assert_eq!(note_name(108), "C8");
        for k in LOWEST_KEY..=HIGHEST_KEY {
            assert_eq!(parse_note_name(&note_name(k)), Some(k));
        }
        assert_eq!(parse_note_name("Bb3"), Some(58));
        assert_eq!(parse_note_name("64"), Some(64));
    }

    #[test]
    fn density_auto_and_units() {
        let params = PianoforteParams::default();
        assert_eq!(params.density_setting(), None);
        let d = &params.density;
        assert_eq!(d.normalized_value_to_string(0.0, true), "Auto");
        assert_eq!(d.normalized_value_to_string(d.preview_normalized(12.0), true), "12.0 notes/s");
        assert_eq!(d.string_to_normalized_value("auto"), Some(0.0));
        let k = &params.key_low;
        assert_eq!(k.normalized_value_to_string(k.preview_normalized(60), true), "C4");
    }
}
