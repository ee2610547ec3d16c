//! How well a model predicts real performances: negative log-likelihood per event, bits per
//! second of music, and next-event accuracy.
//!
//! Each performance is encoded with the codec and run whole (in chunks that carry the hidden
//! state): inputs `[START, e0 .. e(n-2)]`, targets `e0 .. e(n-1)`; the controls at position t are
//! the note density (and for format-2 models the key histogram) of the music at the time of
//! target t, or every control off (`--no-control`, the unconditioned figure). Format-2 models also
//! get the music-state features and are scored over the events the grammar allows
//! (`codec::features`), as they were trained. Format-3 models hear the annotated beats of the
//! performances that have them (ASAP-style CSVs) and free time elsewhere; `--beats` scores the
//! annotated performances twice, with their beats and without. This is exactly what
//! `python -m pianoforte_train evaluate` computes on the token files of the same performances.
//! `--memory M` scores the distribution the engine draws from with its motif memory at strength
//! M (`engine::motif`), following each performance's own onsets, and `--tightness T` with the
//! engine's pull towards the beat's grid at strength T (`engine::tightness`) where a performance
//! has beats, where the memory leans harder as the engine's does (`motif::strength`; Rust only).

use crate::cli::dataset::{self, Skipped, Source};
use crate::codec::VOCABULARY;
use crate::codec::beats::{BEAT_SIZE, BeatGrid, write_beat_features};
use crate::codec::density::event_times;
use crate::codec::features::{Grammar, KEY_SIZE, STATE_SIZE, key_histograms, write_state_features};
use crate::engine::control::DensityControl;
use crate::engine::model::{Error, Inputs, Model, START_TOKEN};
use crate::engine::motif::{self, MotifMemory};
use crate::engine::tightness;
use serde::Serialize;
use std::path::PathBuf;

/// Positions per model call.
pub const DEFAULT_CHUNK: usize = 2048;
/// Performances run side by side in one model call (as the Python evaluator does).
pub const DEFAULT_BATCH: usize = 16;

#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Keep only sources of this split (CSV rows by their `split` column; files and folders by the
    /// dataset builder's split of their piece).
    pub split: Option<String>,
    /// Evaluate at most this many performances (after the split filter, in path order).
    pub max_files: Option<usize>,
    pub chunk: usize,
    /// Performances per model call (padded to the longest; the padding is not scored).
    pub batch: usize,
    /// Score with every control off (unconditioned).
    pub no_control: bool,
    /// Mask the events the grammar forbids (None: for format-2 models, which are trained so).
    pub grammar: Option<bool>,
    /// Only the performances with annotated beats, scored with their beats and without.
    pub beats: bool,
    /// The motif memory's strength (`Sampling::memory`; 0: the model alone).
    pub memory: f32,
    /// The pull towards the beat's grid (`Sampling::tightness`; 0: the model alone).
    pub tightness: f32,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            split: None,
            max_files: None,
            chunk: DEFAULT_CHUNK,
            batch: DEFAULT_BATCH,
            no_control: false,
            grammar: None,
            beats: false,
            memory: 0.0,
            tightness: 0.0,
        }
    }
}

/// How documents are scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreOptions {
    pub chunk: usize,
    /// The density (and key) controls of the music, or every control off.
    pub control: bool,
    /// Over the events the grammar allows.
    pub grammar: bool,
    /// The documents' annotated beats (format 3), or free time throughout.
    pub beats: bool,
    /// The motif memory's strength, as the engine draws with it (0: the model alone).
    pub memory: f32,
    /// The pull towards the beat's grid, as the engine draws with it (0: the model alone).
    pub tightness: f32,
}

/// One document to score: its token ids and its annotated beats, if any.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    pub ids: &'a [u16],
    pub beats: Option<&'a BeatGrid>,
}

/// The figures of one document.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    /// Sum of the negative log-likelihoods of the targets, in nats.
    pub nll: f64,
    /// Targets that were the model's most likely event.
    pub correct: u64,
    pub events: u64,
}

