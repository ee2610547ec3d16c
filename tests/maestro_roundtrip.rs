//! decode(encode(file)) over every MAESTRO performance in ../shared/data: every in-range note
//! kept (none lost or added), onsets and offsets within 5 ms, velocity within its bin, every
//! pedal change within 5 ms. Notes held longer than the decoder's 5 s stuck-note guard end
//! exactly there (the documented rule), and are counted.

use pianoforte::codec::midi;
use pianoforte::codec::{self, MAX_NOTE_SECONDS, Note, VelocityBin};
use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 0.005 + 1e-9;

fn maestro_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/maestro-v2.0.0");
    let csv = std::fs::read_to_string(root.join("maestro-v2.0.0-train-validation.csv"))
        .expect("the MAESTRO data must be at ../shared/data/maestro-v2.0.0");
    let mut files: Vec<PathBuf> =
        csv.lines().skip(1).filter_map(|line| line.split(',').find(|f| f.ends_with(".midi"))).map(|f| root.join(f)).collect();
    files.sort();
    files.dedup();
    files
}

#[derive(Default)]
struct Tally {
    files: usize,
    notes: usize,
    capped: usize,
    pedal_changes: usize,
}

fn check_file(path: &Path, tally: &mut Tally) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let source = midi::read(&bytes).map_err(|e| e.to_string())?.performance;
    let events = codec::encode(&source);
    // Through the token ids and a written MIDI file, as the dataset and the decoder do.
    let events = codec::from_ids(&codec::to_ids(&events))?;
    let written = midi::write(&codec::decode(&events));
    let back = midi::read(&written).map_err(|e| format!("decoded file does not re-read: {e}"))?.performance;

    if source.notes.len() != back.notes.len() {
        return Err(format!("{} notes in, {} out", source.notes.len(), back.notes.len()));
    }
    // Pair notes per pitch in time order.
    let by_pitch = |notes: &[Note]| {
        let mut sorted = notes.to_vec();
        sorted.sort_by(|a, b| a.pitch.cmp(&b.pitch).then(a.start.total_cmp(&b.start)));
        sorted
    };
    for (a, b) in by_pitch(&source.notes).iter().zip(by_pitch(&back.notes).iter()) {
        if a.pitch != b.pitch || (a.start - b.start).abs() > TOLERANCE {
            return Err(format!("note {a:?} came back as {b:?}"));
        }
        // The guard acts on encoded (10 ms grid) times.
        let steps = |t: f64| (t * 100.0).round();
        let expected_end = if steps(a.end) - steps(a.start) > MAX_NOTE_SECONDS * 100.0 {
            tally.capped += 1;
            b.start + MAX_NOTE_SECONDS
        } else {
            a.end
        };
        // A note shorter than half a step quantises to zero length and is written one tick long.
        let one_tick = steps(a.end) == steps(a.start) && b.end - b.start <= 0.001 + 1e-9;
        if !one_tick && (expected_end - b.end).abs() > TOLERANCE + 1e-6 {
            return Err(format!("note {a:?} came back as {b:?} (expected end {expected_end})"));
        }
        if VelocityBin::of_midi(a.velocity) != VelocityBin::of_midi(b.velocity) {
            return Err(format!("velocity {} came back as {}, another bin", a.velocity, b.velocity));
        }
    }
    // The decoder lifts a pedal left down at the end: one extra change, and only then.
    let ends_down = source.pedal.last().is_some_and(|c| c.down);
    let expected = source.pedal.len() + ends_down as usize;
    if back.pedal.len() != expected {
        return Err(format!("{} pedal changes in, {} out", source.pedal.len(), back.pedal.len()));
    }
    for (a, b) in source.pedal.iter().zip(&back.pedal) {
        if a.down != b.down || (a.time - b.time).abs() > TOLERANCE {
            return Err(format!("pedal change {a:?} came back as {b:?}"));
        }
    }
    tally.files += 1;
    tally.notes += source.notes.len();
    tally.pedal_changes += source.pedal.len();
    Ok(())
}

#[test]
fn every_maestro_performance_round_trips() {
    let files = maestro_files();
    assert_eq!(files.len(), 1104, "expected the 1104 train+validation performances");
    let mut tally = Tally::default();
    let failures: Vec<String> =
        files.iter().filter_map(|path| check_file(path, &mut tally).err().map(|e| format!("{}: {e}", path.display()))).collect();
    eprintln!(
        "round trip: {} files, {} notes, {} pedal changes, {} notes longer than {MAX_NOTE_SECONDS} s capped",
        tally.files, tally.notes, tally.pedal_changes, tally.capped
    );
    assert!(failures.is_empty(), "{} files failed, first ones:\n{}", failures.len(), failures[..failures.len().min(10)].join("\n"));
    assert!(tally.notes > 6_000_000, "MAESTRO train+validation holds over 6 million notes");
}
