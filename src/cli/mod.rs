//! The `pianoforte` command line.

use crate::codec::{self, midi};
use crate::engine::control::{Control, KEY_CHOICE_ONSETS, KeyControl};
use crate::engine::model::{LoadOptions, Model, ModelSource};
use crate::engine::runtime::{self, RuntimeOptions};
use crate::engine::sampling::Sampling;
use crate::engine::{self, BeatClock, Engine, Guards, Meter, Settings};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

pub mod dataset;
pub mod eval;
pub mod perform;
pub mod render;
pub mod wav;
use crate::perform::render::RenderOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "pianoforte", version, about = "Expressive piano performance: datasets, codec and generation")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Turn performance MIDI (folders searched recursively, or MAESTRO-style CSVs) into token files.
    Dataset {
        /// Folders, MIDI files or CSVs with `midi_filename` and `split` columns.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder for `{split}.npy`, `{split}.docs.json` and `manifest.json`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the events of a MIDI file in readable form (`ON 60`, `SHIFT 120ms`, `VEL 72`, `PEDAL down`).
    Encode {
        file: PathBuf,
        /// Print token ids instead of readable events.
        #[arg(long)]
        ids: bool,
    },
    /// Turn readable events (a file, or `-` for standard input) back into a MIDI file.
    Decode {
        events: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Play: generate performances with the model (by default 60 s with the built-in model to performance.mid;
    /// `--wav FILE` also plays them with the built-in piano into a WAV file).
    Generate(GenerateArgs),
    /// Measure how well a model predicts performances: NLL per event, bits per second of music, accuracy.
    Eval(EvalArgs),
    /// Perform a score: a quantized piano part (any MIDI file) in, a pianist's performance out
    /// (every note of the part once, in its order, with dynamics, timing and pedal).
    Perform(PerformArgs),
    /// Perform the scores of an ASAP-style CSV's split and measure each against the pianists who
    /// played it (velocity and tempo-curve correlation, chord spread, pedalling).
    EvalPerform {
        /// An ASAP-style CSV (as for `align`).
        csv: PathBuf,
        #[arg(long, default_value = "validation")]
        split: String,
        #[command(flatten)]
        performing: PerformingArgs,
        /// Also write every figure, per score, to this JSON file.
        #[arg(long, value_name = "OUT.json")]
        json: Option<PathBuf>,
        /// Perform each score as the plugin performs a track's part while it plays: note by
        /// note with a fixed look-ahead, on the part's tempo.
        #[arg(long)]
        live: bool,
    },
    /// Align performances to their scores through their annotated beats (an ASAP-style CSV) and
    /// write the performance model's training tables; prints the alignment's coverage per split.
    Align {
        /// A CSV with `split`, `midi_performance`, `performance_annotations`, `midi_score`,
        /// `midi_score_annotations` columns (paths relative to its folder).
        csv: PathBuf,
        /// Output folder for `{split}.features.npy`, `{split}.targets.npy`, `{split}.docs.json`, `manifest.json`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Draw a MIDI file as a piano roll (velocity as colour, pedal as a band at the bottom), and/or
    /// play it with the built-in piano into a WAV file (`--wav`).
    #[command(group(clap::ArgGroup::new("outputs").args(["output", "wav"]).required(true).multiple(true)))]
    Render {
        file: PathBuf,
        /// The piano-roll picture (PNG).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The audio (WAV, 32-bit float), played by the built-in piano.
        #[arg(long, value_name = "OUT.wav")]
        wav: Option<PathBuf>,
        #[command(flatten)]
        piano: wav::PianoArgs,
        /// Horizontal scale (lowered for very long pieces).
        #[arg(long, default_value_t = 50.0)]
        pixels_per_second: f64,
        /// Height of one key's row in pixels.
        #[arg(long, default_value_t = 5)]
        row_height: u32,
    },
}

#[derive(clap::Args)]
struct PerformArgs {
    /// The score: a standard MIDI file (any tracks and channels; channel 10 is ignored).
    score: PathBuf,
    /// The performance (MIDI).
    #[arg(short, long, default_value = "performance.mid")]
    output: PathBuf,
    /// Also play it with the built-in piano into this WAV file.
    #[arg(long, value_name = "OUT.wav")]
    wav: Option<PathBuf>,
    #[command(flatten)]
    piano: wav::PianoArgs,
    #[command(flatten)]
    performing: PerformingArgs,
}

/// The performance model and how its outputs are played.
#[derive(clap::Args)]
struct PerformingArgs {
    /// The spread drawn around the model's dynamics and timing (0: exactly the model's; 0..=2).
    #[arg(long, default_value_t = crate::perform::DEFAULT_TEMPERATURE)]
    temperature: f64,
    /// The same seed (and temperature) gives the same performance.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A performance model exported by `python -m pianoforte_train perform` (default: the built-in one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The ONNX Runtime library (as for `generate`).
    #[arg(long, value_name = "PATH")]
    onnxruntime: Option<PathBuf>,
}

impl PerformingArgs {
    fn options(&self) -> Result<RenderOptions, String> {
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(format!("--temperature must lie in 0..=2, got {}", self.temperature));
        }
        Ok(RenderOptions { temperature: self.temperature, seed: self.seed })
    }

    fn load(&self) -> Result<crate::perform::model::PerformModel, String> {
        let runtime = RuntimeOptions { library: self.onnxruntime.clone(), search_folders: Vec::new() };
        crate::perform::model::PerformModel::load(self.model.as_deref(), &LoadOptions { runtime, threads: 1 })
    }
}

/// Where the model and ONNX Runtime come from.
#[derive(clap::Args)]
struct ModelArgs {
    /// An ONNX model exported by `python -m pianoforte_train export` (default: the built-in one).
    #[arg(long)]
    model: Option<PathBuf>,
    /// The ONNX Runtime library (default: ORT_DYLIB_PATH, beside this program, or target/onnxruntime/
    /// from `cargo xtask onnxruntime`).
    #[arg(long, value_name = "PATH")]
    onnxruntime: Option<PathBuf>,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

impl ModelArgs {
    fn load(&self) -> Result<Model, String> {
        let options = LoadOptions {
            runtime: RuntimeOptions { library: self.onnxruntime.clone(), search_folders: Vec::new() },
            threads: self.threads,
        };
        Model::load(&ModelSource::from_option(self.model.clone()), &options).map_err(|e| e.to_string())
    }
}

#[derive(clap::Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Seconds of music to generate (after the primer).
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Sampling temperature, 0.1..=2.0 (lower: safer, higher: wilder); default: the model card's
    /// (chosen by measurement), else 1.0.
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus sampling: draw only from the likeliest events adding up to this probability (0..1],
    /// or `off`; default: the model card's, else off.
    #[arg(long, value_parser = parse_top_p)]
    top_p: Option<TopP>,
    /// How strongly the keys struck lean towards continuing figures played before (the motif
    /// memory, 0..=1; 0: not at all, figures return only by chance); default: the model card's,
    /// else 0.
    #[arg(long)]
    memory: Option<f32>,
    /// With --bpm: how strongly onsets are drawn to where pianists place them in the beat (0..=1;
    /// 0: the model alone); default: the model card's, else 0.
    #[arg(long)]
    tightness: Option<f32>,
    /// Notes per second to aim for (through the model card's calibration), or `off`.
    #[arg(long, default_value = "off", value_parser = parse_density)]
    density: Control,
    /// The key to play in, e.g. "D minor", "Eb major"; `any`: the model settles on a key from its
    /// first notes (the primer's included) and holds it; `off`: no key control at all (format-2
    /// models).
    #[arg(long, default_value = "any")]
    key: String,
    /// Play in the song's time at this tempo (quarter notes per minute): the file carries the tempo
    /// and meter with bar 1 at its start. Without it: free time (rubato).
    #[arg(long, value_parser = parse_bpm)]
    bpm: Option<f64>,
    /// The meter with --bpm, e.g. 3/4 or 6/8.
    #[arg(long, default_value = "4/4", value_parser = Meter::parse, requires = "bpm")]
    meter: Meter,
    /// A MIDI file to continue: encoded, fed to the model first, and kept at the start of the output.
    #[arg(long, value_name = "FILE.mid")]
    primer: Option<PathBuf>,
    /// Leave the primer out of the written file (the continuation starts at 0 s).
    #[arg(long)]
    no_primer_in_output: bool,
    /// Random seed (default: from the clock; printed, so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// How many performances (seeds SEED, SEED+1, ...; files NAME-1.mid, NAME-2.mid, ...).
    #[arg(long, default_value_t = 1)]
    count: usize,
    #[arg(short, long, default_value = "performance.mid")]
    output: PathBuf,
    /// At most this many keys down at once.
    #[arg(long, default_value_t = Guards::default().max_polyphony)]
    max_polyphony: usize,
    /// No key is held longer than this many seconds (its release is forced).
    #[arg(long, default_value_t = Guards::default().max_note_seconds)]
    max_note_seconds: f64,
    /// Also play each performance with the built-in piano into this WAV file (NAME-2.wav, ... with --count).
    #[arg(long, value_name = "FILE.wav")]
    wav: Option<PathBuf>,
    #[command(flatten)]
    piano: wav::PianoArgs,
}

#[derive(clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// MIDI files, folders (searched recursively) or MAESTRO-style CSVs.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Only performances of this split (`split` column of a CSV; the dataset builder's split otherwise).
    #[arg(long)]
    split: Option<String>,
    /// At most this many performances.
    #[arg(long)]
    max_files: Option<usize>,
    /// Performances run side by side in one model call.
    #[arg(long, default_value_t = eval::DEFAULT_BATCH)]
    batch: usize,
    /// Every control off (density, key): the unconditioned figure.
    #[arg(long)]
    no_control: bool,
    /// Only performances with annotated beats (an ASAP-style CSV): the NLL with their beats and
    /// without (format-3 models).
    #[arg(long)]
    beats: bool,
    /// Score the distribution the engine draws from with the motif memory at this strength
    /// (0..=1; default 0: the model alone).
    #[arg(long, default_value_t = 0.0)]
    memory: f32,
    /// Score the distribution the engine draws from with its pull towards the beat's grid at this
    /// strength, where a performance has beats (0..=1; default 0: the model alone).
    #[arg(long, default_value_t = 0.0)]
    tightness: f32,
    /// Mask the events the grammar forbids: `auto` (format-2 models, which are trained so), `on`, `off`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    grammar: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A top-p setting: a probability or explicitly off.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TopP(Option<f32>);

fn parse_top_p(text: &str) -> Result<TopP, String> {
    if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
        return Ok(TopP(None));
    }
    text.parse::<f32>().map(|p| TopP(Some(p))).map_err(|_| format!("`{text}` is neither a probability nor `off`"))
}

fn parse_bpm(text: &str) -> Result<f64, String> {
    let range = engine::beat_clock::BPM_RANGE;
    match text.parse::<f64>() {
        Ok(bpm) if range.contains(&bpm) => Ok(bpm),
        _ => Err(format!("`{text}` is not a tempo from {} to {} quarter notes per minute", range.start(), range.end())),
    }
}

fn parse_density(text: &str) -> Result<Control, String> {
    if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
        return Ok(Control::Off);
    }
    match text.parse::<f32>() {
        Ok(d) if d.is_finite() && d >= 0.0 => Ok(Control::NotesPerSecond(d)),
        _ => Err(format!("`{text}` is neither a number of notes per second nor `off`")),
    }
}