impl Scores {
    /// Scores one prediction: `logits` with the forbidden events at -inf, `target` what came.
    fn add_prediction(&mut self, logits: &[f32], target: usize) {
        let (mut max, mut argmax) = (f64::NEG_INFINITY, 0);
        for (i, &x) in logits.iter().enumerate() {
            if (x as f64) > max {
                max = x as f64;
                argmax = i;
            }
        }
        let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
        self.nll += max + sum.ln() - logits[target] as f64;
        self.correct += (argmax == target) as u64;
        self.events += 1;
    }

    fn add(&mut self, scores: &[Scores]) {
        for s in scores {
            self.nll += s.nll;
            self.correct += s.correct;
            self.events += s.events;
        }
    }
}

/// What `pianoforte eval` reports (the keys match the Python evaluator's JSON where they overlap).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub nll_nats_per_event: f64,
    pub bits_per_second: Option<f64>,
    pub accuracy: f64,
    pub events: u64,
    pub docs: usize,
    pub duration_s: f64,
    pub split: Option<String>,
    /// Whether the controls were on (false: `--no-control`, unconditioned).
    pub control: bool,
    /// Whether the NLL is over the events the grammar allows.
    pub grammar: bool,
    /// The motif memory's strength the NLL was scored with (0: the model alone).
    pub memory: f32,
    /// The pull towards the beat's grid the NLL was scored with (0: the model alone).
    pub tightness: f32,
    /// `--beats`: the NLL above is with the annotated beats, this one without them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nll_without_beats_nats_per_event: Option<f64>,
    pub format_version: u32,
    pub skipped: Vec<Skipped>,
    pub seconds: f64,
}

/// Scores one document of token ids.
pub fn score_tokens(model: &mut Model, density: &DensityControl, ids: &[u16], options: ScoreOptions) -> Result<Scores, Error> {
    Ok(score_batch(model, density, &[Document { ids, beats: None }], options)?[0])
}

/// The beat features at the time of every event of a document (free time without beats).
fn document_beats(ids: &[u16], beats: Option<&BeatGrid>) -> Vec<f32> {
    let mut out = vec![0.0f32; ids.len() * BEAT_SIZE];
    for (pos, step) in event_times(ids).into_iter().enumerate() {
        write_beat_features(beats.and_then(|grid| grid.position(step)).as_ref(), &mut out[pos * BEAT_SIZE..(pos + 1) * BEAT_SIZE]);
    }
    out
}

/// The state features before every event of a document, and which events the grammar allows there.
fn document_features(ids: &[u16], grammar: bool) -> (Vec<f32>, Vec<bool>) {
    let vocab = VOCABULARY.size as usize;
    let mut state = vec![0.0f32; ids.len() * STATE_SIZE];
    let mut allowed = vec![true; if grammar { ids.len() * vocab } else { 0 }];
    let mut g = Grammar::new();
    for (pos, &id) in ids.iter().enumerate() {
        write_state_features(g.state(), &mut state[pos * STATE_SIZE..(pos + 1) * STATE_SIZE]);
        if grammar {
            for (e, slot) in allowed[pos * vocab..(pos + 1) * vocab].iter_mut().enumerate() {
                *slot = crate::codec::Event::from_id(e as u16).is_some_and(|event| g.allows(event));
            }
        }
        if let Some(event) = crate::codec::Event::from_id(id) {
            g.apply(event);
        }
    }
    (state, allowed)
}

