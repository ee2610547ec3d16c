//! The engine's trace: every event the plugin's engine thread queued, with its performance time
//! (written when the plugin runs with `PIANOFORTE_TRACE_DIR`).

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    On,
    Off,
    Pedal,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traced {
    pub generation: u32,
    pub time: f64,
    pub kind: Kind,
    pub key: u8,
    pub value: u8,
}

/// Follows one trace file as the plugin appends to it.
pub struct TraceReader {
    path: PathBuf,
    offset: u64,
    partial: String,
    pub events: Vec<Traced>,
    /// How far the newest generation is decided: (generation, seconds).
    until: Option<(u32, f64)>,
}

impl TraceReader {
    pub fn new(path: PathBuf) -> Self {
        TraceReader { path, offset: 0, partial: String::new(), events: Vec::new(), until: None }
    }

    /// Reads what was appended since the last call.
    pub fn poll(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        loop {
            line.clear();
            let Ok(n) = reader.read_line(&mut line) else {
                break;
            };
            if n == 0 {
                break;
            }
            self.offset += n as u64;
            if !line.ends_with('\n') {
                self.partial.push_str(&line);
                continue;
            }
            let whole = std::mem::take(&mut self.partial) + line.trim_end();
            if let Some((generation, until)) = parse_until(&whole) {
                self.until = Some((generation, until));
            } else if let Some(event) = parse(&whole) {
                self.events.push(event);
            }
        }
    }

    /// How far the newest generation seen is decided: (generation, seconds).
    pub fn horizon(&self) -> Option<(u32, f64)> {
        let last = self.events.last().map(|e| (e.generation, e.time));
        match (last, self.until) {
            (Some(a), Some(b)) => Some(if (b.0, b.1) >= (a.0, a.1) { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

/// An "until" line: the engine has decided everything up to this time.
fn parse_until(line: &str) -> Option<(u32, f64)> {
    let mut fields = line.split('\t');
    let generation = fields.next()?.parse().ok()?;
    let time = fields.next()?.parse().ok()?;
    (fields.next()? == "until").then_some((generation, time))
}

fn parse(line: &str) -> Option<Traced> {
    let mut fields = line.split('\t');
    let generation = fields.next()?.parse().ok()?;
    let time = fields.next()?.parse().ok()?;
    let kind = match fields.next()? {
        "on" => Kind::On,
        "off" => Kind::Off,
        "pedal" => Kind::Pedal,
        _ => return None,
    };
    let key = fields.next()?.parse().ok()?;
    let value = fields.next()?.parse().ok()?;
    Some(Traced { generation, time, kind, key, value })
}

/// The trace files in `dir` (names `trace-PID-N.tsv`), oldest first.
pub fn trace_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let n = name.strip_suffix(".tsv")?.rsplit('-').next()?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        assert_eq!(parse("3\t1.250000000\ton\t60\t80"), Some(Traced { generation: 3, time: 1.25, kind: Kind::On, key: 60, value: 80 }));
        assert_eq!(parse("generation\ttime\tkind\tkey\tvalue"), None);
    }
}
