//! MIDI-to-token throughput of the codec, single-threaded, with the file bytes preloaded.
//!
//! ```text
//! cargo bench --bench encode -- [--reps N] [--limit N] [--list FILE] [--csv FILE] [--only STAGE,..] [--per-file] [PATHS...]
//! ```
//!
//! Files come from the PATHS given, or from `--list FILE` (one path a line), or else from the
//! MAESTRO CSV (`--csv`, default `../shared/data/maestro-v2.0.0/maestro-v2.0.0-train-validation.csv`).
//! Every file is read into memory first; then, in this one thread, each stage runs over all files
//! `--reps` times (default 5) and the median is reported (`--only` picks stages, e.g. for `perf`):
//!
//! - `read_files`: `std::fs::read` of every file (the first pass is reported on its own as
//!   `read_files_first`: the page cache is not dropped, so "cold" only if nobody read them lately);
//! - `midly_events`: `midly::parse` and a walk over every track event (the raw parser alone);
//! - `scan_prototype` (only when named in `--only`): a minimal hand-written walk over every
//!   event, not used by the library: what midly's general decoding costs in comparison;
//! - `read`: `midi::read` (chunks by midly, events decoded by hand + merge tracks + tempo
//!   map + note pairing);
//! - `encode`: `codec::encode` alone, on the performances read beforehand (for the breakdown);
//! - `to_ids`: `codec::to_ids` alone, on the events encoded beforehand (for the breakdown);
//! - `read_encode_ids`: `midi::read` + `codec::encode_ids` (the whole path, as the dataset
//!   builder runs it).
//!
//! Output: one JSON object per line (`stage`, `files`, `bytes`, `seconds` (median wall time),
//! `seconds_all`, `cpu_seconds` (median CPU time of the thread; wall time where unknown), `cpu_seconds_all`,
//! `events`, `notes`, `files_per_s`, `mb_per_s` (10^6 bytes), `music_seconds`, `music_s_per_s`).
//! With `--per-file`, also one `per_file` line per file with its token count and a checksum of
//! its token ids (`wsum`: sum of (i + 1) * id mod 2^64), so peers can check they produce the same tokens,
//! and a hash of the `midi::read` result (`read_hash`), to check reader changes.

use pianoforte::codec::{self, midi};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

#[path = "common/cpu_time.rs"]
mod cpu_time;
use cpu_time::thread_cpu_seconds;

const DEFAULT_CSV: &str = "../shared/data/maestro-v2.0.0/maestro-v2.0.0-train-validation.csv";

struct Args {
    reps: usize,
    limit: Option<usize>,
    per_file: bool,
    only: Option<Vec<String>>,
    paths: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { reps: 5, limit: None, per_file: false, only: None, paths: Vec::new() };
    let (mut list, mut csv) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            // `cargo bench` passes `--bench` to harness-less benches.
            "--bench" => {}
            "--reps" => args.reps = value("--reps")?.parse().map_err(|e| format!("--reps: {e}"))?,
            "--limit" => args.limit = Some(value("--limit")?.parse().map_err(|e| format!("--limit: {e}"))?),
            "--list" => list = Some(PathBuf::from(value("--list")?)),
            "--csv" => csv = Some(PathBuf::from(value("--csv")?)),
            "--per-file" => args.per_file = true,
            "--only" => args.only = Some(value("--only")?.split(',').map(str::to_string).collect()),
            "-h" | "--help" => {
                return Err(
                    "usage: encode [--reps N] [--limit N] [--list FILE] [--csv FILE] [--only STAGE,..] [--per-file] [PATHS...]".into()
                );
            }
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            path => args.paths.push(PathBuf::from(path)),
        }
    }
    if let Some(list) = list {
        let text = std::fs::read_to_string(&list).map_err(|e| format!("{}: {e}", list.display()))?;
        args.paths.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(PathBuf::from));
    }
    if args.paths.is_empty() {
        args.paths = maestro_paths(&csv.unwrap_or_else(|| PathBuf::from(DEFAULT_CSV)))?;
    }
    if let Some(limit) = args.limit {
        args.paths.truncate(limit);
    }
    args.reps = args.reps.max(1);
    Ok(args)
}

/// The `midi_filename` column of a MAESTRO CSV, relative to the CSV's folder, in file order.
fn maestro_paths(csv_path: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", csv_path.display());
    let mut reader = csv::Reader::from_path(csv_path).map_err(|e| fail(&e))?;
    let column = reader.headers().map_err(|e| fail(&e))?.iter().position(|h| h == "midi_filename");
    let column = column.ok_or_else(|| fail(&"no `midi_filename` column"))?;
    let base = csv_path.parent().unwrap_or(std::path::Path::new("."));
    let mut paths = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| fail(&e))?;
        paths.push(base.join(row.get(column).unwrap_or("")));
    }
    Ok(paths)
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// What one pass over all files counted (the same on every repetition).
#[derive(Default, Clone, Copy, PartialEq)]
struct Counts {
    events: u64,
    notes: u64,
    music_seconds: f64,
    errors: u64,
}

