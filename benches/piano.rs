//! The built-in piano's cost and load (issue 18): what `Piano::render` costs per block while a
//! fixed performance plays, as a share of the block's duration, and how long the samples take to
//! load. Needs the samples (`cargo xtask samples`, or `PIANOFORTE_SAMPLES`).
//!
//! ```text
//! cargo bench --bench piano -- [--seconds N] [--blocks 64,512] [--wav FILE] [--compare FILE] [--all-layers DIR]
//! ```
//!
//! - The performance: 16 notes/s for `--seconds` (default 60) at 48 kHz, keys over the whole
//!   keyboard, velocities 30..=127, each held 0.1-0.8 s, the sustain pedal down 2 s of every 3 s;
//!   all from a fixed pseudo-random sequence, so every run and every build plays the same notes.
//! - For each block size (`--blocks`, default 64 and 512 frames): a fresh piano plays it block by
//!   block as a host's process() would (queue the block's events, render), and each block is
//!   timed twice: the thread's CPU time (what rendering costs, without the waits for a core that
//!   a busy machine adds) and the wall time. Printed: p50, p99, max and mean as % of the block's
//!   duration, and the mean number of voices sounding (heard or not).
//! - `--wav FILE` renders the same performance offline (`piano::render`, default volume) into a
//!   32-bit float WAV file; `--compare FILE` renders it and compares with such a file (from another
//!   build): the largest sample difference and the RMS of the difference, in dBFS.
//! - Load: wall and CPU time of `SampleSet::load`, decoded size, each layer's loudness; with
//!   `--all-layers DIR` (a folder of all 16 Salamander layers) also other layer choices.

use pianoforte::codec::{Note, PedalChange, Performance};
use pianoforte::piano::{self, LoadOptions, Piano, Pitch, SampleRate, SampleSet, Stereo, Velocity};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

#[path = "common/cpu_time.rs"]
mod cpu_time;

const RATE: f32 = 48_000.0;
const NOTES_PER_SECOND: f64 = 16.0;

