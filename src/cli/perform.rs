//! `pianoforte perform`: a score performed by the score-to-performance model; `pianoforte
//! align`: ASAP performances aligned to their scores, written as that model's training tables,
//! with the alignment's coverage.
//!
//! Output per split: `{split}.features.npy` (f32, one row of [`FEATURES`] per score note),
//! `{split}.targets.npy` (f32, one row of [`TARGETS`], NaN where unknown), `{split}.docs.json`
//! (each performance's rows and coverage), and `manifest.json` (the columns, the feature version).

use crate::cli::dataset::write_npy_f32;
use crate::codec::Performance;
use crate::perform::align::{self, Alignment, BeatMap, TARGET_COUNT, TARGETS};
use crate::perform::features::{self, FEATURE_COUNT, FEATURE_VERSION, FEATURES};
use crate::perform::measure::{self, Laid, mean_of};
use crate::perform::model::PerformModel;
use crate::perform::render::{self, RenderOptions};
use crate::perform::score::Score;
use crate::perform::stats::{self, correlation, known};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One performance with its score, from an ASAP-style CSV row.
#[derive(Debug, Clone)]
pub struct Pair {
    pub split: String,
    pub performance: PathBuf,
    pub performance_beats: PathBuf,
    pub score: PathBuf,
    pub score_beats: PathBuf,
}

/// The rows of an ASAP-style CSV (`split`, `midi_performance`, `performance_annotations`,
/// `midi_score`, `midi_score_annotations`; paths relative to its folder).
pub fn read_pairs(csv_path: &Path) -> Result<Vec<Pair>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", csv_path.display());
    let mut reader = csv::Reader::from_path(csv_path).map_err(|e| fail(&e))?;
    let headers = reader.headers().map_err(|e| fail(&e))?.clone();
    let names = ["split", "midi_performance", "performance_annotations", "midi_score", "midi_score_annotations"];
    let mut columns = [0usize; 5];
    for (slot, name) in columns.iter_mut().zip(names) {
        *slot = headers.iter().position(|h| h == name).ok_or_else(|| fail(&format!("no `{name}` column")))?;
    }
    let base = csv_path.parent().unwrap_or(Path::new("."));
    let mut pairs = Vec::new();
    for (line, row) in reader.records().enumerate() {
        let row = row.map_err(|e| fail(&format!("row {}: {e}", line + 2)))?;
        let [split, performance, performance_beats, score, score_beats] = columns.map(|c| row.get(c).unwrap_or("").to_string());
        let path = |p: &str| base.join(p);
        pairs.push(Pair {
            split,
            performance: path(&performance),
            performance_beats: path(&performance_beats),
            score: path(&score),
            score_beats: path(&score_beats),
        });
    }
    Ok(pairs)
}

/// One aligned performance: its training rows and how much of its score it matched.
pub struct Aligned {
    pub features: Vec<[f32; FEATURE_COUNT]>,
    pub targets: Vec<[f32; TARGET_COUNT]>,
    pub coverage: f64,
}

/// Aligns one pair; a file that cannot be read or beats that do not correspond are an error.
pub fn align_pair(pair: &Pair) -> Result<Aligned, String> {
    let score = read_score(&pair.score)?;
    let LoadedPair { performance, map, alignment } = load_pair(&score, pair)?;
    Ok(Aligned {
        features: features::features(&score),
        targets: align::targets(&score, &performance, &map, &alignment),
        coverage: alignment.coverage(),
    })
}

/// A pianist's performance of a score, aligned to it through their beats.
struct LoadedPair {
    performance: Performance,
    map: BeatMap,
    alignment: Alignment,
}