pub fn run() -> Result<(), String> {
    match Cli::parse().command {
        Command::Dataset { inputs, out } => build_dataset(&inputs, &out),
        Command::Encode { file, ids } => {
            let bytes = midi::read_file(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let read = midi::read(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            let events = codec::encode(&read.performance);
            let text = if ids { codec::to_ids(&events).iter().map(|id| format!("{id}\n")).collect() } else { codec::to_text(&events) };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            if read.dropped_out_of_range > 0 {
                eprintln!("note: {} notes outside the piano range (A0..=C8) were dropped", read.dropped_out_of_range);
            }
            Ok(())
        }
        Command::Decode { events, output } => {
            let mut text = String::new();
            let result = if events.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text).map(|_| ())
            } else {
                std::fs::read_to_string(&events).map(|t| text = t)
            };
            result.map_err(|e| format!("{}: {e}", events.display()))?;
            let parsed = codec::from_text(&text).map_err(|e| format!("{}: {e}", events.display()))?;
            let performance = codec::decode(&parsed);
            std::fs::write(&output, midi::write(&performance)).map_err(|e| format!("{}: {e}", output.display()))?;
            eprintln!("wrote {} ({} notes, {:.1} s)", output.display(), performance.notes.len(), performance.duration);
            Ok(())
        }
        Command::Generate(args) => generate(&args),
        Command::Eval(args) => evaluate(&args),
        Command::Align { csv, out } => align(&csv, &out),
        Command::Perform(args) => perform_score(&args),
        Command::EvalPerform { csv, split, performing, json, live } => {
            evaluate_performing(&csv, &split, &performing, json.as_deref(), live)
        }
        Command::Render { file, output, wav, piano, pixels_per_second, row_height } => {
            let read = read_midi(&file)?;
            if let Some(output) = output {
                let options = render::RollOptions { pixels_per_second, row_height, ..Default::default() };
                let image = render::piano_roll(&read.performance, &options);
                std::fs::write(&output, image.to_png()).map_err(|e| format!("{}: {e}", output.display()))?;
                println!(
                    "wrote {} ({} x {} px, {} notes, {:.1} s)",
                    output.display(),
                    image.width,
                    image.height,
                    read.performance.notes.len(),
                    read.performance.duration
                );
            }
            if let Some(wav) = wav {
                wav::Renderer::load(&piano)?.write(&read.performance, &wav)?;
            }
            Ok(())
        }
    }
}

