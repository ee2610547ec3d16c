//! Perform my part in the plugin: a MIDI clip dropped on the editor is performed by the
//! score-to-performance model (`crate::perform`) and saved as a clip the musician can drag back
//! into the arrangement. That clip is remembered with the project (`performed-clip`), and the
//! engine thread plays it in place of the improvisation, from its beginning at every start,
//! until the musician goes back to improvising; a project reopened plays it again.
//!
//! The performance is saved as the codec plays it (10 ms steps, 32 velocities), so the clip holds
//! exactly what is played.

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

/// What performing a dropped file gives: the clip to save, and what of the score could not be
/// played as written.
pub struct Performed {
    pub clip: Clip,
    pub notices: Vec<String>,
}

/// Reads the MIDI file at `path` as a score and performs it with the built-in performance model
/// (ONNX Runtime looked up as for the event model, from `plugin_folder`), seeded by `seed`.
pub fn perform_file(path: &Path, seed: u64, plugin_folder: Option<&Path>) -> Result<Performed, String> {
    let name = path.file_stem().map_or_else(|| "score".to_string(), |s| s.to_string_lossy().into_owned());
    let score = Score::read(&read_midi_file(path)?).map_err(|e| format!("{name}: {e}"))?;
    let options = LoadOptions { runtime: runtime_options(plugin_folder), threads: 1 };
    let mut model = PerformModel::load(None, &options)?;
    let render = RenderOptions { temperature: crate::perform::DEFAULT_TEMPERATURE, seed };
    let performance = crate::perform::perform(&score, &mut model, render)?;
    Ok(performed(name, &score, &performance))
}

/// The bytes of the MIDI file at `path`, its path in the error.
fn read_midi_file(path: &Path) -> Result<Vec<u8>, String> {
    codec::midi::read_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The performance as the codec plays it, as a clip on the score's first tempo and meter (a part
/// dragged out of the DAW comes back starting where it started).
fn performed(name: String, score: &Score, performance: &Performance) -> Performed {
    let heard = codec::decode(&codec::encode(performance));
    let meter = score.meters.first().map(|&(_, m)| m);
    let time_signature = meter.filter(|m| m.numerator <= 255 && m.denominator <= 255).map(|m| (m.numerator as u8, m.denominator as u8));
    let grid = WriteGrid { bpm: score.bpm_at(0.0), time_signature, offset: 0.0 };
    let clip = Clip { seconds: heard.duration, performance: heard, grid, bars: None, tempo_from_host: false, score: Some(name) };
    Performed { clip, notices: score.notices.clone() }
}

/// Plays a performed clip's events from the beginning at every restart, then silence.
pub struct ScoreSource {
    name: String,
    events: Vec<Event>,
    next: usize,
}

impl ScoreSource {
    /// The performed clip saved at `path`.
    pub fn open(path: &Path) -> Result<ScoreSource, String> {
        let read = codec::midi::read(&read_midi_file(path)?).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.file_stem().map_or_else(|| "clip".to_string(), |s| s.to_string_lossy().into_owned());
        Ok(ScoreSource { name, events: codec::encode(&read.performance), next: 0 })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Source for ScoreSource {
    fn info(&self) -> ModelInfo {
        ModelInfo { name: self.name.clone(), figures: Vec::new() }
    }

    fn restart(&mut self, _primer: &[Event], _seed: u64, _controls: &StepControls) -> Result<(), String> {
        self.next = 0;
        Ok(())
    }

    fn next(&mut self, _controls: &StepControls) -> Result<Event, String> {
        let event = self.events.get(self.next).copied().unwrap_or(Event::TimeShift(Shift::LONGEST));
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
    fn a_performed_clip_plays_exactly_as_saved_from_the_beginning_at_every_restart() {
        let score = Score::read(&crate::codec::midi::write(&performance())).unwrap();
        let performed = performed("part".into(), &score, &performance());
        assert!(performed.clip.name("2026-12-07 01.00").starts_with("part, performed"));
        let folder = std::env::temp_dir().join(format!("pianoforte-score-source-{}", std::process::id()));
        let saved = super::super::clips::write_clip(&performed.clip, &folder, |p, b| std::fs::write(p, b)).unwrap();
        let mut source = ScoreSource::open(&saved.path).unwrap();
        let expected = codec::encode(&performed.clip.performance);
        let controls = StepControls::default();
        for seed in [1, 2] {
            source.restart(&[], seed, &controls).unwrap();
            let played: Vec<Event> = (0..expected.len()).map(|_| source.next(&controls).unwrap()).collect();
            assert_eq!(played, expected, "the clip file plays what was saved, to the step");
            // Then silence, however long the engine asks.
            for _ in 0..3 {
                assert_eq!(source.next(&controls).unwrap(), Event::TimeShift(Shift::LONGEST));
            }
        }
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn what_is_no_midi_file_is_refused_in_words() {
        let missing = ScoreSource::open(Path::new("/nonexistent/part.mid")).err().unwrap();
        assert!(missing.starts_with("/nonexistent/part.mid: cannot read"), "{missing}");
        let folder = ScoreSource::open(&std::env::temp_dir()).err().unwrap();
        assert!(folder.contains("not a plain file"), "{folder}");
    }
}