/// Scores documents side by side (B = `docs.len()`), padded to the longest; in chunks of
/// `options.chunk` positions that carry the hidden state.
pub fn score_batch(
    model: &mut Model,
    density: &DensityControl,
    documents: &[Document],
    options: ScoreOptions,
) -> Result<Vec<Scores>, Error> {
    let docs: Vec<&[u16]> = documents.iter().map(|d| d.ids).collect();
    let mut scores = vec![Scores::default(); docs.len()];
    let longest = docs.iter().map(|d| d.len()).max().unwrap_or(0);
    if longest == 0 {
        return Ok(scores);
    }
    let (b, chunk, size) = (docs.len(), options.chunk.max(1), density.size());
    let vocab = VOCABULARY.size as usize;
    let (features, beat_input) = (model.has_features(), model.has_beats());
    let bins: Vec<Vec<usize>> = docs.iter().map(|d| density.bins(d)).collect();
    let keys: Vec<Vec<[f32; KEY_SIZE]>> =
        docs.iter().map(|d| if features && options.control { key_histograms(d) } else { Vec::new() }).collect();
    let doc_features: Vec<(Vec<f32>, Vec<bool>)> =
        docs.iter().map(|d| if features || options.grammar { document_features(d, options.grammar) } else { Default::default() }).collect();
    let doc_beats: Vec<Vec<f32>> =
        documents.iter().map(|d| if beat_input { document_beats(d.ids, d.beats.filter(|_| options.beats)) } else { Vec::new() }).collect();
    // Each document's motif memory, fed its onsets at their times as the engine feeds its own.
    let mut memories = vec![MotifMemory::default(); docs.len()];
    let times: Vec<Vec<i64>> = docs.iter().map(|d| event_times(d)).collect();
    let mut work = vec![0.0f32; vocab];
    let mut hidden = model.zero_hidden(b);
    for start in (0..longest).step_by(chunk) {
        let t = chunk.min(longest - start);
        let mut inputs = vec![0i64; t * b];
        let mut control = vec![0.0f32; t * b * size];
        let mut key = vec![0.0f32; if features { t * b * KEY_SIZE } else { 0 }];
        let mut state = vec![0.0f32; if features { t * b * STATE_SIZE } else { 0 }];
        let mut beat = vec![0.0f32; if beat_input { t * b * BEAT_SIZE } else { 0 }];
        for k in 0..t {
            for (j, doc) in docs.iter().enumerate() {
                let (pos, row) = (start + k, k * b + j);
                inputs[row] = match pos {
                    0 => START_TOKEN,
                    _ if pos < doc.len() => doc[pos - 1] as i64,
                    _ => 0,
                };
                let index = if pos < doc.len() && options.control { bins[j][pos] } else { density.no_control() };
                control[row * size + index] = 1.0;
                if features && pos < doc.len() {
                    if options.control {
                        key[row * KEY_SIZE..(row + 1) * KEY_SIZE].copy_from_slice(&keys[j][pos]);
                    }
                    state[row * STATE_SIZE..(row + 1) * STATE_SIZE]
                        .copy_from_slice(&doc_features[j].0[pos * STATE_SIZE..(pos + 1) * STATE_SIZE]);
                }
                if beat_input && pos < doc.len() {
                    beat[row * BEAT_SIZE..(row + 1) * BEAT_SIZE].copy_from_slice(&doc_beats[j][pos * BEAT_SIZE..(pos + 1) * BEAT_SIZE]);
                }
            }
        }
        let inputs = Inputs { events: &inputs, control: &control, key: &key, state: &state, beat: &beat };
        let (logits, next_hidden) = model.run(&inputs, &hidden, t, b)?;
        hidden = next_hidden;
        for k in 0..t {
            for (j, doc) in docs.iter().enumerate() {
                let pos = start + k;
                if pos >= doc.len() {
                    continue;
                }
                let row = &logits[(k * b + j) * vocab..(k * b + j + 1) * vocab];
                for (i, (slot, &x)) in work.iter_mut().zip(row).enumerate() {
                    let allowed = !options.grammar || doc_features[j].1[pos * vocab + i];
                    *slot = if allowed { x } else { f32::NEG_INFINITY };
                }
                let (memory, step) = (&mut memories[j], times[j][pos]);
                let beat = documents[j].beats.filter(|_| options.beats).and_then(|grid| Some((grid, grid.phase(step)?.1)));
                let pull = if beat.is_some() { options.tightness } else { 0.0 };
                memory.blend(&mut work, 1.0, motif::strength(options.memory, pull), step);
                if let Some((grid, period)) = beat {
                    tightness::pull(&mut work, 1.0, options.tightness, step, period, |s| grid.phase(s).map(|(phase, _)| phase));
                    let downbeat = grid.near_downbeat(step, tightness::DOWNBEAT_REACH_BEATS);
                    tightness::accent(&mut work, 1.0, options.tightness, downbeat);
                }
                scores[j].add_prediction(&work, doc[pos] as usize);
                if let Some(crate::codec::Event::NoteOn(pitch)) = crate::codec::Event::from_id(doc[pos]) {
                    memory.strike(pitch, step);
                }
            }
        }
    }
    Ok(scores)
}