/// Reads the pair's performance and both beat files and aligns the performance to `score`
/// (the pair's, read once by the caller); each error names its file.
fn load_pair(score: &Score, pair: &Pair) -> Result<LoadedPair, String> {
    let midi = read_file(&pair.performance)?;
    let performance = crate::codec::midi::read(&midi).map_err(|e| in_file(&pair.performance, e))?.performance;
    let beats = |p: &Path| align::beat_times(&std::fs::read_to_string(p).map_err(|e| in_file(p, e))?).map_err(|e| in_file(p, e));
    let map = BeatMap::new(beats(&pair.score_beats)?, beats(&pair.performance_beats)?)?;
    let alignment = align::align(score, &performance, &map);
    Ok(LoadedPair { performance, map, alignment })
}

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    crate::codec::midi::read_file(path).map_err(|e| in_file(path, e))
}

fn read_score(path: &Path) -> Result<Score, String> {
    Score::read(&read_file(path)?).map_err(|e| in_file(path, e))
}

/// An error message that names the file it is about.
fn in_file(path: &Path, error: impl std::fmt::Display) -> String {
    format!("{}: {error}", path.display())
}

/// A split's rows: features, targets, and where each performance's rows are.
type Tables = (Vec<[f32; FEATURE_COUNT]>, Vec<[f32; TARGET_COUNT]>, Vec<DocEntry>);

#[derive(Serialize)]
struct DocEntry {
    performance: String,
    score: String,
    start: usize,
    length: usize,
    coverage: f64,
}

#[derive(Serialize)]
struct Manifest {
    kind: &'static str,
    feature_version: u32,
    features: Vec<&'static str>,
    targets: Vec<&'static str>,
    splits: BTreeMap<String, SplitSummary>,
    skipped: Vec<String>,
}

#[derive(Serialize, Clone, Default)]
pub struct SplitSummary {
    pub performances: usize,
    pub notes: usize,
    pub matched: usize,
    /// Matched score notes / score notes over the split.
    pub coverage: f64,
    /// The lowest coverage of one performance.
    pub lowest_coverage: f64,
}

/// Aligns every pair and writes the tables to `out`; returns each split's summary and the pairs
/// skipped, with why.
pub fn build(pairs: &[Pair], out: &Path) -> Result<(BTreeMap<String, SplitSummary>, Vec<String>), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut splits: BTreeMap<String, Tables> = BTreeMap::new();
    let mut skipped = Vec::new();
    for pair in pairs {
        let aligned = match align_pair(pair) {
            Ok(a) => a,
            Err(e) => {
                skipped.push(format!("{}: {e}", pair.performance.display()));
                continue;
            }
        };
        let (features, targets, docs) = splits.entry(pair.split.clone()).or_default();
        docs.push(DocEntry {
            performance: pair.performance.display().to_string(),
            score: pair.score.display().to_string(),
            start: features.len(),
            length: aligned.features.len(),
            coverage: aligned.coverage,
        });
        features.extend(aligned.features);
        targets.extend(aligned.targets);
    }
    let io = |e: std::io::Error| e.to_string();
    let mut summaries = BTreeMap::new();
    for (split, (features, targets, docs)) in &splits {
        write_npy_f32(&out.join(format!("{split}.features.npy")), features).map_err(io)?;
        write_npy_f32(&out.join(format!("{split}.targets.npy")), targets).map_err(io)?;
        let json = serde_json::to_string_pretty(docs).map_err(|e| e.to_string())?;
        std::fs::write(out.join(format!("{split}.docs.json")), json).map_err(io)?;
        let matched: f64 = docs.iter().map(|d| d.coverage * d.length as f64).sum();
        summaries.insert(
            split.clone(),
            SplitSummary {
                performances: docs.len(),
                notes: features.len(),
                matched: matched.round() as usize,
                coverage: matched / features.len().max(1) as f64,
                lowest_coverage: docs.iter().map(|d| d.coverage).fold(1.0, f64::min),
            },
        );
    }
    let manifest = Manifest {
        kind: "score-performance",
        feature_version: FEATURE_VERSION,
        features: FEATURES.to_vec(),
        targets: TARGETS.to_vec(),
        splits: summaries.clone(),
        skipped: skipped.clone(),
    };
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest).map_err(|e| e.to_string())?).map_err(io)?;
    Ok((summaries, skipped))
}