fn read_midi(file: &Path) -> Result<midi::ReadPerformance, String> {
    let bytes = midi::read_file(file).map_err(|e| format!("{}: {e}", file.display()))?;
    midi::read(&bytes).map_err(|e| format!("{}: {e}", file.display()))
}

/// `performance.mid` -> `performance-3.mid` when several are written.
fn numbered(path: &Path, index: usize, count: usize) -> PathBuf {
    if count == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
}

fn describe_control(control: Control) -> String {
    match control {
        Control::Off => "off".into(),
        Control::NotesPerSecond(d) => format!("{d} notes/s"),
    }
}

fn generate(args: &GenerateArgs) -> Result<(), String> {
    if args.count == 0 {
        return Err("--count must be at least 1".into());
    }
    let primer = match &args.primer {
        Some(file) => {
            let read = read_midi(file)?;
            let events = codec::encode(&read.performance);
            if events.is_empty() {
                return Err(format!("{}: no notes in the piano range to start from", file.display()));
            }
            Some((file, events, read.performance.duration))
        }
        None => None,
    };
    let seed = args.seed.unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (now.as_nanos() as u64) % 1_000_000
    });
    // The piano first: missing samples should stop the command before any generating.
    let piano = args.wav.as_ref().map(|_| wav::Renderer::load(&args.piano)).transpose()?;
    let model = args.model.load()?;
    println!("model: {}", model.describe());
    println!(
        "onnxruntime: {} ({} thread{})",
        runtime::loaded_library().map(|p| p.display().to_string()).unwrap_or_default(),
        args.model.threads,
        if args.model.threads == 1 { "" } else { "s" }
    );
    let card_sampling = model.recommended_sampling();
    let sampling = Sampling {
        temperature: args.temperature.unwrap_or(card_sampling.temperature),
        top_p: args.top_p.map_or(card_sampling.top_p, |p| p.0),
        memory: args.memory.unwrap_or(card_sampling.memory),
        tightness: args.tightness.unwrap_or(card_sampling.tightness),
    };
    sampling.check()?;
    let key = if args.key.eq_ignore_ascii_case("any") {
        KeyControl::Any
    } else if args.key.eq_ignore_ascii_case("off") {
        KeyControl::Off
    } else {
        if !model.has_features() {
            return Err(format!("--key needs a model of format 2; {} is format {}", model.name, model.format()));
        }
        let index = model.card.key_index(&args.key).ok_or_else(|| {
            format!("`{}` is not a key of the model card (a note name and major/minor, e.g. \"D minor\", \"Eb major\")", args.key)
        })?;
        KeyControl::Key(index as u8)
    };
    let key_text = match key {
        KeyControl::Key(k) => model.card.key_name(k as usize).unwrap_or_default().to_string(),
        KeyControl::Off => "off".into(),
        _ => format!("any (the model's, from its first {KEY_CHOICE_ONSETS} notes)"),
    };
    let guards = Guards { max_polyphony: args.max_polyphony, max_note_seconds: args.max_note_seconds };
    let settings = Settings { sampling, control: args.density, key, guards, seed };
    let timing = match args.bpm {
        Some(bpm) if model.has_beats() => format!(", {bpm} BPM in {}", args.meter),
        Some(bpm) => {
            format!(", free time (this model has no beat input, format {}; the file carries {bpm} BPM in {})", model.format(), args.meter)
        }
        None => ", free time".into(),
    };
    let mut engine = Engine::new(model, settings).map_err(|e| e.to_string())?;
    engine.set_beat_clock(args.bpm.map(|bpm| BeatClock::steady(bpm, args.meter)));
    let grid = match args.bpm {
        Some(bpm) => midi::WriteGrid { bpm, time_signature: Some((args.meter.numerator as u8, args.meter.denominator as u8)), offset: 0.0 },
        None => midi::WriteGrid::MILLISECONDS,
    };
    let bin = match args.density {
        Control::Off => String::new(),
        Control::NotesPerSecond(_) => {
            let (lo, hi) = engine.density().bin_range(engine.density().index_of(args.density));
            let how = if engine.density().is_calibrated() { "calibrated: " } else { "" };
            match hi {
                Some(hi) => format!(" ({how}the model's bin [{lo}, {hi}) notes/s)"),
                None => format!(" ({how}the model's top bin, >= {lo} notes/s)"),
            }
        }
    };
    println!(
        "settings: {} s, temperature {}, top-p {}, memory {}, tightness {}, density {}{bin}, key {key_text}{timing}, seed {seed}",
        args.seconds,
        sampling.temperature,
        sampling.top_p.map_or("off".to_string(), |p| p.to_string()),
        sampling.memory,
        sampling.tightness,
        describe_control(args.density),
    );
    let primer_events: &[codec::Event] = match &primer {
        Some((file, events, duration)) => {
            println!(
                "primer: {} ({} events, {duration:.1} s){}",
                file.display(),
                events.len(),
                if args.no_primer_in_output { ", left out of the output" } else { ", kept at the start" }
            );
            events
        }
        None => &[],
    };
    for i in 0..args.count {
        let seed_i = seed.wrapping_add(i as u64);
        engine.reseed(seed_i);
        let generated = engine::generate(&mut engine, primer_events, args.seconds).map_err(|e| e.to_string())?;
        let with_primer = !args.no_primer_in_output;
        let performance = generated.performance(with_primer);
        let output = numbered(&args.output, i + 1, args.count);
        std::fs::write(&output, midi::write_on_grid(&performance, &grid)).map_err(|e| format!("{}: {e}", output.display()))?;
        let continuation = generated.continuation();
        let notes = continuation.iter().filter(|e| matches!(e, codec::Event::NoteOn(_))).count();
        let pedal = continuation.iter().filter(|e| matches!(e, codec::Event::PedalDown)).count();
        let steps = continuation.len();
        let primed = if primer.is_some() { format!(", primer run in {:.2} s", generated.prime_seconds) } else { String::new() };
        println!(
            "wrote {} (seed {seed_i}): {:.1} s{}, {notes} notes ({:.1} notes/s), {pedal} pedal presses, {steps} events \
             ({} forced); {:.0} events/s, {:.0}x real time; one step: median {:.0} us, p99 {:.0} us{primed}",
            output.display(),
            performance.duration,
            if with_primer && primer.is_some() { " with the primer" } else { "" },
            notes as f64 / generated.seconds.max(1e-9),
            generated.forced,
            steps as f64 / generated.wall_seconds.max(1e-9),
            generated.seconds / generated.wall_seconds.max(1e-9),
            generated.step_percentiles().0,
            generated.step_percentiles().1,
        );
        if let (KeyControl::Any, Some(k)) = (key, engine.chosen_key()) {
            println!("  key: the model settled on {}", engine.model().card.key_name(k as usize).unwrap_or_default());
        }
        if let (Some(piano), Some(wav)) = (&piano, &args.wav) {
            piano.write(&performance, &numbered(wav, i + 1, args.count))?;
        }
    }
    Ok(())
}

