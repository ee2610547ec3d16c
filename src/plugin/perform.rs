//! Perform my part in the plugin: a MIDI clip dropped on the editor is performed by the
//! score-to-performance model (`crate::perform`), saved as a clip the musician can drag back into
//! the arrangement, and played by the engine thread in place of the improvisation, from its
//! beginning at every start, until the musician goes back to improvising.
//!
//! The performance is played as the codec hears it (10 ms steps, 32 velocities), and the clip
//! holds exactly what is played.

use super::clips::Clip;
use super::engine_source::runtime_options;
use super::source::{ModelInfo, Source, StepControls};
use crate::codec::midi::WriteGrid;
use crate::codec::{self, Event, Performance, Shift};
use crate::engine::model::LoadOptions;
use crate::perform::model::PerformModel;
use crate::perform::render::RenderOptions;
use crate::perform::score::Score;
use std::path::Path;

/// A score performed for the engine thread to play.
#[derive(Debug, Clone, PartialEq)]
pub struct PerformedScore {
    /// The dropped file's name without its extension.
    pub name: String,
    pub events: Vec<Event>,
}

/// What performing a dropped file gives: what to play, the clip to save, and what of the score
/// could not be played as written.
pub struct Performed {
    pub score: PerformedScore,
    pub clip: Clip,
    pub notices: Vec<String>,
}

/// Reads the MIDI file at `path` as a score and performs it with the built-in performance model
/// (ONNX Runtime looked up as for the event model, from `plugin_folder`), seeded by `seed`.
pub fn perform_file(path: &Path, seed: u64, plugin_folder: Option<&Path>) -> Result<Performed, String> {
    let name = path.file_stem().map_or_else(|| "score".to_string(), |s| s.to_string_lossy().into_owned());
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let score = Score::read(&bytes).map_err(|e| format!("{name}: {e}"))?;
    let options = LoadOptions { runtime: runtime_options(plugin_folder), threads: 1 };
    let mut model = PerformModel::load(None, &options)?;
    let render = RenderOptions { temperature: crate::perform::DEFAULT_TEMPERATURE, seed };
    let performance = crate::perform::perform(&score, &mut model, render)?;
    Ok(performed(name, &score, &performance))
}

/// The performance as the codec plays it, and its clip on the score's first tempo and meter (a
/// part dragged out of the DAW comes back starting where it started).
fn performed(name: String, score: &Score, performance: &Performance) -> Performed {
    let events = codec::encode(performance);
    let heard = codec::decode(&events);
    let meter = score.meters.first().map(|&(_, m)| m);
    let time_signature = meter.filter(|m| m.numerator <= 255 && m.denominator <= 255).map(|m| (m.numerator as u8, m.denominator as u8));
    let grid = WriteGrid { bpm: score.bpm_at(0.0), time_signature, offset: 0.0 };
    let clip = Clip { seconds: heard.duration, performance: heard, grid, bars: None, tempo_from_host: false, score: Some(name.clone()) };
    Performed { score: PerformedScore { name, events }, clip, notices: score.notices.clone() }
}

/// Plays a performed score's events from the beginning at every restart, then silence.
pub struct ScoreSource {
    score: PerformedScore,
    next: usize,
}

impl ScoreSource {
    pub fn new(score: PerformedScore) -> Self {
        ScoreSource { score, next: 0 }
    }

    pub fn name(&self) -> &str {
        &self.score.name
    }
}

impl Source for ScoreSource {
    fn info(&self) -> ModelInfo {
        ModelInfo { name: format!("{} (performed)", self.score.name), figures: Vec::new() }
    }

    fn restart(&mut self, _primer: &[Event], _seed: u64, _controls: &StepControls) -> Result<(), String> {
        self.next = 0;
        Ok(())
    }

    fn next(&mut self, _controls: &StepControls) -> Result<Event, String> {
        let event = self.score.events.get(self.next).copied().unwrap_or(Event::TimeShift(Shift::LONGEST));
        self.next += 1;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Note, PedalChange};

    fn performance() -> Performance {
        let note = |pitch, start, end, velocity| Note { pitch, velocity, start, end };
        Performance {
            notes: vec![note(60, 0.5, 1.0, 64), note(64, 0.503, 1.2, 80), note(67, 1.0, 2.0, 100)],
            pedal: vec![PedalChange { time: 0.4, down: true }, PedalChange { time: 2.1, down: false }],
            duration: 2.5,
        }
    }

    #[test]
    fn a_score_source_plays_its_events_from_the_beginning_at_every_restart() {
        let events = codec::encode(&performance());
        let mut source = ScoreSource::new(PerformedScore { name: "part".into(), events: events.clone() });
        let controls = StepControls::default();
        for seed in [1, 2] {
            source.restart(&[], seed, &controls).unwrap();
            let played: Vec<Event> = (0..events.len()).map(|_| source.next(&controls).unwrap()).collect();
            assert_eq!(played, events);
            // Then silence, however long the engine asks.
            for _ in 0..3 {
                assert_eq!(source.next(&controls).unwrap(), Event::TimeShift(Shift::LONGEST));
            }
        }
    }

    #[test]
    fn the_clip_holds_what_is_played() {
        let score = Score::read(&crate::codec::midi::write(&performance())).unwrap();
        let performed = performed("part".into(), &score, &performance());
        assert_eq!(performed.clip.performance, codec::decode(&performed.score.events));
        assert_eq!(performed.clip.performance.notes.len(), 3);
        assert!(performed.clip.name("2026-12-07 01.00").starts_with("part, performed"));
    }
}
