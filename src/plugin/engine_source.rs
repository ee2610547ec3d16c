//! The ONNX engine (`crate::engine`) as a [`Source`] for the plugin's engine thread.

use super::source::{ModelInfo, Source, StepControls};
use crate::codec::{Event, STEPS_PER_SECOND};
use crate::engine::beat_clock::{BeatClock, SongChange, SongPosition};
use crate::engine::control::Control;
use crate::engine::model::{LoadOptions, Model, ModelSource};
use crate::engine::runtime::{self, RuntimeOptions};
use crate::engine::sampling::Sampling;
use crate::engine::{Engine, Settings};
use std::path::{Path, PathBuf};

/// Nucleus sampling the plugin uses when the model card recommends none (drops the long tail of
/// unlikely events); a card's `sampling.top_p` (chosen by measurement) wins.
pub const TOP_P: f32 = 0.95;

/// Why a model could not be loaded, and whether ONNX Runtime itself is the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub runtime: bool,
    pub message: String,
}

pub struct EngineSource {
    engine: Engine,
    info: ModelInfo,
    applied: Option<StepControls>,
    top_p: Option<f32>,
    /// Where the song is when the next performance begins (`None`: free time), and how long
    /// before that the primer ended.
    song: Option<SongPosition>,
    primer_gap: f64,
    /// The engine's clock (10 ms steps) at the performance's first event: the primer's length.
    start_step: i64,
}

/// How the plugin looks ONNX Runtime up: `ORT_DYLIB_PATH` when set, else the copy beside the
/// plugin binary, else the engine's usual places (with the plugin's folder among them).
pub fn runtime_options(plugin_folder: Option<&Path>) -> RuntimeOptions {
    let beside: Option<PathBuf> = plugin_folder.map(|d| d.join(runtime::library_file_name()));
    let explicit = std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()).is_none() && beside.as_ref().is_some_and(|p| p.is_file());
    RuntimeOptions {
        library: if explicit { beside } else { None },
        search_folders: plugin_folder.map(Path::to_path_buf).into_iter().collect(),
    }
}

/// The card's validation scores worth a line in the editor, headline first: the score with every
/// control off, then the one with the controls the music implies (nested under `controlled`).
fn validation_figures(validation: &serde_json::Value) -> Vec<(String, String)> {
    let number = |v: &serde_json::Value, key: &str| v.get(key).and_then(serde_json::Value::as_f64);
    let headline = match validation.get("controls").and_then(serde_json::Value::as_str) {
        Some("off") => "NLL, controls off",
        _ => "validation NLL",
    };
    let mut figures = Vec::new();
    if let Some(nll) = number(validation, "nll_nats_per_event") {
        figures.push((headline.to_string(), format!("{nll:.3} nats/event")));
    }
    if let Some(nll) = validation.get("controlled").and_then(|c| number(c, "nll_nats_per_event")) {
        figures.push(("NLL, controlled".to_string(), format!("{nll:.3} nats/event")));
    }
    if let Some(bits) = number(validation, "bits_per_second") {
        figures.push(("bits per second".to_string(), format!("{bits:.1}")));
    }
    if let Some(accuracy) = number(validation, "accuracy") {
        figures.push(("next-event accuracy".to_string(), format!("{:.1} %", accuracy * 100.0)));
    }
    figures
}

impl EngineSource {
    /// Loads and checks a model (`None`: the embedded one) and warms the engine up.
    pub fn load(model: Option<&Path>, plugin_folder: Option<&Path>) -> Result<EngineSource, LoadError> {
        let source = ModelSource::from_option(model.map(Path::to_path_buf));
        let options = LoadOptions { runtime: runtime_options(plugin_folder), threads: 1 };
        let model = Model::load(&source, &options)
            .map_err(|e| LoadError { runtime: matches!(e, crate::engine::model::Error::Runtime(_)), message: e.to_string() })?;
        let mut figures = vec![
            ("network".to_string(), format!("GRU {} x {}", model.card.layers, model.card.hidden)),
            ("file size".to_string(), format!("{:.1} MB", model.bytes as f64 / 1e6)),
        ];
        match model.card.training_steps() {
            Some(0) => figures.push(("training".into(), "untrained placeholder".into())),
            Some(steps) => figures.push(("training steps".into(), steps.to_string())),
            None => {}
        }
        figures.extend(validation_figures(&model.card.validation));
        let name = match model.card.extra.get("name").and_then(|v| v.as_str()) {
            Some(n) => n.to_string(),
            None => match &source {
                ModelSource::Embedded => "pianoforte (built in)".to_string(),
                ModelSource::File(p) => p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
            },
        };
        let top_p = if model.card.extra.get("sampling").is_some() { model.recommended_sampling().top_p } else { Some(TOP_P) };
        let engine = Engine::new(model, Settings::default()).map_err(|e| LoadError { runtime: false, message: e.to_string() })?;
        Ok(EngineSource { engine, info: ModelInfo { name, figures }, applied: None, top_p, song: None, primer_gap: 0.0, start_step: 0 })
    }