struct Args {
    seconds: f64,
    blocks: Vec<usize>,
    wav: Option<PathBuf>,
    compare: Option<PathBuf>,
    all_layers: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { seconds: 60.0, blocks: vec![64, 512], wav: None, compare: None, all_layers: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes `--bench` to harness-less benches.
            "--bench" => {}
            "--seconds" => args.seconds = value("--seconds")?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--blocks" => {
                let list = value("--blocks")?;
                args.blocks = list.split(',').map(|b| b.parse().map_err(|e| format!("--blocks: {e}"))).collect::<Result<_, _>>()?;
            }
            "--wav" => args.wav = Some(PathBuf::from(value("--wav")?)),
            "--compare" => args.compare = Some(PathBuf::from(value("--compare")?)),
            "--all-layers" => args.all_layers = Some(PathBuf::from(value("--all-layers")?)),
            _ => {
                return Err("usage: piano [--seconds N] [--blocks 64,512] [--wav FILE] [--compare FILE] [--all-layers DIR]".into());
            }
        }
    }
    if args.blocks.contains(&0) {
        return Err("--blocks: sizes must be at least 1".into());
    }
    Ok(args)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| fail(&e));
    let folder = piano::locate(&[]).unwrap_or_else(|e| fail(&e.to_string()));
    let set = Arc::new(load(&folder, &LoadOptions::default()));
    if let Some(all) = &args.all_layers {
        compare_layer_choices(all);
    }
    let rate = SampleRate::new(RATE).unwrap();
    let performance = performance(args.seconds);
    for &block in &args.blocks {
        report_costs(block, &play_in_blocks(&set, &performance, block));
    }
    if let Some(path) = &args.wav {
        piano::write_wav_file(path, &piano::render(&performance, set.clone(), rate)).unwrap_or_else(|e| fail(&e.to_string()));
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.compare {
        let reference = read_wav(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
        report_difference(&reference, &piano::render(&performance, set, rate));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("piano bench: {message}");
    std::process::exit(2)
}

/// The fixed performance: 16 notes/s, pedal down 2 s of every 3 s (see the module docs).
fn performance(seconds: f64) -> Performance {
    let mut state = 0x2545_f491u32;
    let mut random = |n: u32| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (state >> 8) % n
    };
    let count = (seconds * NOTES_PER_SECOND) as usize;
    let notes = (0..count)
        .map(|i| {
            let start = i as f64 / NOTES_PER_SECOND;
            let (pitch, velocity) = (21 + random(88) as u8, 30 + random(98) as u8);
            Note { pitch, velocity, start, end: start + 0.1 + random(8) as f64 / 10.0 }
        })
        .collect();
    let pedal = (0..(seconds / 3.0).ceil() as usize)
        .flat_map(|k| {
            let t = 3.0 * k as f64;
            [PedalChange { time: t, down: true }, PedalChange { time: t + 2.0, down: false }]
        })
        .collect();
    Performance { notes, pedal, duration: seconds }
}

#[derive(Debug, Clone, Copy)]
enum Event {
    Off(Pitch),
    Pedal(bool),
    On(Pitch, Velocity),
}

/// The performance's events at their frames, in the order `piano::render` applies them.
fn events(performance: &Performance) -> Vec<(u64, Event)> {
    let frame = |seconds: f64| (seconds * RATE as f64).round() as u64;
    let mut events: Vec<(u64, u8, Event)> = Vec::new();
    for note in &performance.notes {
        let (key, velocity) = (Pitch::new(note.pitch).unwrap(), Velocity::new(note.velocity).unwrap());
        events.push((frame(note.start), 2, Event::On(key, velocity)));
        events.push((frame(note.end), 0, Event::Off(key)));
    }
    events.extend(performance.pedal.iter().map(|p| (frame(p.time), 1, Event::Pedal(p.down))));
    events.sort_by_key(|&(at, rank, _)| (at, rank));
    events.into_iter().map(|(at, _, event)| (at, event)).collect()
}

/// What each block cost (wall and thread CPU seconds) and how many voices sounded after it.
struct Blocks {
    frames: usize,
    wall: Vec<f64>,
    cpu: Vec<f64>,
    voices: Vec<usize>,
}

/// Plays `performance` in blocks of `frames` as a host would: each block's events, then render.
fn play_in_blocks(set: &Arc<SampleSet>, performance: &Performance, frames: usize) -> Blocks {
    let mut piano = Piano::new(set.clone(), SampleRate::new(RATE).unwrap());
    let events = events(performance);
    let total = (performance.duration * RATE as f64) as u64;
    let count = total.div_ceil(frames as u64) as usize;
    let mut blocks = Blocks { frames, wall: Vec::with_capacity(count), cpu: Vec::with_capacity(count), voices: Vec::with_capacity(count) };
    let (mut left, mut right) = (vec![0.0f32; frames], vec![0.0f32; frames]);
    let mut next = 0;
    for block in 0..count as u64 {
        let start = block * frames as u64;
        let (clock, cpu) = (Instant::now(), thread_cpu_seconds());
        while let Some(&(at, event)) = events.get(next).filter(|e| e.0 < start + frames as u64) {
            let offset = (at - start) as u32;
            let queued = match event {
                Event::On(key, velocity) => piano.note_on(offset, key, velocity),
                Event::Off(key) => piano.note_off(offset, key),
                Event::Pedal(down) => piano.pedal(offset, down),
            };
            queued.expect("a block holds far fewer than QUEUE events");
            next += 1;
        }
        piano.render(&mut left, &mut right);
        blocks.wall.push(clock.elapsed().as_secs_f64());
        blocks.cpu.push(thread_cpu_seconds() - cpu);
        black_box((&left, &right));
        blocks.voices.push(piano.active_voices());
    }
    blocks
}

/// The `p` quantile (0..=1) of `sorted`, by the nearest rank.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report_costs(block: usize, blocks: &Blocks) {
    let duration = blocks.frames as f64 / RATE as f64;
    let voices = blocks.voices.iter().sum::<usize>() as f64 / blocks.voices.len() as f64;
    println!("block {block} frames ({:.3} ms), {} blocks, {voices:.1} voices sounding on average:", duration * 1e3, blocks.wall.len());
    for (clock, seconds) in [("thread CPU", &blocks.cpu), ("wall", &blocks.wall)] {
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let share = |seconds: f64| 100.0 * seconds / duration;
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        let (p50, p99) = (quantile(&sorted, 0.5), quantile(&sorted, 0.99));
        println!(
            "  {clock:>10}: p50 {:.2} %, p99 {:.2} %, max {:.1} %, mean {:.2} % of the block (p50 {:.1} us, p99 {:.1} us)",
            share(p50),
            share(p99),
            share(sorted[sorted.len() - 1]),
            share(mean),
            p50 * 1e6,
            p99 * 1e6,
        );
    }
}

