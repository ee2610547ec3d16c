//! The dataset builder: folders of performance MIDI (or MAESTRO-style CSVs) into token files.
//!
//! Output per split: `{split}.npy` (little-endian u16 token ids, documents concatenated),
//! `{split}.docs.json` (one entry per performance, with its annotated beats when an ASAP-style
//! CSV gave them) and one `manifest.json`.
//! No augmentation happens here: the trainer augments on the fly.

use crate::codec::beats::{self, BeatGrid};
use crate::codec::midi;
use crate::codec::{self, VOCABULARY, Vocabulary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// One performance to encode.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub split: String,
    pub piece: String,
    /// The performance's beat annotations (ASAP's format), when known.
    pub annotations: Option<PathBuf>,
}

/// One encoded performance in a split's token file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Document {
    pub offset: u64,
    pub length: u64,
    pub source: String,
    pub piece: String,
    pub duration_s: f64,
    pub notes: u64,
    /// `[step, 1 if downbeat else 0]` per annotated beat, on the document's 10 ms clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beats: Option<Vec<[i64; 2]>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Skipped {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SplitSummary {
    pub documents: u64,
    pub events: u64,
    pub notes: u64,
    pub hours: f64,
    /// Documents with annotated beats.
    #[serde(default)]
    pub with_beats: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub vocabulary: Vocabulary,
    pub inputs: Vec<String>,
    pub splits: BTreeMap<String, SplitSummary>,
    pub skipped: Vec<Skipped>,
    pub notes_dropped_out_of_range: u64,
}

/// The split of a piece that has none: a stable hash of its name, 90/5/5.
pub fn split_for_piece(piece: &str) -> &'static str {
    // FNV-1a: stable across platforms and versions, unlike std's hasher.
    let hash = piece.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3));
    match hash % 100 {
        0..90 => "train",
        90..95 => "validation",
        _ => "test",
    }
}

fn is_midi(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
}

/// Finds the performances named by the inputs: folders (searched recursively; a piece is the
/// file's folder relative to the input, or the file itself when it lies at the top), MIDI files,
/// MAESTRO-style CSVs (`midi_filename` and `split` columns; the piece is composer + title) and
/// ASAP-style CSVs (`midi_performance`, `performance_annotations` and `split`; the piece is
/// composer + title).
pub fn collect_sources(inputs: &[PathBuf], skipped: &mut Vec<Skipped>) -> Result<Vec<Source>, String> {
    let mut sources = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files = Vec::new();
            walk(input, &mut files, skipped);
            for path in files {
                let relative = path.strip_prefix(input).unwrap_or(&path);
                let piece = match relative.parent().filter(|p| !p.as_os_str().is_empty()) {
                    Some(folder) => folder.to_string_lossy().into_owned(),
                    None => relative.with_extension("").to_string_lossy().into_owned(),
                };
                sources.push(Source { split: split_for_piece(&piece).into(), piece, path, annotations: None });
            }
        } else if input.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
            sources.extend(read_csv(input)?);
        } else if input.is_file() {
            let piece = input.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            sources.push(Source { split: split_for_piece(&piece).into(), piece, path: input.clone(), annotations: None });
        } else {
            return Err(format!("{}: no such file or folder", input.display()));
        }
    }
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    sources.dedup_by(|a, b| a.path == b.path);
    Ok(sources)
}

fn walk(folder: &Path, files: &mut Vec<PathBuf>, skipped: &mut Vec<Skipped>) {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) => {
            skipped.push(Skipped { source: folder.display().to_string(), reason: format!("unreadable folder: {e}") });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, files, skipped),
            Ok(_) if is_midi(&path) => files.push(path),
            _ => {}
        }
    }
}