/// The figures of a performance against the pianists who played the score, each ours beside
/// theirs: of one score in a [`PieceReport`], over all scores in a [`Summary`] (there the mean
/// over the scores where a figure exists, and the median of the chord spreads).
#[derive(Serialize, Clone, Debug)]
pub struct Figures {
    /// Ours against the pianists' mean; one pianist against the others' (leave one out, mean over
    /// pianists; NaN for a single pianist); "louder when higher" (the key).
    pub velocity_r: f64,
    pub velocity_r_pianists: f64,
    pub velocity_r_pitch: f64,
    /// The standard deviation of the velocities: ours, the pianists' mean.
    pub velocity_sd: f64,
    pub velocity_sd_pianists: f64,
    /// The same for the local tempo curve; the score's own timing (its tempo map) as the baseline.
    pub tempo_r: f64,
    pub tempo_r_pianists: f64,
    pub tempo_r_score: f64,
    /// Median standard deviation of a chord's onsets (ms): ours, the pianists' median.
    pub chord_spread_ms: f64,
    pub chord_spread_ms_pianists: f64,
    /// Pedal presses per minute: ours, the pianists' mean.
    pub presses_per_minute: f64,
    pub presses_per_minute_pianists: f64,
}

/// One score of a split performed, against the pianists who played it.
#[derive(Serialize, Clone, Debug)]
pub struct PieceReport {
    pub score: String,
    pub pianists: usize,
    pub notes: usize,
    /// Flattened: the JSON keeps one object per score with every figure at its top level.
    #[serde(flatten)]
    pub figures: Figures,
    /// Our pedal left down at the end.
    pub pedal_stuck: bool,
    /// Every score note once, no other, chords in order.
    pub plays_the_score: bool,
    /// The score's length (seconds of its tempo map) and how long performing it took.
    pub score_seconds: f64,
    pub perform_seconds: f64,
}

/// A pianist's performance laid on the score, and their pedal presses per minute.
type Pianist = (Laid, f64);

/// Performs every score of `pairs` (grouped by score) and measures it against its pianists.
/// With `live`, each score is performed as the plugin performs a track's part while it plays
/// ([`crate::perform::live`]), else as a whole.
pub fn evaluate(
    pairs: &[Pair],
    model: &mut PerformModel,
    options: RenderOptions,
    live: bool,
) -> Result<(Vec<PieceReport>, Vec<String>), String> {
    let mut by_score: BTreeMap<&Path, Vec<&Pair>> = BTreeMap::new();
    for pair in pairs {
        by_score.entry(pair.score.as_path()).or_default().push(pair);
    }
    let (mut reports, mut skipped) = (Vec::new(), Vec::new());
    for (score_path, group) in by_score {
        let score = read_score(score_path)?;
        let mut pianists = Vec::new();
        for pair in group {
            match lay_pianist(&score, pair) {
                Ok(laid) => pianists.push(laid),
                Err(e) => skipped.push(format!("{}: {e}", pair.performance.display())),
            }
        }
        if pianists.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let (ours, notes) = if live {
            crate::perform::live::perform_as_heard(&score, &mut |rows| model.run(rows), options)?
        } else {
            render::render_notes(&score, &model.run(&features::features(&score))?, options)
        };
        let perform_seconds = started.elapsed().as_secs_f64();
        let laid = Laid {
            onsets: notes.iter().map(|n| Some(n.start)).collect(),
            velocities: notes.iter().map(|n| Some(n.velocity as f64)).collect(),
        };
        let (presses, stuck) = measure::pedalling(&ours);
        reports.push(PieceReport {
            score: score_path.display().to_string(),
            pianists: pianists.len(),
            notes: score.notes.len(),
            figures: measure_figures(&score, &laid, presses, &pianists),
            pedal_stuck: stuck,
            plays_the_score: measure::plays_the_score(&score, &ours, &notes),
            score_seconds: score.seconds_at(score.notes.iter().map(|n| n.end).fold(0.0, f64::max)),
            perform_seconds,
        });
    }
    Ok((reports, skipped))
}

