//! The take (what the plugin played, kept in memory, bounded) and clips: standard MIDI files
//! written from the last N seconds or the whole take, with readable names, into a clips folder.

use crate::codec::Performance;
use crate::plugin::events::{Played, played_performance};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// The take keeps at most this much performance time...
pub const TAKE_MAX_SECONDS: f64 = 30.0 * 60.0;
/// ...and at most this many events (about 6 MB).
pub const TAKE_MAX_EVENTS: usize = 200_000;

/// Everything played (generated and passed through), in performance-clock time.
#[derive(Debug, Clone, Default)]
pub struct Take {
    events: VecDeque<Played>,
    /// Events dropped from the front to keep the take bounded.
    pub trimmed: usize,
}

impl Take {
    pub fn new() -> Self {
        Take::default()
    }

    pub fn push(&mut self, event: Played) {
        self.events.push_back(event);
        while self.events.len() > TAKE_MAX_EVENTS || self.events.front().is_some_and(|f| event.time - f.time > TAKE_MAX_SECONDS) {
            self.events.pop_front();
            self.trimmed += 1;
        }
    }

    pub fn clear(&mut self) {
        self.events.clear();
        self.trimmed = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Performance-clock seconds of the first and the last event.
    pub fn span(&self) -> Option<(f64, f64)> {
        Some((self.events.front()?.time, self.events.back()?.time))
    }

    /// Events with `from <= time`, oldest first.
    pub fn since(&self, from: f64) -> impl Iterator<Item = &Played> {
        let start = self.events.partition_point(|e| e.time < from);
        self.events.range(start..)
    }

    /// The performance between `from` and `to` (clock seconds), times relative to `from`.
    pub fn performance(&self, from: f64, to: f64) -> Performance {
        played_performance(&self.events, from, to)
    }
}

/// A saved clip, as the editor lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedClip {
    pub path: PathBuf,
    pub seconds: f64,
    pub notes: usize,
}

/// How much of the take a clip holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClipLength {
    LastSeconds(f64),
    WholeTake,
}

/// The clips folder when none is configured: "pianoforte clips" in the user's documents folder
/// (XDG_DOCUMENTS_DIR, else ~/Documents), else in the home folder, else the temporary folder.
pub fn default_clips_folder() -> PathBuf {
    dirs::document_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join("Documents")))
        .unwrap_or_else(std::env::temp_dir)
        .join("pianoforte clips")
}

/// The configured folder, or the default one when `configured` is empty.
pub fn clips_folder(configured: &str) -> PathBuf {
    let configured = configured.trim();
    if configured.is_empty() {
        return default_clips_folder();
    }
    if let Some(rest) = configured.strip_prefix("~/")
        && let Some(home) = dirs::home_dir()
    {
        return home.join(rest);
    }
    PathBuf::from(configured)
}

/// Local date and time as "2026-11-24 21.50.03" (file-name safe on every system).
fn local_timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    #[cfg(unix)]
    {
        let t = now as libc::time_t;
        // SAFETY: localtime_r writes only into `tm`.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if !unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
            return format!(
                "{:04}-{:02}-{:02} {:02}.{:02}.{:02}",
                tm.tm_year + 1900,
                tm.tm_mon + 1,
                tm.tm_mday,
                tm.tm_hour,
                tm.tm_min,
                tm.tm_sec
            );
        }
    }
    format!("{now}")
}

/// A readable file name: "pianoforte 2026-11-24 21.50.03, 30 s.mid" (with " (2)" etc. when taken).
pub fn clip_file_name(folder: &Path, seconds: f64) -> PathBuf {
    let stem = format!("pianoforte {}, {} s", local_timestamp(), seconds.round() as i64);
    let mut path = folder.join(format!("{stem}.mid"));
    let mut n = 2;
    while path.exists() {
        path = folder.join(format!("{stem} ({n}).mid"));
        n += 1;
    }
    path
}

