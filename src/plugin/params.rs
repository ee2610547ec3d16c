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

/// What the plugin sounds like: its own sampled grand piano (and MIDI out), or MIDI out only.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    #[id = "piano"]
    #[name = "Piano"]
    Piano,
    #[id = "midi-only"]
    #[name = "MIDI only"]
    MidiOnly,
}

/// Whose time the performance keeps.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// On the song's beats and bars: the host's tempo and meter (else the Tempo parameter).
    #[id = "song"]
    #[name = "Song tempo"]
    Song,
    /// Free time: the pianist's own rubato, no beat.
    #[id = "free"]
    #[name = "Free"]
    Free,
}

/// The Key parameter: 0 = Any (the model settles on a key from its first notes and holds it),
/// 1..=24 = the model card's keys (C major .. B major, C minor .. B minor), [`KEY_FOLLOW`] =
/// follow what the musician plays.
pub const KEY_ANY: i32 = 0;
pub const KEY_FOLLOW: i32 = 25;
/// The names of the 24 keys, in the model card's order.
pub const KEY_NAMES: [&str; 24] = [
    "C major", "C# major", "D major", "Eb major", "E major", "F major", "F# major", "G major", "Ab major", "A major", "Bb major",
    "B major", "C minor", "C# minor", "D minor", "Eb minor", "E minor", "F minor", "F# minor", "G minor", "Ab minor", "A minor",
    "Bb minor", "B minor",
];

/// "Any", "D minor", "Follow my playing" for a Key value.
pub fn key_setting_name(value: i32) -> String {
    match value {
        1..=24 => KEY_NAMES[(value - 1) as usize].to_string(),
        KEY_FOLLOW => "Follow my playing".to_string(),
        _ => "Any".to_string(),
    }
}

/// Parses "any", "d minor", "Eb major", "follow" (or the number).
pub fn parse_key_setting(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return (KEY_ANY..=KEY_FOLLOW).contains(&n).then_some(n);
    }
    let lower = text.to_ascii_lowercase();
    if lower == "any" {
        return Some(KEY_ANY);
    }
    if lower.starts_with("follow") {
        return Some(KEY_FOLLOW);
    }
    let wanted = crate::engine::model::normalise_key_name(text)?;
    KEY_NAMES.iter().position(|n| *n == wanted).map(|i| i as i32 + 1)
}

/// Density below this is "Auto" (the model chooses).
pub const DENSITY_AUTO_BELOW: f32 = 1.0;
const LOWEST_KEY: i32 = Pitch::LOWEST.midi() as i32;
const HIGHEST_KEY: i32 = Pitch::HIGHEST.midi() as i32;
const KEY_RANGE: IntRange = IntRange::Linear { min: LOWEST_KEY, max: HIGHEST_KEY };
pub const DENSITY_MAX: f32 = 30.0;

/// Note names like "C4" (middle C = 60) for the key range.
pub fn note_name(key: i32) -> String {
    let key = key.clamp(0, 127);
    format!("{}{}", crate::codec::events::PITCH_CLASS_NAMES[(key % 12) as usize], key / 12 - 1)
}

/// Parses "C4", "c#4", "Bb3", "60".
pub fn parse_note_name(text: &str) -> Option<i32> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i32>() {
        return Some(n);
    }
    let (semitones, octave) = crate::codec::events::parse_note_letter(text)?;
    let octave: i32 = octave.trim().parse().ok()?;
    Some((octave + 1) * 12 + semitones)
}

#[derive(Params)]
pub struct PianoforteParams {
    /// Below 1 safer and more repetitive, above 1 more adventurous.
    #[id = "temperature"]
    pub temperature: FloatParam,
    /// Notes per second asked of the model; the lowest setting is "Auto".
    #[id = "density"]
    pub density: FloatParam,
    /// The key to play in: Any, one of 24 keys, or (in Continue mode) following the musician.
    #[id = "tonality"]
    pub key: IntParam,
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
    /// The built-in piano, or MIDI out only (MIDI goes out the same either way).
    #[id = "sound"]
    pub sound: EnumParam<Sound>,
    /// The built-in piano's level.
    #[id = "volume"]
    pub volume: FloatParam,
    /// On the song's beats, or free time. Projects saved before it existed restore Free.
    #[id = "timing"]
    pub timing: EnumParam<Timing>,
    /// The tempo (quarter notes per minute) when the host tells none.
    #[id = "tempo"]
    pub tempo: FloatParam,
    /// How strongly figures played before come back (the motif memory, 0..=1). Projects saved
    /// before it existed restore 0, and play as they did.
    #[id = "motifs"]
    pub motifs: FloatParam,
    /// How tightly onsets sit where pianists place them in the beat, following the song (the
    /// engine's pull, 0..=1). Projects saved before it existed restore 0, and play as they did.
    #[id = "tightness"]
    pub tightness: FloatParam,
    /// Perform my part: the track's own MIDI part is performed (its notes are the score, not
    /// played themselves), `perform::live::LATENCY` behind it, reported to the host as latency.
    /// Off in projects saved before it existed.
    #[id = "perform"]
    pub perform: BoolParam,

