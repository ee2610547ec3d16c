//! Files the program takes whole: a MIDI file, a model, a score.

use std::path::Path;

/// Reads a file the program takes whole: only a plain file (a folder, a pipe or a device would
/// block or never end) of at most `max_bytes`; `what` ("a MIDI file") names it in the error.
pub fn read_plain_file(path: &Path, max_bytes: u64, what: &str) -> Result<Vec<u8>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !metadata.is_file() {
        return Err(format!("not a plain file (a folder, a pipe or a device), so not {what}"));
    }
    if metadata.len() > max_bytes {
        return Err(format!("{:.1} MB is too large for {what} (at most {} MB)", metadata.len() as f64 / 1e6, max_bytes >> 20));
    }
    std::fs::read(path).map_err(|e| format!("cannot read: {e}"))
}