fn perform_score(args: &PerformArgs) -> Result<(), String> {
    let render = args.performing.options()?;
    let bytes = midi::read_file(&args.score).map_err(|e| format!("{}: {e}", args.score.display()))?;
    let score = crate::perform::score::Score::read(&bytes).map_err(|e| format!("{}: {e}", args.score.display()))?;
    for notice in &score.notices {
        println!("note: {notice}");
    }
    let piano = args.wav.as_ref().map(|_| wav::Renderer::load(&args.piano)).transpose()?;
    let mut model = args.performing.load()?;
    let started = std::time::Instant::now();
    let performance = crate::perform::perform(&score, &mut model, render)?;
    std::fs::write(&args.output, codec::midi::write(&performance)).map_err(|e| format!("{}: {e}", args.output.display()))?;
    let presses = performance.pedal.iter().filter(|p| p.down).count();
    println!(
        "wrote {}: {} notes of {} in the score, {:.1} s, {presses} pedal presses; performed in {:.2} s",
        args.output.display(),
        performance.notes.len(),
        score.notes.len(),
        performance.duration,
        started.elapsed().as_secs_f64()
    );
    if let (Some(piano), Some(wav)) = (&piano, &args.wav) {
        piano.write(&performance, wav)?;
    }
    Ok(())
}