/// The performances named by `inputs` (MIDI files, folders, MAESTRO-style CSVs), filtered.
pub fn sources(inputs: &[PathBuf], options: &EvalOptions, skipped: &mut Vec<Skipped>) -> Result<Vec<Source>, String> {
    let mut sources = dataset::collect_sources(inputs, skipped)?;
    if let Some(split) = &options.split {
        sources.retain(|s| &s.split == split);
    }
    if let Some(max) = options.max_files {
        sources.truncate(max);
    }
    Ok(sources)
}

/// Evaluates the model on every source; unreadable files are skipped and listed.
/// `progress(done, total)` is called after each file.
pub fn evaluate(
    model: &mut Model,
    inputs: &[PathBuf],
    options: &EvalOptions,
    progress: &dyn Fn(usize, usize),
) -> Result<EvalReport, String> {
    let started = std::time::Instant::now();
    let mut skipped = Vec::new();
    let mut sources = sources(inputs, options, &mut skipped)?;
    if options.beats {
        sources.retain(|s| s.annotations.is_some());
    }
    if sources.is_empty() {
        let which = options.split.as_ref().map(|s| format!(" of split `{s}`")).unwrap_or_default();
        let annotated = if options.beats { " with beat annotations (an ASAP-style CSV names them)" } else { "" };
        return Err(format!("no performances{which}{annotated} found in the inputs"));
    }
    let density = DensityControl::from_card(&model.card.control);
    // Read everything first (a few MB of tokens), then run the longest together, as Python does.
    let mut encoded = Vec::new();
    for source in &sources {
        match dataset::encode_source(source) {
            Ok(e) => encoded.push(e),
            Err(reason) => skipped.push(Skipped { source: source.path.display().to_string(), reason }),
        }
    }
    encoded.sort_by_key(|d| std::cmp::Reverse(d.tokens.len()));
    if encoded.is_empty() {
        return Err(format!("none of the {} performance(s) could be read (first: {})", sources.len(), skipped[0].reason));
    }
    let duration: f64 = encoded.iter().map(|e| e.duration_s).sum();
    let docs: Vec<Document> = encoded.iter().map(|e| Document { ids: &e.tokens, beats: e.beats.as_ref() }).collect();
    let passes = if options.beats { 2 } else { 1 };
    let mut done = (sources.len() - docs.len()) * passes;
    progress(done, sources.len() * passes);
    let score = ScoreOptions {
        chunk: options.chunk,
        control: !options.no_control,
        grammar: options.grammar.unwrap_or(model.has_features()),
        beats: true,
        memory: options.memory,
        tightness: options.tightness,
    };
    let mut total = Scores::default();
    for group in docs.chunks(options.batch.max(1)) {
        total.add(&score_batch(model, &density, group, score).map_err(|e| e.to_string())?);
        done += group.len();
        progress(done, sources.len() * passes);
    }
    let mut without_beats = None;
    if options.beats {
        let mut free = Scores::default();
        for group in docs.chunks(options.batch.max(1)) {
            free.add(&score_batch(model, &density, group, ScoreOptions { beats: false, ..score }).map_err(|e| e.to_string())?);
            done += group.len();
            progress(done, sources.len() * passes);
        }
        without_beats = Some(free.nll / free.events.max(1) as f64);
    }
    let events = total.events.max(1) as f64;
    Ok(EvalReport {
        model: model.name.clone(),
        nll_nats_per_event: total.nll / events,
        bits_per_second: (duration > 0.0).then(|| total.nll / std::f64::consts::LN_2 / duration),
        accuracy: total.correct as f64 / events,
        events: total.events,
        docs: docs.len(),
        duration_s: duration,
        split: options.split.clone(),
        control: score.control,
        grammar: score.grammar,
        memory: score.memory,
        tightness: score.tightness,
        nll_without_beats_nats_per_event: without_beats,
        format_version: model.format(),
        skipped,
        seconds: started.elapsed().as_secs_f64(),
    })
}