/// Our performance laid on `score` (`ours`, with its pedal presses per minute) against the
/// pianists'.
fn measure_figures(score: &Score, ours: &Laid, presses: f64, pianists: &[Pianist]) -> Figures {
    let velocities: Vec<&[Option<f64>]> = pianists.iter().map(|(l, _)| l.velocities.as_slice()).collect();
    let curves: Vec<Vec<Option<f64>>> = pianists.iter().map(|(l, _)| measure::tempo_curve(score, l)).collect();
    let curve_refs: Vec<&[Option<f64>]> = curves.iter().map(|c| c.as_slice()).collect();
    let (mean_velocity, mean_curve) = (mean_of(&velocities), mean_of(&curve_refs));
    let written = Laid { onsets: score.notes.iter().map(|n| Some(score.seconds_at(n.start))).collect(), velocities: Vec::new() };
    let keys: Vec<Option<f64>> = score.notes.iter().map(|n| Some(n.pitch.midi() as f64)).collect();
    let spreads: Vec<f64> = pianists.iter().map(|(l, _)| measure::chord_spread(score, l)).collect();
    let per_pianist = |f: &dyn Fn(&Pianist) -> f64| pianists.iter().map(f).sum::<f64>() / pianists.len() as f64;
    Figures {
        velocity_r: correlation(&ours.velocities, &mean_velocity),
        velocity_r_pianists: leave_one_out(&velocities),
        velocity_r_pitch: correlation(&keys, &mean_velocity),
        velocity_sd: stats::spread(known(&ours.velocities)),
        velocity_sd_pianists: per_pianist(&|(l, _)| stats::spread(known(&l.velocities))),
        tempo_r: correlation(&measure::tempo_curve(score, ours), &mean_curve),
        tempo_r_pianists: leave_one_out(&curve_refs),
        tempo_r_score: correlation(&measure::tempo_curve(score, &written), &mean_curve),
        chord_spread_ms: 1e3 * measure::chord_spread(score, ours),
        chord_spread_ms_pianists: 1e3 * stats::median(spreads.into_iter().filter(|s| s.is_finite()).collect()),
        presses_per_minute: presses,
        presses_per_minute_pianists: per_pianist(&|(_, p)| *p),
    }
}

/// Each series against the mean of the others, the mean of those correlations that exist (NaN
/// for none).
fn leave_one_out(series: &[&[Option<f64>]]) -> f64 {
    let rs: Vec<f64> = (0..series.len())
        .map(|i| {
            let others: Vec<&[Option<f64>]> = series.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| *s).collect();
            correlation(series[i], &mean_of(&others))
        })
        .filter(|r| r.is_finite())
        .collect();
    stats::mean(&rs)
}

/// A pianist's performance laid on `score`, and its pedal presses per minute.
fn lay_pianist(score: &Score, pair: &Pair) -> Result<Pianist, String> {
    let LoadedPair { performance, alignment, .. } = load_pair(score, pair)?;
    let played = |f: &dyn Fn(&crate::codec::Note) -> f64| alignment.matched.iter().map(|m| m.map(|j| f(&performance.notes[j]))).collect();
    let laid = Laid { onsets: played(&|n| n.start), velocities: played(&|n| n.velocity as f64) };
    Ok((laid, measure::pedalling(&performance).0))
}

/// The figures over all scores, how many scores were played exactly and how many left the
/// pedal down.
#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    pub scores: usize,
    pub played_exactly: usize,
    /// Flattened, as in [`PieceReport`].
    #[serde(flatten)]
    pub figures: Figures,
    pub pedal_stuck: usize,
    /// The slowest performing, in seconds per minute of score.
    pub slowest_seconds_per_minute: f64,
}