fn read_csv(path: &Path) -> Result<Vec<Source>, String> {
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut reader = csv::Reader::from_path(path).map_err(|e| fail(&e))?;
    let headers = reader.headers().map_err(|e| fail(&e))?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let annotations_col = column("performance_annotations");
    let asap = annotations_col.is_some();
    let (file_name, composer, title) =
        if asap { ("midi_performance", "composer", "title") } else { ("midi_filename", "canonical_composer", "canonical_title") };
    let file_col = column(file_name).ok_or_else(|| fail(&format!("no `{file_name}` column")))?;
    let split_col = column("split").ok_or_else(|| fail(&"no `split` column"))?;
    let (composer_col, title_col) = (column(composer), column(title));
    let base = path.parent().unwrap_or(Path::new("."));
    let mut sources = Vec::new();
    for (line, row) in reader.records().enumerate() {
        let row = row.map_err(|e| fail(&format!("row {}: {e}", line + 2)))?;
        let field = |col: Option<usize>| col.and_then(|c| row.get(c)).unwrap_or("").to_string();
        let file = field(Some(file_col));
        let piece = match (field(composer_col), field(title_col)) {
            (c, t) if !c.is_empty() || !t.is_empty() => format!("{c} / {t}"),
            _ => file.clone(),
        };
        let annotations = Some(field(annotations_col)).filter(|a| !a.is_empty()).map(|a| base.join(a));
        sources.push(Source { path: base.join(&file), split: field(Some(split_col)), piece, annotations });
    }
    Ok(sources)
}

/// One performance encoded, or why it was not.
pub struct Encoded {
    pub tokens: Vec<u16>,
    pub duration_s: f64,
    pub notes: u64,
    pub dropped_out_of_range: u64,
    pub beats: Option<BeatGrid>,
}

/// Reads and encodes one source with its beats; every failure is a one-line reason.
pub fn encode_source(source: &Source) -> Result<Encoded, String> {
    let mut encoded = encode_file(&source.path)?;
    if let Some(path) = &source.annotations {
        encoded.beats = Some(read_annotations(path)?);
    }
    Ok(encoded)
}

/// Reads an ASAP-style beat annotation file.
pub fn read_annotations(path: &Path) -> Result<BeatGrid, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read the beat annotations: {e}", path.display()))?;
    let grid = beats::parse_annotations(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if grid.beats().len() < 2 {
        return Err(format!("{}: fewer than two beats", path.display()));
    }
    Ok(grid)
}

/// Reads and encodes one file; every failure is a one-line reason.
pub fn encode_file(path: &Path) -> Result<Encoded, String> {
    let bytes = midi::read_file(path)?;
    let read = midi::read(&bytes).map_err(|e| e.to_string())?;
    if read.performance.notes.is_empty() {
        return Err(if read.dropped_out_of_range > 0 {
            format!("no notes in the piano range ({} outside it)", read.dropped_out_of_range)
        } else {
            "no notes".into()
        });
    }
    Ok(Encoded {
        tokens: codec::encode_ids(&read.performance),
        duration_s: read.performance.duration,
        notes: read.performance.notes.len() as u64,
        dropped_out_of_range: read.dropped_out_of_range as u64,
        beats: None,
    })
}

/// Encodes every source on all cores; results come back in the sources' order.
pub fn encode_all(sources: &[Source], on_done: &(dyn Fn() + Sync)) -> Vec<Result<Encoded, String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Encoded, String>>>> = Mutex::new((0..sources.len()).map(|_| None).collect());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(sources.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(source) = sources.get(i) else { break };
                    let result = encode_source(source);
                    results.lock().unwrap()[i] = Some(result);
                    on_done();
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every source was encoded")).collect()
}

/// Writes a 1-D little-endian u16 array as a NumPy `.npy` file (format 1.0).
pub fn write_npy_u16(path: &Path, data: &[u16]) -> std::io::Result<()> {
    write_npy(path, "<u2", &format!("({},)", data.len()), data.iter().flat_map(|x| x.to_le_bytes()))
}