/// CPU time of this thread: what the rendering cost without the time the thread waited for a
/// core on a busy machine (0 where the system does not tell).
fn thread_cpu_seconds() -> f64 {
    cpu_time::thread_cpu_seconds().unwrap_or(0.0)
}

/// CPU seconds of this process (user + system, all threads), where Linux tells.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn load(folder: &Path, options: &LoadOptions) -> SampleSet {
    let (clock, cpu) = (Instant::now(), process_cpu_seconds());
    let set = SampleSet::load_with(folder, options).unwrap_or_else(|e| fail(&e.to_string()));
    let loudness: Vec<String> = set.layer_loudness_db().iter().map(|db| format!("{db:.1}")).collect();
    println!(
        "load: layers {:?}, notes cut at {} s: {:.2} s wall, {:.2} s CPU on {} threads; {:.1} MB decoded; layer loudness [{}] dB",
        options.layers,
        options.max_seconds,
        clock.elapsed().as_secs_f64(),
        process_cpu_seconds() - cpu,
        options.threads.min(std::thread::available_parallelism().map_or(1, |n| n.get())),
        set.memory_bytes() as f64 / 1e6,
        loudness.join(", ")
    );
    set
}

/// The layer choices weighed against the shipped one (`piano::layout::LAYERS`).
fn compare_layer_choices(all: &Path) {
    let choices: [(&[u8], f32); 4] = [
        (&[1, 2, 6, 12, 16], 10.0),
        (&[1, 2, 4, 8, 13, 16], 7.0),
        (&[1, 4, 8, 12, 16], 8.0),
        (&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 7.0),
    ];
    for (layers, max_seconds) in choices {
        load(all, &LoadOptions { layers: layers.to_vec(), max_seconds, ..LoadOptions::default() });
    }
}

fn dbfs(x: f64) -> f64 {
    20.0 * x.max(1e-12).log10()
}

/// A 32-bit float stereo WAV file as `piano::write_wav` writes it.
fn read_wav(path: &Path) -> Result<Stereo, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut at = 12;
    while at + 8 <= bytes.len() && &bytes[at..at + 4] != b"data" {
        at += 8 + word(at + 4) as usize;
    }
    let data = bytes.get(at + 8..).ok_or("no data chunk")?;
    let samples: Vec<f32> = data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let (left, right) = samples.chunks_exact(2).map(|f| (f[0], f[1])).unzip();
    Ok(Stereo { sample_rate: word(24), left, right })
}

/// The largest difference and the RMS of the difference over both renders (the shorter one is
/// taken as silent after its end).
fn report_difference(reference: &Stereo, audio: &Stereo) {
    let frames = reference.frames().max(audio.frames());
    let at = |x: &[f32], i: usize| x.get(i).copied().unwrap_or(0.0) as f64;
    let (mut largest, mut largest_at, mut sum) = (0.0f64, 0, 0.0f64);
    for i in 0..frames {
        for (a, b) in [(&reference.left, &audio.left), (&reference.right, &audio.right)] {
            let difference = (at(a, i) - at(b, i)).abs();
            sum += difference * difference;
            if difference > largest {
                (largest, largest_at) = (difference, i);
            }
        }
    }
    let rms = |x: &Stereo| (x.left.iter().chain(&x.right).map(|&v| v as f64 * v as f64).sum::<f64>() / (2 * frames) as f64).sqrt();
    println!(
        "difference: {} vs {} frames; largest {:.1} dBFS ({largest:.3e}) at {:.3} s; RMS of the difference {:.1} dBFS \
         (the reference: peak {:.1} dBFS, RMS {:.1} dBFS)",
        reference.frames(),
        audio.frames(),
        dbfs(largest),
        largest_at as f64 / RATE as f64,
        dbfs((sum / (2 * frames) as f64).sqrt()),
        dbfs(reference.peak() as f64),
        dbfs(rms(reference)),
    );
    black_box(audio);
}
