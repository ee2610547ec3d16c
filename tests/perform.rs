//! Perform my part (issue 20) on real data: the ASAP performances of the validation pieces
//! aligned to their scores (`../shared/data/asap`), and the built-in performance model playing
//! those scores exactly as written.

use pianoforte::cli::perform::{Pair, align_pair, read_pairs};
use pianoforte::engine::model::LoadOptions;
use pianoforte::perform::model::PerformModel;
use pianoforte::perform::render::RenderOptions;
use pianoforte::perform::score::Score;
use std::path::Path;

fn validation_pairs() -> Vec<Pair> {
    let csv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/asap/asap-train-validation.csv");
    let pairs = read_pairs(&csv).unwrap_or_else(|e| panic!("{e}"));
    pairs.into_iter().filter(|p| p.split == "validation").collect()
}

/// Every validation performance whose beats correspond to its score's aligns, and nine score
/// notes in ten or more find their performed note (the figure `pianoforte align` prints).
#[test]
fn asap_validation_performances_align_to_their_scores() {
    let pairs = validation_pairs();
    assert!(pairs.len() >= 70, "{} validation performances", pairs.len());
    let (mut notes, mut matched, mut refused) = (0.0, 0.0, Vec::new());
    for pair in &pairs {
        match align_pair(pair) {
            Ok(aligned) => {
                assert_eq!(aligned.features.len(), aligned.targets.len());
                assert!(aligned.coverage > 0.5, "{}: coverage {:.2}", pair.performance.display(), aligned.coverage);
                notes += aligned.features.len() as f64;
                matched += aligned.coverage * aligned.features.len() as f64;
            }
            Err(e) => {
                assert!(e.contains("score beats against"), "{}: {e}", pair.performance.display());
                refused.push(e);
            }
        }
    }
    let coverage = matched / notes;
    println!("validation: {} aligned, {} refused (beats differ), coverage {coverage:.3}", pairs.len() - refused.len(), refused.len());
    assert!(refused.len() <= 3 && coverage >= 0.9, "coverage {coverage:.3}, refused {refused:?}");
}

/// The built-in model plays every note of every validation score once and no other, chords in
/// score order, with the pedal up at the end; the same seed gives the same performance.
#[test]
fn the_built_in_model_plays_every_validation_score_as_written() {
    use pianoforte::perform::measure::{pedalling, plays_the_score};
    let mut model = PerformModel::load(None, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut scores: Vec<_> = validation_pairs().into_iter().map(|p| p.score).collect();
    scores.dedup();
    assert!(scores.len() >= 20);
    let options = RenderOptions { temperature: 0.5, seed: 7 };
    for path in scores {
        let score = Score::read(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outputs = model.run(&pianoforte::perform::features::features(&score)).unwrap();
        let (performance, laid) = pianoforte::perform::render::render_notes(&score, &outputs, options);
        assert!(plays_the_score(&score, &performance, &laid), "{}", path.display());
        assert!(!pedalling(&performance).1, "{}: the pedal is left down", path.display());
        let again = pianoforte::perform::render::render(&score, &outputs, options);
        assert_eq!(performance, again, "{}", path.display());
    }
}
