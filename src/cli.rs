//! The `pianoforte` command line.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pianoforte::{codec, dataset, midi_io};
use std::io::Read;
use std::path::PathBuf;

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
}

pub fn run() -> Result<(), String> {
    match Cli::parse().command {
        Command::Dataset { inputs, out } => build_dataset(&inputs, &out),
        Command::Encode { file, ids } => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let read = midi_io::read(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
            let events = codec::encode(&read.performance);
            let text = if ids {
                codec::to_ids(&events).iter().map(|id| format!("{id}\n")).collect()
            } else {
                codec::to_text(&events)
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            if read.dropped_out_of_range > 0 {
                eprintln!("note: {} notes outside the piano range 21..=108 were dropped", read.dropped_out_of_range);
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
            std::fs::write(&output, midi_io::write(&performance)).map_err(|e| format!("{}: {e}", output.display()))?;
            eprintln!(
                "wrote {} ({} notes, {:.1} s)",
                output.display(),
                performance.notes.len(),
                performance.duration
            );
            Ok(())
        }
    }
}

fn build_dataset(inputs: &[PathBuf], out: &PathBuf) -> Result<(), String> {
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
        println!("dropped {} notes outside the piano range 21..=108", m.notes_dropped_out_of_range);
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