fn evaluate_performing(csv: &Path, split: &str, performing: &PerformingArgs, json: Option<&Path>, live: bool) -> Result<(), String> {
    let options = performing.options()?;
    let pairs: Vec<perform::Pair> = perform::read_pairs(csv)?.into_iter().filter(|p| p.split == split).collect();
    let mut model = performing.load()?;
    println!("model: {}", model.name);
    let (reports, skipped) = perform::evaluate(&pairs, &mut model, options, live)?;
    if reports.is_empty() {
        return Err(format!("no score of split `{split}` in {} could be measured", csv.display()));
    }
    let summary = perform::summarise(&reports);
    println!("{}", perform::summary_table(&summary, split, options));
    for reason in &skipped {
        println!("skipped {reason}");
    }
    if let Some(path) = json {
        let all = serde_json::json!({ "summary": summary, "pieces": reports, "skipped": skipped, "temperature": options.temperature, "seed": options.seed, "live": live });
        std::fs::write(path, serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn align(csv: &Path, out: &Path) -> Result<(), String> {
    let pairs = perform::read_pairs(csv)?;
    let (splits, skipped) = perform::build(&pairs, out)?;
    for (split, s) in &splits {
        println!(
            "{split}: {} performances, {} score notes, {:.1} % matched (lowest {:.1} %)",
            s.performances,
            s.notes,
            100.0 * s.coverage,
            100.0 * s.lowest_coverage
        );
    }
    for reason in &skipped {
        println!("skipped {reason}");
    }
    println!("wrote {}", out.display());
    Ok(())
}

fn evaluate(args: &EvalArgs) -> Result<(), String> {
    Sampling { memory: args.memory, tightness: args.tightness, ..Sampling::default() }.check()?;
    let mut model = args.model.load()?;
    let grammar = match args.grammar.as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    };
    let options = eval::EvalOptions {
        split: args.split.clone(),
        max_files: args.max_files,
        batch: args.batch,
        no_control: args.no_control,
        grammar,
        beats: args.beats,
        memory: args.memory,
        tightness: args.tightness,
        ..Default::default()
    };
    let bar = ProgressBar::new(0);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} evaluating {pos}/{len} files [{bar:30}] {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let report = eval::evaluate(&mut model, &args.inputs, &options, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report).expect("the report serializes"));
        return Ok(());
    }
    println!("model: {}", model.describe());
    println!(
        "{} performances{}, {} events, {:.2} h of music",
        report.docs,
        report.split.as_ref().map(|s| format!(" ({s})")).unwrap_or_default(),
        report.events,
        report.duration_s / 3600.0
    );
    println!(
        "  controls {}, grammar mask {}",
        if report.control { "on (density and key of the music)" } else { "off (unconditioned)" },
        if report.grammar { "on" } else { "off" }
    );
    println!("  NLL       {:.4} nats/event", report.nll_nats_per_event);
    if let Some(free) = report.nll_without_beats_nats_per_event {
        println!("            with the annotated beats; without them {free:.4} nats/event");
    }
    if let Some(bps) = report.bits_per_second {
        println!("  bits/s    {bps:.2} (per second of music)");
    }
    println!("  accuracy  {:.4} (next event)", report.accuracy);
    println!("  ({:.1} s)", report.seconds);
    if !report.skipped.is_empty() {
        println!("skipped {} file(s):", report.skipped.len());
        for s in &report.skipped {
            println!("  {}: {}", s.source, s.reason);
        }
    }
    Ok(())
}

