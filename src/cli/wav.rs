//! `--wav`: performances played by the built-in piano (`crate::piano`) into WAV files, for
//! `generate` and `render`.

use crate::codec::Performance;
use crate::piano::{self, Decibels, SampleRate, SampleSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How the piano renders.
#[derive(clap::Args, Debug, Clone)]
pub struct PianoArgs {
    /// Sample rate of the WAV file in Hz.
    #[arg(long, default_value_t = 48_000, value_parser = clap::value_parser!(u32).range(8_000..=192_000))]
    pub sample_rate: u32,
    /// Volume in dB (the default leaves headroom for 16 loud notes a second under the pedal).
    #[arg(long, default_value_t = piano::DEFAULT_VOLUME_DB, allow_negative_numbers = true, value_parser = parse_volume)]
    pub volume: f32,
    /// The folder of piano samples (default: PIANOFORTE_SAMPLES, beside this program, or
    /// target/piano-samples/ from `cargo xtask samples`).
    #[arg(long, value_name = "DIR")]
    pub samples: Option<PathBuf>,
}

fn parse_volume(text: &str) -> Result<f32, String> {
    let db: f32 = text.parse().map_err(|_| format!("`{text}` is not a number of dB"))?;
    Decibels::new(db).map(Decibels::get).ok_or_else(|| format!("the volume must be at most +24 dB, got {text}"))
}

/// The piano, loaded once for every file a command writes.
pub struct Renderer {
    samples: Arc<SampleSet>,
    rate: SampleRate,
    volume: Decibels,
}

impl Renderer {
    /// Finds and decodes the samples (a second or two), saying where they came from.
    pub fn load(args: &PianoArgs) -> Result<Renderer, String> {
        let folder = match &args.samples {
            Some(folder) => folder.clone(),
            None => piano::locate(&[]).map_err(|e| e.to_string())?,
        };
        let started = Instant::now();
        let samples = SampleSet::load(&folder).map_err(|e| e.to_string())?;
        println!(
            "piano: Salamander Grand Piano V3 by Alexander Holm (CC BY 3.0), {} layers, {:.0} MB from {} in {:.1} s",
            samples.layers(),
            samples.memory_bytes() as f64 / 1e6,
            folder.display(),
            started.elapsed().as_secs_f64()
        );
        let rate = SampleRate::new(args.sample_rate as f32).ok_or_else(|| format!("unusable sample rate {}", args.sample_rate))?;
        let volume = Decibels::new(args.volume).ok_or_else(|| format!("unusable volume {} dB", args.volume))?;
        Ok(Renderer { samples: Arc::new(samples), rate, volume })
    }

    /// Plays `performance` into the WAV file `output`.
    pub fn write(&self, performance: &Performance, output: &Path) -> Result<(), String> {
        let started = Instant::now();
        let audio = piano::render_with(performance, self.samples.clone(), self.rate, self.volume);
        piano::write_wav_file(output, &audio).map_err(|e| format!("{}: {e}", output.display()))?;
        let seconds = audio.frames() as f64 / audio.sample_rate as f64;
        println!(
            "wrote {} ({seconds:.1} s, {} Hz, 32-bit float, peak {:.1} dBFS; {:.0}x real time)",
            output.display(),
            audio.sample_rate,
            20.0 * audio.peak().max(1e-10).log10(),
            seconds / started.elapsed().as_secs_f64().max(1e-9)
        );
        Ok(())
    }
}