pub fn summarise(reports: &[PieceReport]) -> Summary {
    let known = |f: &dyn Fn(&Figures) -> f64| reports.iter().map(|r| f(&r.figures)).filter(|x| x.is_finite()).collect::<Vec<f64>>();
    let mean = |f: &dyn Fn(&Figures) -> f64| stats::mean(&known(f));
    let median = |f: &dyn Fn(&Figures) -> f64| stats::median(known(f));
    Summary {
        scores: reports.len(),
        played_exactly: reports.iter().filter(|r| r.plays_the_score).count(),
        figures: Figures {
            velocity_r: mean(&|f| f.velocity_r),
            velocity_r_pianists: mean(&|f| f.velocity_r_pianists),
            velocity_r_pitch: mean(&|f| f.velocity_r_pitch),
            velocity_sd: mean(&|f| f.velocity_sd),
            velocity_sd_pianists: mean(&|f| f.velocity_sd_pianists),
            tempo_r: mean(&|f| f.tempo_r),
            tempo_r_pianists: mean(&|f| f.tempo_r_pianists),
            tempo_r_score: mean(&|f| f.tempo_r_score),
            chord_spread_ms: median(&|f| f.chord_spread_ms),
            chord_spread_ms_pianists: median(&|f| f.chord_spread_ms_pianists),
            presses_per_minute: mean(&|f| f.presses_per_minute),
            presses_per_minute_pianists: mean(&|f| f.presses_per_minute_pianists),
        },
        pedal_stuck: reports.iter().filter(|r| r.pedal_stuck).count(),
        slowest_seconds_per_minute: reports.iter().map(|r| r.perform_seconds / (r.score_seconds / 60.0).max(1e-9)).fold(0.0, f64::max),
    }
}

/// The summary as a Markdown table, beside issue 20's goals.
pub fn summary_table(s: &Summary, split: &str, options: RenderOptions) -> String {
    let row = |what: &str, ours: String, pianists: String, goal: &str| format!("| {what} | {ours} | {pianists} | {goal} |\n");
    let f = &s.figures;
    let mut t = format!(
        "{} scores of split `{split}` (temperature {}, seed {}):\n\n| figure | ours | pianists | goal |\n| --- | --- | --- | --- |\n",
        s.scores, options.temperature, options.seed
    );
    t += &row("every note once, none other, chords in order", format!("{} of {}", s.played_exactly, s.scores), String::new(), "all");
    t += &row(
        "velocity r with the pianists' mean",
        format!("{:.3}", f.velocity_r),
        format!("{:.3} (one against the others)", f.velocity_r_pianists),
        ">= 0.55",
    );
    t += &row("  louder when higher", format!("{:.3}", f.velocity_r_pitch), String::new(), "");
    t += &row("velocity spread (sd within a piece)", format!("{:.1}", f.velocity_sd), format!("{:.1}", f.velocity_sd_pianists), "");
    t += &row(
        "tempo curve r with the pianists' mean",
        format!("{:.3}", f.tempo_r),
        format!("{:.3} (one against the others)", f.tempo_r_pianists),
        ">= 0.45",
    );
    t += &row("  the score's own timing", format!("{:.3}", f.tempo_r_score), String::new(), "");
    t += &row("chord spread, median (ms)", format!("{:.1}", f.chord_spread_ms), format!("{:.1}", f.chord_spread_ms_pianists), "4..15");
    t +=
        &row("pedal presses per minute", format!("{:.1}", f.presses_per_minute), format!("{:.1}", f.presses_per_minute_pianists), "25..70");
    t += &row("pedal left down at the end", format!("{}", s.pedal_stuck), String::new(), "0");
    t += &row("performing time, slowest (s per minute of score)", format!("{:.3}", s.slowest_seconds_per_minute), String::new(), "<= 3.3");
    t
}