fn report(stage: &str, files: usize, bytes: u64, times: &[f64], cpu: &[f64], counts: Counts) {
    let seconds = median(times);
    let line = serde_json::json!({
        "bench": "encode",
        "stage": stage,
        "threads": 1,
        "files": files,
        "bytes": bytes,
        "reps": times.len(),
        "seconds": seconds,
        "seconds_all": times,
        "cpu_seconds": median(cpu),
        "cpu_seconds_all": cpu,
        "events": counts.events,
        "notes": counts.notes,
        "errors": counts.errors,
        "files_per_s": files as f64 / seconds,
        "mb_per_s": bytes as f64 / 1e6 / seconds,
        "music_seconds": counts.music_seconds,
        "music_s_per_s": counts.music_seconds / seconds,
    });
    println!("{line}");
}

/// CPU time of this thread so far (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, Linux), or None.
/// Wall and CPU seconds of each of `reps` runs of `pass`, and the counts of the last.
fn time_passes(reps: usize, mut pass: impl FnMut() -> Counts) -> (Vec<f64>, Vec<f64>, Counts) {
    let (mut wall, mut cpu) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    let mut counts = Counts::default();
    for _ in 0..reps {
        let cpu_start = thread_cpu_seconds();
        let start = Instant::now();
        counts = black_box(pass());
        wall.push(start.elapsed().as_secs_f64());
        cpu.push(match (cpu_start, thread_cpu_seconds()) {
            (Some(a), Some(b)) => b - a,
            _ => *wall.last().unwrap(),
        });
    }
    (wall, cpu, counts)
}

/// sum((i + 1) * id) mod 2^64: a cheap order-sensitive checksum that numpy computes the same way.
fn weighted_sum(ids: &[u16]) -> u64 {
    ids.iter().enumerate().fold(0u64, |s, (i, &id)| s.wrapping_add((i as u64 + 1).wrapping_mul(id as u64)))
}

/// FNV-1a over everything `midi::read` returned, to check that changes to the reader keep
/// its output bit for bit.
fn performance_hash(r: &midi::ReadPerformance) -> u64 {
    let p = &r.performance;
    let mut words = vec![p.notes.len() as u64, p.pedal.len() as u64, p.duration.to_bits(), r.dropped_out_of_range as u64];
    for n in &p.notes {
        words.extend([n.pitch as u64, n.velocity as u64, n.start.to_bits(), n.end.to_bits()]);
    }
    for c in &p.pedal {
        words.extend([c.time.to_bits(), c.down as u64]);
    }
    words.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, w| (h ^ w).wrapping_mul(0x100_0000_01b3))
}