    /// The clips folder ("" = "pianoforte clips" in the documents folder).
    #[persist = "clips-folder"]
    pub clips_folder: Arc<Mutex<String>>,
    /// A model file chosen by the user ("" = the built-in model).
    #[persist = "model-path"]
    pub model_path: Arc<Mutex<String>>,
    /// Seconds a clip holds (0 = the whole take).
    #[persist = "clip-seconds"]
    pub clip_seconds: Arc<Mutex<u32>>,
    /// Bars a clip holds (0 = seconds as above).
    #[persist = "clip-bars"]
    pub clip_bars: Arc<Mutex<u32>>,
    /// The clips saved (or dragged out) in this project, newest first.
    #[persist = "clips"]
    pub clips: Arc<Mutex<Vec<String>>>,
    /// The performed clip played instead of improvising (Perform my part: a clip dropped on the
    /// editor); "" = improvising, as in projects saved before it existed.
    #[persist = "performed-clip"]
    pub performed_clip: Arc<Mutex<String>>,
}

/// Where the Temperature knob starts: the built-in model card's `sampling.temperature`, chosen by
/// `benches/sampling_sweep.py` on validation statistics (a test checks that the two agree).
pub const DEFAULT_TEMPERATURE: f32 = 1.05;

/// Where the Motifs knob starts: the built-in model card's `sampling.memory`, chosen by
/// `benches/motifs.py` (a test checks that the two agree).
pub const DEFAULT_MOTIFS: f32 = 0.5;

/// Where the Tightness knob starts: the built-in model card's `sampling.tightness`, chosen by
/// `benches/beats.py` (a test checks that the two agree).
pub const DEFAULT_TIGHTNESS: f32 = 0.75;

/// The Tempo parameter's default (quarter notes per minute).
pub const DEFAULT_TEMPO: f32 = 100.0;

/// Clips the project remembers at most.
pub const MAX_REMEMBERED_CLIPS: usize = 200;

impl Default for PianoforteParams {
    fn default() -> Self {
        PianoforteParams {
            temperature: FloatParam::new("Temperature", DEFAULT_TEMPERATURE, FloatRange::Linear { min: 0.1, max: 2.0 })
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
            key: IntParam::new("Key", KEY_ANY, IntRange::Linear { min: KEY_ANY, max: KEY_FOLLOW })
                .with_value_to_string(Arc::new(key_setting_name))
                .with_string_to_value(Arc::new(parse_key_setting)),
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
            sound: EnumParam::new("Sound", Sound::Piano),
            volume: FloatParam::new("Volume", crate::piano::DEFAULT_VOLUME_DB, FloatRange::Linear { min: -60.0, max: 6.0 })
                .with_step_size(0.1)
                .with_unit(" dB"),
            timing: EnumParam::new("Timing", Timing::Song),
            tempo: FloatParam::new("Tempo", DEFAULT_TEMPO, FloatRange::Linear { min: 40.0, max: 240.0 })
                .with_step_size(0.1)
                .with_unit(" BPM"),
            motifs: percent_or_off(FloatParam::new("Motifs", DEFAULT_MOTIFS, FloatRange::Linear { min: 0.0, max: 1.0 })),
            tightness: percent_or_off(FloatParam::new("Tightness", DEFAULT_TIGHTNESS, FloatRange::Linear { min: 0.0, max: 1.0 })),
            perform: BoolParam::new("Perform my part", false),
            clips_folder: Arc::new(Mutex::new(String::new())),
            model_path: Arc::new(Mutex::new(String::new())),
            clip_seconds: Arc::new(Mutex::new(30)),
            clip_bars: Arc::new(Mutex::new(0)),
            clips: Arc::new(Mutex::new(Vec::new())),
            performed_clip: Arc::new(Mutex::new(String::new())),
        }
    }
}

/// A key range as (lowest, highest) on the piano, whichever way round its ends were set.
pub fn ordered_key_range(a: i32, b: i32) -> (u8, u8) {
    let (lowest, highest) = (crate::codec::Pitch::LOWEST.midi() as i32, crate::codec::Pitch::HIGHEST.midi() as i32);
    (a.min(b).clamp(lowest, highest) as u8, a.max(b).clamp(lowest, highest) as u8)
}