/// Writes a clip of the take into `folder` (created when missing).
pub fn save_clip(take: &Take, end: f64, length: ClipLength, folder: &Path) -> Result<SavedClip, String> {
    let Some((first, last)) = take.span() else {
        return Err("nothing has been played yet".into());
    };
    let to = end.max(last);
    let from = match length {
        ClipLength::LastSeconds(s) => (to - s).max(first),
        ClipLength::WholeTake => first,
    };
    let performance = take.performance(from, to);
    if performance.notes.is_empty() {
        return Err("no notes in that part of the take".into());
    }
    std::fs::create_dir_all(folder).map_err(|e| format!("cannot create the clips folder {}: {e}", folder.display()))?;
    let path = clip_file_name(folder, to - from);
    let bytes = crate::codec::midi::write(&performance);
    let partial = path.with_extension("mid.partial");
    std::fs::write(&partial, &bytes).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(SavedClip { path, seconds: to - from, notes: performance.notes.len() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::PedalChange;
    use crate::plugin::events::Midi;

    fn played(time: f64, midi: Midi) -> Played {
        Played { time, midi, input: false }
    }

    fn sample_take() -> Take {
        let mut take = Take::new();
        take.push(played(1.0, Midi::Pedal { down: true }));
        take.push(played(1.0, Midi::NoteOn { key: 60, velocity: 80 }));
        take.push(played(1.5, Midi::NoteOff { key: 60 }));
        take.push(played(2.0, Midi::NoteOn { key: 64, velocity: 90 }));
        take.push(played(3.0, Midi::NoteOn { key: 67, velocity: 70 }));
        take.push(played(3.5, Midi::Pedal { down: false }));
        take.push(played(4.0, Midi::NoteOff { key: 64 }));
        take
    }

    #[test]
    fn a_window_of_the_take() {
        let take = sample_take();
        let p = take.performance(1.75, 5.0);
        assert_eq!(p.notes.len(), 2);
        assert_eq!((p.notes[0].pitch, p.notes[0].start, p.notes[0].end), (64, 0.25, 2.25));
        // 67 is still sounding at the end.
        assert_eq!((p.notes[1].pitch, p.notes[1].end), (67, 3.25));
        assert_eq!(p.pedal, vec![PedalChange { time: 0.0, down: true }, PedalChange { time: 1.75, down: false }]);
        let whole = take.performance(1.0, 5.0);
        assert_eq!(whole.notes.len(), 3);
        assert_eq!(whole.pedal[0], PedalChange { time: 0.0, down: true });
    }

    #[test]
    fn clips_are_written_and_read_back() {
        let dir = std::env::temp_dir().join(format!("pianoforte-clips-test-{}", std::process::id()));
        let take = sample_take();
        let clip = save_clip(&take, 4.0, ClipLength::WholeTake, &dir).unwrap();
        assert!(clip.path.file_name().unwrap().to_string_lossy().starts_with("pianoforte "));
        let second = save_clip(&take, 4.0, ClipLength::LastSeconds(2.0), &dir).unwrap();
        assert_ne!(clip.path, second.path);
        let read = crate::codec::midi::read(&std::fs::read(&clip.path).unwrap()).unwrap().performance;
        assert_eq!(read.notes.len(), 3);
        assert!((read.notes[1].start - 1.0).abs() < 0.002);
        assert_eq!(read.notes[1].velocity, 90);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(save_clip(&Take::new(), 0.0, ClipLength::WholeTake, &dir).is_err());
    }

    #[test]
    fn the_take_is_bounded() {
        let mut take = Take::new();
        for i in 0..10_000 {
            take.push(played(i as f64, Midi::NoteOn { key: 60, velocity: 1 }));
        }
        assert!(take.len() as f64 <= TAKE_MAX_SECONDS + 1.0);
        assert_eq!(take.span().unwrap().1, 9999.0);
    }

    #[test]
    fn folder_names() {
        assert!(clips_folder("").ends_with("pianoforte clips"));
        assert_eq!(clips_folder("/tmp/x"), PathBuf::from("/tmp/x"));
    }
}