/// A minimal walk over every event of a standard MIDI file: what a hand-written reader would
/// do instead of midly's general decoding. Returns the number of events (None if malformed).
fn scan_prototype(bytes: &[u8]) -> Option<u64> {
    fn vlq(b: &[u8], at: &mut usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..4 {
            let x = *b.get(*at)?;
            *at += 1;
            v = v << 7 | (x & 0x7f) as u32;
            if x & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let be32 = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize);
    if bytes.get(0..4)? != b"MThd" {
        return None;
    }
    let (mut at, mut events) = (8 + be32(4)?, 0u64);
    while at + 8 <= bytes.len() {
        let len = be32(at + 4)?;
        let chunk = bytes.get(at + 8..(at + 8 + len).min(bytes.len()))?;
        let is_track = &bytes[at..at + 4] == b"MTrk";
        at += 8 + len;
        if !is_track {
            continue;
        }
        let (mut i, mut running, mut tick) = (0usize, 0u8, 0u64);
        while i < chunk.len() {
            tick += vlq(chunk, &mut i)? as u64;
            let mut status = *chunk.get(i)?;
            if status & 0x80 != 0 {
                i += 1;
            } else {
                status = running;
            }
            match status {
                0xff => {
                    i += 1;
                    let n = vlq(chunk, &mut i)? as usize;
                    i += n;
                }
                0xf0 | 0xf7 => {
                    let n = vlq(chunk, &mut i)? as usize;
                    i += n;
                }
                0x80..=0xef => {
                    running = status;
                    i += if (0xc0..0xe0).contains(&status) { 1 } else { 2 };
                }
                _ => return None,
            }
            black_box(tick);
            events += 1;
        }
    }
    Some(events)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("encode bench: {e}");
            std::process::exit(2);
        }
    };
    let paths = &args.paths;

    // File reading, timed on its own. The first pass also loads the bytes the other stages use.
    let cpu_start = thread_cpu_seconds();
    let start = Instant::now();
    let data: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).collect();
    let first_read = start.elapsed().as_secs_f64();
    let first_read_cpu = match (cpu_start, thread_cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => first_read,
    };
    let bytes: u64 = data.iter().map(|d| d.len() as u64).sum();
    let files = data.len();
    let wanted = |stage: &str| args.only.as_ref().is_none_or(|only| only.iter().any(|s| s == stage));
    if wanted("read_files") {
        report("read_files_first", files, bytes, &[first_read], &[first_read_cpu], Counts::default());
        let (times, cpu, counts) = time_passes(args.reps, || {
            for p in paths {
                black_box(std::fs::read(p).map(|d| d.len()).unwrap_or(0));
            }
            Counts::default()
        });
        report("read_files", files, bytes, &times, &cpu, counts);
    }

    if wanted("midly_events") {
        // The raw parser alone: midly's header/track parse and every event decoded.
        let (times, cpu, counts) = time_passes(args.reps, || {
            let mut c = Counts::default();
            for d in &data {
                match midly::parse(d) {
                    Ok((_, tracks)) => {
                        for track in tracks {
                            match track {
                                Ok(events) => {
                                    for event in events {
                                        match event {
                                            Ok(e) => {
                                                black_box(e);
                                                c.events += 1;
                                            }
                                            Err(_) => c.errors += 1,
                                        }
                                    }
                                }
                                Err(_) => c.errors += 1,
                            }
                        }
                    }
                    Err(_) => c.errors += 1,
                }
            }
            c
        });
        report("midly_events", files, bytes, &times, &cpu, counts);
    }

    // Not the product: a minimal hand-written SMF walk (no validation, no event enums), to show
    // what midly's general-purpose decoding costs. Only with `--only scan_prototype`.
    if args.only.as_ref().is_some_and(|only| only.iter().any(|s| s == "scan_prototype")) {
        let (times, cpu, counts) = time_passes(args.reps, || {
            let mut c = Counts::default();
            for d in &data {
                match scan_prototype(black_box(d)) {
                    Some(n) => c.events += n,
                    None => c.errors += 1,
                }
            }
            c
        });
        report("scan_prototype", files, bytes, &times, &cpu, counts);
    }

    if wanted("read") {
        // midi::read: bytes to a Performance.
        let (times, cpu, counts) = time_passes(args.reps, || {
            let mut c = Counts::default();
            for d in &data {
                match midi::read(black_box(d)) {
                    Ok(r) => {
                        c.notes += r.performance.notes.len() as u64;
                        c.music_seconds += r.performance.duration;
                        black_box(r);
                    }
                    Err(_) => c.errors += 1,
                }
            }
            c
        });
        report("read", files, bytes, &times, &cpu, counts);
    }

    // The codec alone, for the breakdown: Performance to events, then events to ids.
    if wanted("encode") || wanted("to_ids") {
        let performances: Vec<_> = data.iter().filter_map(|d| midi::read(d).ok()).map(|r| r.performance).collect();
        if wanted("encode") {
            let (times, cpu, counts) = time_passes(args.reps, || {
                let mut c = Counts::default();
                for p in &performances {
                    let events = codec::encode(black_box(p));
                    c.events += events.len() as u64;
                    c.notes += p.notes.len() as u64;
                    c.music_seconds += p.duration;
                    black_box(events);
                }
                c
            });
            report("encode", files, bytes, &times, &cpu, counts);
        }
        let events: Vec<_> = performances.iter().map(codec::encode).collect();
        drop(performances);
        if wanted("to_ids") {
            let (times, cpu, counts) = time_passes(args.reps, || {
                let mut c = Counts::default();
                for e in &events {
                    let ids = codec::to_ids(black_box(e));
                    c.events += ids.len() as u64;
                    black_box(ids);
                }
                c
            });
            report("to_ids", files, bytes, &times, &cpu, counts);
        }
    }

    if wanted("read_encode_ids") {
        // The whole path: bytes to token ids.
        let (times, cpu, counts) = time_passes(args.reps, || {
            let mut c = Counts::default();
            for d in &data {
                match midi::read(black_box(d)) {
                    Ok(r) => {
                        let ids = codec::encode_ids(&r.performance);
                        c.events += ids.len() as u64;
                        c.notes += r.performance.notes.len() as u64;
                        c.music_seconds += r.performance.duration;
                        black_box(ids);
                    }
                    Err(_) => c.errors += 1,
                }
            }
            c
        });
        report("read_encode_ids", files, bytes, &times, &cpu, counts);
    }

    if args.per_file {
        for (path, d) in paths.iter().zip(&data) {
            let line = match midi::read(d) {
                Ok(r) => {
                    let ids = codec::encode_ids(&r.performance);
                    serde_json::json!({
                        "bench": "encode", "stage": "per_file", "path": path.display().to_string(),
                        "events": ids.len(), "wsum": weighted_sum(&ids).to_string(),
                        "read_hash": format!("{:016x}", performance_hash(&r)),
                    })
                }
                Err(e) => serde_json::json!({
                    "bench": "encode", "stage": "per_file", "path": path.display().to_string(),
                    "error": e.to_string(),
                }),
            };
            println!("{line}");
        }
    }
}