impl PianoforteParams {
    /// The Lowest key .. Highest key range, ordered.
    pub fn key_range(&self) -> (u8, u8) {
        ordered_key_range(self.key_low.value(), self.key_high.value())
    }

    /// Density in notes per second, None for Auto.
    pub fn density_setting(&self) -> Option<f32> {
        let v = self.density.value();
        (v >= DENSITY_AUTO_BELOW).then_some(v)
    }

    pub fn model_path(&self) -> String {
        self.model_path.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn performed_clip(&self) -> String {
        self.performed_clip.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Plays the performed clip at `path` instead of improvising ("": improvise).
    pub fn set_performed_clip(&self, path: &str) {
        if let Ok(mut stored) = self.performed_clip.lock() {
            *stored = path.to_string();
        }
    }

    pub fn clips_folder(&self) -> String {
        self.clips_folder.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn clip_seconds(&self) -> u32 {
        self.clip_seconds.lock().map(|s| *s).unwrap_or(30)
    }

    pub fn clip_bars(&self) -> u32 {
        self.clip_bars.lock().map(|s| *s).unwrap_or(0)
    }

    /// The remembered clips, newest first.
    pub fn clips(&self) -> Vec<String> {
        self.clips.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Remembers a clip (first in the list; once; at most [`MAX_REMEMBERED_CLIPS`]).
    pub fn remember_clip(&self, path: &std::path::Path) {
        let path = path.display().to_string();
        if let Ok(mut list) = self.clips.lock() {
            list.retain(|p| *p != path);
            list.insert(0, path);
            list.truncate(MAX_REMEMBERED_CLIPS);
        }
    }
}

/// A 0..=1 strength shown as a percentage, 0 as "Off".
fn percent_or_off(param: FloatParam) -> FloatParam {
    param
        .with_step_size(0.01)
        .with_value_to_string(Arc::new(|v| if v <= 0.0 { "Off".to_string() } else { format!("{:.0} %", v * 100.0) }))
        .with_string_to_value(Arc::new(|s| {
            let s = s.trim();
            if s.eq_ignore_ascii_case("off") { Some(0.0) } else { s.trim_end_matches('%').trim().parse::<f32>().ok().map(|v| v / 100.0) }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_motifs_and_tightness_start_where_the_built_in_model_recommends() {
        use crate::engine::model::{LoadOptions, Model, ModelSource};
        let model = Model::load(&ModelSource::Embedded, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model.recommended_sampling().temperature, DEFAULT_TEMPERATURE);
        assert_eq!(PianoforteParams::default().temperature.default_plain_value(), DEFAULT_TEMPERATURE);
        assert_eq!(crate::plugin::source::StepControls::default().temperature, DEFAULT_TEMPERATURE);
        assert_eq!(model.recommended_sampling().memory, DEFAULT_MOTIFS);
        assert_eq!(PianoforteParams::default().motifs.default_plain_value(), DEFAULT_MOTIFS);
        assert_eq!(crate::plugin::source::StepControls::default().motifs, DEFAULT_MOTIFS);
        assert_eq!(model.recommended_sampling().tightness, DEFAULT_TIGHTNESS);
        assert_eq!(PianoforteParams::default().tightness.default_plain_value(), DEFAULT_TIGHTNESS);
        assert_eq!(crate::plugin::source::StepControls::default().tightness, DEFAULT_TIGHTNESS);
    }

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
    fn key_settings_round_trip() {
        for v in KEY_ANY..=KEY_FOLLOW {
            assert_eq!(parse_key_setting(&key_setting_name(v)), Some(v));
        }
        assert_eq!(parse_key_setting("d minor"), Some(15));
        assert_eq!(parse_key_setting("D# major"), Some(4), "sharps and flats of one pitch class are one key");
        assert_eq!(parse_key_setting("H dorian"), None);
        assert_eq!(PianoforteParams::default().key.value(), KEY_ANY);
    }

    #[test]
    fn clips_are_remembered_with_the_project() {
        let params = PianoforteParams::default();
        params.remember_clip(std::path::Path::new("/a.mid"));
        params.remember_clip(std::path::Path::new("/b.mid"));
        params.remember_clip(std::path::Path::new("/a.mid"));
        assert_eq!(params.clips(), vec!["/a.mid".to_string(), "/b.mid".to_string()]);
        // Saved and restored with the plugin state, like the other remembered settings.
        let saved = params.serialize_fields();
        assert!(saved.contains_key("clips") && saved.contains_key("clip-bars"));
        let restored = PianoforteParams::default();
        restored.deserialize_fields(&saved);
        assert_eq!(restored.clips(), params.clips());
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