    fn apply(&mut self, controls: &StepControls) -> Result<(), String> {
        if self.applied.as_ref() == Some(controls) {
            return Ok(());
        }
        let temperature = controls.temperature.clamp(crate::engine::sampling::MIN_TEMPERATURE, crate::engine::sampling::MAX_TEMPERATURE);
        let (memory, tightness) = (controls.motifs.clamp(0.0, 1.0), controls.tightness.clamp(0.0, 1.0));
        self.engine.set_sampling(Sampling { temperature, top_p: self.top_p, memory, tightness }).map_err(|e| e.to_string())?;
        self.engine.set_control(match controls.density {
            Some(d) => Control::NotesPerSecond(d),
            None => Control::Off,
        });
        self.engine.set_key(controls.tonality);
        self.applied = Some(*controls);
        Ok(())
    }
}

impl Source for EngineSource {
    fn info(&self) -> ModelInfo {
        self.info.clone()
    }

    fn restart(&mut self, primer: &[Event], seed: u64, controls: &StepControls) -> Result<(), String> {
        self.apply(controls)?;
        self.engine.reseed(seed);
        // The primer is heard against the song's beats too: it ends where the performance begins.
        self.start_step = primer.iter().map(|e| crate::codec::density::shift_steps(e.id())).sum();
        let start = self.start_step as f64;
        self.engine.set_beat_clock(self.song.map(|song| {
            // The primer as it was heard (its end `primer_gap` before the start), then the start.
            let step = 1.0 / STEPS_PER_SECOND;
            let mut clock = BeatClock::new(start - 1.0, song.earlier(self.primer_gap + step));
            clock.locate(start, song);
            clock
        }));
        self.engine.prime(primer).map_err(|e| e.to_string())
    }

    fn hears_beats(&self) -> bool {
        self.engine.model().has_beats()
    }

    fn follow(&mut self, song: Option<SongPosition>, primer_gap: f64) {
        (self.song, self.primer_gap) = (song, primer_gap);
    }

    fn change_song(&mut self, seconds: f64, change: SongChange) {
        let now = self.engine.state().step() as f64;
        if let Some(clock) = self.engine.beat_clock_mut() {
            clock.forget_before(now);
            clock.change(self.start_step as f64 + seconds * STEPS_PER_SECOND, change);
        }
    }

    fn next(&mut self, controls: &StepControls) -> Result<Event, String> {
        self.apply(controls)?;
        self.engine.step().map(|s| s.event).map_err(|e| e.to_string())
    }

    fn key_index(&self, name: &str) -> Option<u8> {
        self.engine.model().card.key_index(name).and_then(|k| u8::try_from(k).ok())
    }

    fn chosen_key(&self) -> Option<String> {
        let card = &self.engine.model().card;
        self.engine.chosen_key().and_then(|k| card.key_name(k.into())).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::control::KeyControl;

    fn performance(source: &mut EngineSource, controls: &StepControls) -> Vec<Event> {
        (0..60).map(|_| source.next(controls).unwrap()).collect()
    }

    #[test]
    fn a_restart_is_primed_with_the_controls_of_now_not_the_last_ones() {
        let primer = crate::codec::from_text("ON 60\nSHIFT 200ms\nON 64\nSHIFT 200ms\nOFF 60\nOFF 64\nSHIFT 100ms").unwrap();
        let d_minor = StepControls { density: Some(16.0), tonality: KeyControl::Key(14), ..StepControls::default() };
        // The reference has played with D minor before: its restart is primed with it either way.
        let mut fresh = EngineSource::load(None, None).unwrap();
        fresh.next(&d_minor).unwrap();
        fresh.restart(&primer, 7, &d_minor).unwrap();
        let expected = performance(&mut fresh, &d_minor);
        // The same restart after playing with other controls plays the same.
        let mut used = EngineSource::load(None, None).unwrap();
        used.restart(&[], 1, &StepControls::default()).unwrap();
        performance(&mut used, &StepControls::default());
        used.restart(&primer, 7, &d_minor).unwrap();
        assert_eq!(performance(&mut used, &d_minor), expected);
    }

    #[test]
    fn validation_figures_lead_with_the_unconditioned_score_and_flatten_the_controlled_one() {
        let card = serde_json::json!({
            "accuracy": 0.3249, "bits_per_second": 145.76, "controls": "off", "docs": 137,
            "controlled": { "nll_nats_per_event": 2.2816, "accuracy": 0.328 },
            "nll_nats_per_event": 2.3072, "split": "MAESTRO v2.0.0 validation"
        });
        let figures = validation_figures(&card);
        let text: Vec<String> = figures.iter().map(|(label, value)| format!("{label}: {value}")).collect();
        assert_eq!(
            text,
            [
                "NLL, controls off: 2.307 nats/event",
                "NLL, controlled: 2.282 nats/event",
                "bits per second: 145.8",
                "next-event accuracy: 32.5 %"
            ]
        );
        assert!(text.iter().all(|line| !line.contains('{')), "no raw JSON in the editor: {text:?}");
    }

    #[test]
    fn a_card_without_scores_adds_no_lines() {
        assert!(validation_figures(&serde_json::Value::Null).is_empty());
        let unevaluated = serde_json::json!({ "nll_nats_per_event": null, "accuracy": null });
        assert!(validation_figures(&unevaluated).is_empty());
    }
}