/// Writes rows of `N` little-endian f32 as a 2-D NumPy `.npy` file (format 1.0).
pub fn write_npy_f32<const N: usize>(path: &Path, rows: &[[f32; N]]) -> std::io::Result<()> {
    write_npy(path, "<f4", &format!("({}, {N})", rows.len()), rows.iter().flatten().flat_map(|x| x.to_le_bytes()))
}

fn write_npy(path: &Path, descr: &str, shape: &str, bytes: impl Iterator<Item = u8>) -> std::io::Result<()> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded so data starts 64-aligned.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(b"\x93NUMPY\x01\x00")?;
    file.write_all(&(header.len() as u16).to_le_bytes())?;
    file.write_all(header.as_bytes())?;
    for byte in bytes {
        file.write_all(&[byte])?;
    }
    file.flush()
}

/// What `build` did, for the summary line.
pub struct BuildReport {
    pub manifest: Manifest,
    pub files: usize,
    pub seconds: f64,
}

/// Builds the token files for `inputs` into `out`. Bad files are skipped and listed; the build
/// fails only when no usable performance was found.
pub fn build(inputs: &[PathBuf], out: &Path, on_found: &dyn Fn(usize), on_done: &(dyn Fn() + Sync)) -> Result<BuildReport, String> {
    let started = std::time::Instant::now();
    let mut skipped = Vec::new();
    let sources = collect_sources(inputs, &mut skipped)?;
    on_found(sources.len());
    let results = encode_all(&sources, on_done);

    let mut tokens: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    let mut docs: BTreeMap<String, Vec<Document>> = BTreeMap::new();
    let mut splits: BTreeMap<String, SplitSummary> = BTreeMap::new();
    let mut dropped = 0;
    for (source, result) in sources.iter().zip(results) {
        let name = source.path.display().to_string();
        let encoded = match result {
            Ok(encoded) => encoded,
            Err(reason) => {
                skipped.push(Skipped { source: name, reason });
                continue;
            }
        };
        if !SPLITS.contains(&source.split.as_str()) {
            skipped.push(Skipped { source: name, reason: format!("unknown split `{}`", source.split) });
            continue;
        }
        let split_tokens = tokens.entry(source.split.clone()).or_default();
        docs.entry(source.split.clone()).or_default().push(Document {
            offset: split_tokens.len() as u64,
            length: encoded.tokens.len() as u64,
            source: name,
            piece: source.piece.clone(),
            duration_s: encoded.duration_s,
            notes: encoded.notes,
            beats: encoded.beats.as_ref().map(|grid| grid.beats().iter().map(|b| [b.step, b.downbeat as i64]).collect()),
        });
        let summary = splits.entry(source.split.clone()).or_default();
        summary.documents += 1;
        summary.events += encoded.tokens.len() as u64;
        summary.notes += encoded.notes;
        summary.hours += encoded.duration_s / 3600.0;
        summary.with_beats += encoded.beats.is_some() as u64;
        dropped += encoded.dropped_out_of_range;
        split_tokens.extend_from_slice(&encoded.tokens);
    }
    if tokens.is_empty() {
        let why = skipped.first().map(|s| format!(" (first: {}: {})", s.source, s.reason)).unwrap_or_default();
        return Err(format!("no usable performance found in {} file(s){why}", sources.len()));
    }

    let io = |e: std::io::Error| format!("{}: {e}", out.display());
    std::fs::create_dir_all(out).map_err(io)?;
    for split in SPLITS {
        // Remove stale files of a split this build does not produce.
        for suffix in ["npy", "docs.json"] {
            let _ = std::fs::remove_file(out.join(format!("{split}.{suffix}")));
        }
    }
    for (split, split_tokens) in &tokens {
        write_npy_u16(&out.join(format!("{split}.npy")), split_tokens).map_err(io)?;
        let json = serde_json::to_string_pretty(&docs[split]).expect("documents serialize");
        std::fs::write(out.join(format!("{split}.docs.json")), json).map_err(io)?;
    }
    let manifest = Manifest {
        vocabulary: VOCABULARY,
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        splits,
        skipped,
        notes_dropped_out_of_range: dropped,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    std::fs::write(out.join("manifest.json"), json).map_err(io)?;
    Ok(BuildReport { manifest, files: sources.len(), seconds: started.elapsed().as_secs_f64() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_split_is_stable_and_roughly_90_5_5() {
        // Pinned: a change of the hash would move pieces between splits of existing datasets.
        // ("a" hashes to 0xaf63dc4c8601ec8c, FNV-1a's published 64-bit test vector.)
        let pinned = [("a", "test"), ("piece 0", "train"), ("piece 6", "validation"), ("piece 11", "test"), ("piece 18", "test")];
        for (piece, split) in pinned {
            assert_eq!(split_for_piece(piece), split, "{piece}");
        }
        let mut counts = BTreeMap::new();
        for i in 0..10_000 {
            *counts.entry(split_for_piece(&format!("piece {i}"))).or_insert(0) += 1;
        }
        assert!((8700..9300).contains(&counts["train"]), "{counts:?}");
        assert!((300..700).contains(&counts["validation"]), "{counts:?}");
    }

    #[test]
    fn an_asap_style_csv_gives_each_performance_its_beats_and_names_bad_annotations() {
        let dir = std::env::temp_dir().join(format!("pianoforte-asap-{}", std::process::id()));
        let piece = dir.join("Bach/Prelude");
        std::fs::create_dir_all(&piece).unwrap();
        let performance = crate::codec::Performance {
            notes: (0..8)
                .map(|k| crate::codec::Note { pitch: 60 + k, velocity: 70, start: k as f64 * 0.5, end: k as f64 * 0.5 + 0.4 })
                .collect(),
            pedal: Vec::new(),
            duration: 4.0,
        };
        for name in ["A.mid", "B.mid"] {
            std::fs::write(piece.join(name), midi::write(&performance)).unwrap();
        }
        std::fs::write(piece.join("A_annotations.txt"), "0.0\t0.0\tdb,2/4,0\n0.5\t0.5\tb\n1.0\t1.0\tdb\n1.504\t1.504\tb\n").unwrap();
        std::fs::write(piece.join("B_annotations.txt"), "0.0\t0.0\tbeat\n").unwrap();
        let header = "composer,title,folder,split,midi_performance,performance_annotations,midi_score";
        let rows = [
            "Bach,Prelude,Bach/Prelude,train,Bach/Prelude/A.mid,Bach/Prelude/A_annotations.txt,",
            "Bach,Prelude,Bach/Prelude,validation,Bach/Prelude/B.mid,Bach/Prelude/B_annotations.txt,",
        ];
        std::fs::write(dir.join("asap.csv"), format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        let out = dir.join("tokens");
        let report = build(&[dir.join("asap.csv")], &out, &|_| {}, &|| {}).unwrap();
        let docs: Vec<Document> = serde_json::from_str(&std::fs::read_to_string(out.join("train.docs.json")).unwrap()).unwrap();
        assert_eq!(docs[0].piece, "Bach / Prelude");
        assert_eq!(docs[0].beats, Some(vec![[0, 1], [50, 0], [100, 1], [150, 0]]));
        assert_eq!(report.manifest.splits["train"].with_beats, 1);
        assert_eq!(report.manifest.skipped.len(), 1);
        let reason = &report.manifest.skipped[0].reason;
        assert!(reason.contains("B_annotations.txt") && reason.contains("line 1"), "{reason}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn npy_header_is_aligned_and_readable() {
        let dir = std::env::temp_dir().join(format!("pianoforte-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.npy");
        write_npy_u16(&path, &[1, 2, 309]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        assert!(std::str::from_utf8(&bytes[10..10 + header_len]).unwrap().contains("'shape': (3,)"));
        assert_eq!(&bytes[10 + header_len..], &[1, 0, 2, 0, 53, 1]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