fn build_dataset(inputs: &[PathBuf], out: &Path) -> Result<(), String> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} encoding {pos}/{len} files [{bar:30}] {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let report = dataset::build(inputs, out, &|n| bar.set_length(n as u64), &|| bar.inc(1));
    bar.finish_and_clear();
    let report = report?;
    let m = &report.manifest;
    let (mut hours, mut events, mut docs) = (0.0, 0, 0);
    for (split, s) in &m.splits {
        println!("{split:>10}: {:5} performances {:8.2} h {:11} events {:9} notes", s.documents, s.hours, s.events, s.notes);
        hours += s.hours;
        events += s.events;
        docs += s.documents;
    }
    println!(
        "encoded {docs} of {} files: {hours:.2} h of music, {events} events ({:.1} events per second of music) in {:.1} s ({:.0} s of music per second)",
        report.files,
        events as f64 / (hours * 3600.0),
        report.seconds,
        hours * 3600.0 / report.seconds.max(1e-9),
    );
    if m.notes_dropped_out_of_range > 0 {
        println!("dropped {} notes outside the piano range (A0..=C8)", m.notes_dropped_out_of_range);
    }
    if !m.skipped.is_empty() {
        println!("skipped {} file(s):", m.skipped.len());
        for s in &m.skipped {
            println!("  {}: {}", s.source, s.reason);
        }
    }
    println!("wrote {}", out.display());
    Ok(())
}
