//! The take (what the plugin played, kept in memory, bounded) and clips: standard MIDI files
//! written from the last N seconds or bars or the whole take, on the song's grid (the host's
//! tempo and time signature, starting at a bar line), with readable names, into a clips folder.
//!
//! The host's grid reaches the take this way: the audio thread publishes a [`GridAnchor`] (the
//! performance clock at the start of a buffer, the song position, tempo and time signature) into
//! [`SharedGrid`] whenever it stops following from the one before (a start, a jump, a tempo
//! change); the engine thread copies it into the take ([`Take::observe_grid`]) as it moves the
//! played events there. A clip then maps its performance-clock times onto song bars.
//!
//! Saving never writes a file under the take's lock: [`Take::clip_source`] copies what a clip
//! needs (a cheap copy) and the rest runs without it ([`save_clip_from`]).

use crate::codec::Performance;
use crate::codec::midi::WriteGrid;
use crate::plugin::events::{Played, played_performance};
use atomic_float::AtomicF64;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering, fence};

pub mod writer;

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
    /// The host's grid along the performance clock, oldest first (each holds from its clock on).
    grid: VecDeque<GridAnchor>,
}

/// Anchors of the grid the take keeps at most.
const MAX_ANCHORS: usize = 4096;
/// Seconds of the take before a clip's start that a clip copies (notes and the pedal held into it).
const CLIP_LEAD_SECONDS: f64 = 60.0;

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
        self.grid.clear();
        self.trimmed = 0;
    }

    /// Records the host's grid as the audio thread last published it (engine thread, with the
    /// played events). Anchors that follow from the one before add nothing.
    pub fn observe_grid(&mut self, anchor: Option<GridAnchor>) {
        let Some(anchor) = anchor else { return };
        while self.grid.back().is_some_and(|last| last.clock >= anchor.clock) {
            self.grid.pop_back();
        }
        if self.grid.back().is_some_and(|last| last.continued_by(&anchor)) {
            return;
        }
        self.grid.push_back(anchor);
        while self.grid.len() > MAX_ANCHORS {
            self.grid.pop_front();
        }
    }

    /// The grid in effect at performance-clock time `t` (the first one for times before it).
    pub fn grid_at(&self, t: f64) -> Option<GridAnchor> {
        grid_at(self.grid.iter(), t)
    }

    /// Copies what a clip of `length` ending at `now` needs (cheap; call it under the lock and
    /// build and write the clip after releasing it).
    pub fn clip_source(&self, now: f64, length: ClipLength) -> Result<ClipSource, String> {
        let Some((first, last)) = self.span() else {
            return Err("nothing has been played yet".into());
        };
        let to = now.max(last);
        let from = match length {
            ClipLength::LastSeconds(s) => (to - s).max(first),
            ClipLength::WholeTake => first,
            ClipLength::LastBars(n) => match self.grid_at(to).and_then(|g| g.bar_line_before(to - 1e-9)) {
                Some((line, _)) => {
                    let bar = self.grid_at(to).and_then(|g| g.bar_seconds()).unwrap_or(2.0);
                    (line - bar * (n.max(1) - 1) as f64).max(first)
                }
                None => {
                    let bar = self.grid_at(to).and_then(|g| g.bar_seconds()).unwrap_or(2.0);
                    (to - bar * n.max(1) as f64).max(first)
                }
            },
        };
        let start = self.events.partition_point(|e| e.time < from - CLIP_LEAD_SECONDS);
        Ok(ClipSource {
            events: self.events.range(start..).copied().collect(),
            grid: self.grid.iter().copied().collect(),
            from,
            to,
            length,
        })
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

/// The host's grid at one moment of the performance clock: what a clip needs to land on the
/// song's bars. Unknown values are 0 (tempo, time signature) or NaN (positions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridAnchor {
    /// Performance-clock seconds this describes (the start of a buffer).
    pub clock: f64,
    /// Quarter notes per minute.
    pub bpm: f64,
    pub numerator: u32,
    pub denominator: u32,
    /// Song position in quarter notes at `clock`, while the host's transport plays.
    pub beats: f64,
    /// Where the bar holding `beats` starts (quarter notes) and its number (0 = the song's first).
    pub bar_start: f64,
    pub bar_number: i32,
}

impl Default for GridAnchor {
    fn default() -> Self {
        GridAnchor { clock: 0.0, bpm: 0.0, numerator: 0, denominator: 0, beats: f64::NAN, bar_start: f64::NAN, bar_number: 0 }
    }
}

impl GridAnchor {
    /// The grid as nice-plug's transport tells it at performance-clock time `clock` (audio
    /// thread: no allocation).
    pub fn from_transport(clock: f64, transport: &nice_plug::prelude::Transport) -> GridAnchor {
        let bpm = transport.tempo.filter(|t| t.is_finite() && *t > 0.0).unwrap_or(0.0);
        let (numerator, denominator) = match (transport.time_sig_numerator, transport.time_sig_denominator) {
            (Some(n), Some(d)) if n > 0 && d > 0 => (n as u32, d as u32),
            _ => (0, 0),
        };
        let mut anchor = GridAnchor { clock, bpm, numerator, denominator, ..GridAnchor::default() };
        if transport.playing
            && let (Some(beats), Some(bar_start)) = (transport.pos_beats(), transport.bar_start_pos_beats())
            && beats.is_finite()
            && bar_start.is_finite()
        {
            anchor.beats = beats;
            anchor.bar_start = bar_start;
            anchor.bar_number =
                transport.bar_number().unwrap_or_else(|| anchor.bar_quarters().map(|q| (bar_start / q).round() as i32).unwrap_or(0));
        }
        anchor
    }

    /// Whether the song position is known (the host's transport plays and tells it).
    pub fn positioned(&self) -> bool {
        self.beats.is_finite() && self.bar_start.is_finite() && self.bpm > 0.0 && self.bar_quarters().is_some()
    }

    /// Quarter notes in a bar.
    pub fn bar_quarters(&self) -> Option<f64> {
        (self.numerator > 0 && self.denominator > 0).then(|| self.numerator as f64 * 4.0 / self.denominator as f64)
    }

    /// Seconds in a bar.
    pub fn bar_seconds(&self) -> Option<f64> {
        if self.bpm <= 0.0 {
            return None;
        }
        Some(self.bar_quarters()? * 60.0 / self.bpm)
    }

    /// The bar line at or before performance-clock time `t`: its clock time and bar number.
    pub fn bar_line_before(&self, t: f64) -> Option<(f64, i32)> {
        if !self.positioned() {
            return None;
        }
        let quarters = self.bar_quarters()?;
        let beats = self.beats + (t - self.clock) * self.bpm / 60.0;
        // A note a hair before a bar line (float noise) belongs to the bar that starts there.
        let bars = ((beats - self.bar_start) / quarters + 1e-7).floor();
        let line = self.bar_start + bars * quarters;
        Some((self.clock + (line - self.beats) * 60.0 / self.bpm, self.bar_number + bars as i32))
    }

    /// Whether `next` describes the same grid, only later (the transport ran on unchanged).
    pub fn continued_by(&self, next: &GridAnchor) -> bool {
        if (self.bpm, self.numerator, self.denominator) != (next.bpm, next.numerator, next.denominator) {
            return false;
        }
        match (self.positioned(), next.positioned()) {
            (false, false) => true,
            (true, true) => {
                let expected = self.beats + (next.clock - self.clock) * self.bpm / 60.0;
                let same_bars = match (self.bar_line_before(next.clock), next.bar_line_before(next.clock)) {
                    (Some((a, n)), Some((b, m))) => n == m && (a - b).abs() < 1e-3,
                    _ => false,
                };
                (expected - next.beats).abs() < 1e-3 && same_bars
            }
            _ => false,
        }
    }
}

fn grid_at<'a>(anchors: impl DoubleEndedIterator<Item = &'a GridAnchor> + Clone, t: f64) -> Option<GridAnchor> {
    let mut first = anchors.clone();
    anchors.rev().find(|a| a.clock <= t + 1e-9).or_else(|| first.next()).copied()
}

/// The audio thread's latest [`GridAnchor`], published without locks (a sequence lock over
/// atomics: one writer, the audio thread; readers retry while it writes).
#[derive(Debug, Default)]
pub struct SharedGrid {
    /// Odd while being written; 0 before the first anchor.
    sequence: AtomicU64,
    clock: AtomicF64,
    bpm: AtomicF64,
    /// Numerator << 16 | denominator.
    signature: AtomicU32,
    beats: AtomicF64,
    bar_start: AtomicF64,
    bar_number: AtomicI32,
}

impl SharedGrid {
    fn read(&self) -> GridAnchor {
        let signature = self.signature.load(Ordering::Relaxed);
        GridAnchor {
            clock: self.clock.load(Ordering::Relaxed),
            bpm: self.bpm.load(Ordering::Relaxed),
            numerator: signature >> 16,
            denominator: signature & 0xffff,
            beats: self.beats.load(Ordering::Relaxed),
            bar_start: self.bar_start.load(Ordering::Relaxed),
            bar_number: self.bar_number.load(Ordering::Relaxed),
        }
    }

    /// Publishes `anchor` unless it follows from the one published before (audio thread only:
    /// a few atomic stores, no allocation, no lock).
    pub fn publish(&self, anchor: &GridAnchor) {
        let sequence = self.sequence.load(Ordering::Relaxed);
        if sequence != 0 && self.read().continued_by(anchor) {
            return;
        }
        self.sequence.store(sequence + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.clock.store(anchor.clock, Ordering::Relaxed);
        self.bpm.store(anchor.bpm, Ordering::Relaxed);
        self.signature.store(anchor.numerator.min(0xffff) << 16 | anchor.denominator.min(0xffff), Ordering::Relaxed);
        self.beats.store(anchor.beats, Ordering::Relaxed);
        self.bar_start.store(anchor.bar_start, Ordering::Relaxed);
        self.bar_number.store(anchor.bar_number, Ordering::Relaxed);
        self.sequence.store(sequence + 2, Ordering::Release);
    }

    /// The latest anchor (None before the first, or while the writer keeps writing).
    pub fn load(&self) -> Option<GridAnchor> {
        for _ in 0..1000 {
            let before = self.sequence.load(Ordering::Acquire);
            if before == 0 {
                return None;
            }
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let anchor = self.read();
            fence(Ordering::Acquire);
            if self.sequence.load(Ordering::Relaxed) == before {
                return Some(anchor);
            }
        }
        None
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
    /// The last N bars (the current one included) when the host tells its bars, else N bars'
    /// worth of seconds.
    LastBars(u32),
    WholeTake,
}

/// What a clip is made from: a copy of the take's events around it and of the grid.
#[derive(Debug, Clone)]
pub struct ClipSource {
    events: Vec<Played>,
    grid: Vec<GridAnchor>,
    /// Performance-clock seconds of the selection.
    pub from: f64,
    pub to: f64,
    pub length: ClipLength,
}

/// A clip ready to write: the performance (times from its first bar line, or its first note),
/// the grid it is written on, and what its name says.
#[derive(Debug, Clone)]
pub struct Clip {
    pub performance: Performance,
    pub grid: WriteGrid,
    /// Song bars the clip covers (from 1), when the host tells its bars.
    pub bars: Option<(i32, i32)>,
    /// Seconds of music (first note, or first bar line, to the end of the selection).
    pub seconds: f64,
    /// The tempo is the host's (else 120 BPM is written and the name says none).
    pub tempo_from_host: bool,
    /// The name of the score it performs (Perform my part), which names the clip.
    pub score: Option<String>,
}

impl ClipSource {
    /// Lays the selection out on the song's grid: the file starts at the bar line before the
    /// first note (else at the first note), in the host's tempo and time signature.
    pub fn clip(&self) -> Result<Clip, String> {
        let (from, to) = (self.from, self.to);
        let selection = played_performance(&self.events, from, to);
        let Some(first) = selection.notes.first().map(|n| from + n.start) else {
            return Err("no notes in that part of the take".into());
        };
        // The last N bars start at their first bar line even when it is silent; anything else
        // at the bar line before its first note.
        let reference = if matches!(self.length, ClipLength::LastBars(_)) { from.min(first) } else { first };
        let anchor = grid_at(self.grid.iter(), reference);
        let bpm = anchor.map(|a| a.bpm).filter(|&b| b > 0.0);
        let time_signature = anchor
            .filter(|a| a.bar_quarters().is_some() && a.numerator <= 255 && a.denominator <= 255)
            .map(|a| (a.numerator as u8, a.denominator as u8));
        let grid = WriteGrid { bpm: bpm.unwrap_or(120.0), time_signature, offset: 0.0 };
        match anchor.and_then(|a| Some((a, a.bar_line_before(reference)?))) {
            Some((anchor, (line, bar))) => {
                // Cut at the selection's start or the bar line, whichever is later; silence
                // from the bar line to the cut keeps every time on the grid.
                let cut = from.max(line);
                let mut performance = played_performance(&self.events, cut, to);
                // The file ends at the bar line after the selection's end.
                let (end_line, end_bar) = anchor.bar_line_before(to - 1e-6).unwrap_or((line, bar));
                let bar_seconds = anchor.bar_seconds().unwrap_or(2.0);
                let end = if end_line + 1e-6 < to { end_line + bar_seconds } else { end_line };
                performance.duration = (end - cut).max(performance.duration);
                let last_bar = if end_line + 1e-6 < to { end_bar } else { end_bar - 1 }.max(bar);
                Ok(Clip {
                    seconds: to - cut,
                    performance,
                    grid: WriteGrid { offset: cut - line, ..grid },
                    bars: Some((bar + 1, last_bar + 1)),
                    tempo_from_host: bpm.is_some(),
                    score: None,
                })
            }
            None => {
                let performance = played_performance(&self.events, first, to);
                Ok(Clip { seconds: to - first, performance, grid, bars: None, tempo_from_host: bpm.is_some(), score: None })
            }
        }
    }
}

impl Clip {
    /// "pianoforte 2026-11-29 14.03, bars 17-24, 92 bpm", or "my part, performed 2026-11-29
    /// 14.03" (no extension).
    pub fn name(&self, timestamp: &str) -> String {
        if let Some(score) = &self.score {
            return format!("{score}, performed {timestamp}");
        }
        let what = match self.bars {
            Some((a, b)) if a == b => format!("bar {a}"),
            Some((a, b)) => format!("bars {a}-{b}"),
            None => format!("{} s", self.seconds.round() as i64),
        };
        if !self.tempo_from_host {
            return format!("pianoforte {timestamp}, {what}");
        }
        let bpm = self.grid.bpm;
        let tempo = if (bpm - bpm.round()).abs() < 0.005 {
            format!("{}", bpm.round() as i64)
        } else {
            format!("{bpm:.2}").trim_end_matches('0').to_string()
        };
        format!("pianoforte {timestamp}, {what}, {tempo} bpm")
    }

    pub fn bytes(&self) -> Vec<u8> {
        crate::codec::midi::write_on_grid(&self.performance, &self.grid)
    }
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

/// Local date and time as "2026-11-24 21.50" (file-name safe on every system).
pub fn local_timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    #[cfg(unix)]
    {
        let t = now as libc::time_t;
        // SAFETY: localtime_r writes only into `tm`.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if !unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
            return format!("{:04}-{:02}-{:02} {:02}.{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
        }
    }
    format!("{now}")
}

/// `folder/stem.mid`, or `folder/stem (2).mid` etc. when taken.
pub fn free_path(folder: &Path, stem: &str) -> PathBuf {
    let mut path = folder.join(format!("{stem}.mid"));
    let mut n = 2;
    while path.exists() {
        path = folder.join(format!("{stem} ({n}).mid"));
        n += 1;
    }
    path
}

/// Writes `clip` into `folder` (created when missing) through `write_file` (a temporary name,
/// then renamed, so a file manager or a DAW never sees half a file).
pub fn write_clip(clip: &Clip, folder: &Path, write_file: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>) -> Result<SavedClip, String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("cannot create the clips folder {}: {e}", folder.display()))?;
    let path = free_path(folder, &clip.name(&local_timestamp()));
    let partial = path.with_extension("mid.partial");
    write_file(&partial, &clip.bytes()).map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
    std::fs::rename(&partial, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(SavedClip { path, seconds: clip.seconds, notes: clip.performance.notes.len() })
}

/// Saves a clip of the take: copies what it needs under the lock, then builds and writes it
/// after releasing the lock (the engine thread locks the take every few milliseconds; a slow
/// disk must not hold it up). `write_file` is `std::fs::write` but for tests.
pub fn save_clip_with(
    take: &Mutex<Take>,
    now: f64,
    length: ClipLength,
    folder: &Path,
    write_file: impl FnOnce(&Path, &[u8]) -> std::io::Result<()>,
) -> Result<SavedClip, String> {
    let source = take.lock().map_err(|_| "the take is unavailable".to_string())?.clip_source(now, length)?;
    write_clip(&source.clip()?, folder, write_file)
}

/// [`save_clip_with`] writing with `std::fs::write`.
pub fn save_clip_from(take: &Mutex<Take>, now: f64, length: ClipLength, folder: &Path) -> Result<SavedClip, String> {
    save_clip_with(take, now, length, folder, |path, bytes| std::fs::write(path, bytes))
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

    fn temp_folder(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("pianoforte-clips-test-{name}-{}", std::process::id()))
    }

    #[test]
    fn clips_are_written_and_read_back() {
        let dir = temp_folder("plain");
        let take = Mutex::new(sample_take());
        let clip = save_clip_from(&take, 4.0, ClipLength::WholeTake, &dir).unwrap();
        let name = clip.path.file_name().unwrap().to_string_lossy().into_owned();
        // No grid from the host: the clip starts at its first note and says how long it is.
        assert!(name.starts_with("pianoforte ") && name.ends_with(", 3 s.mid"), "{name}");
        let second = save_clip_from(&take, 4.0, ClipLength::LastSeconds(2.0), &dir).unwrap();
        assert_ne!(clip.path, second.path);
        let read = crate::codec::midi::read(&std::fs::read(&clip.path).unwrap()).unwrap().performance;
        assert_eq!(read.notes.len(), 3);
        assert!((read.notes[1].start - 1.0).abs() < 0.001);
        assert_eq!(read.notes[1].velocity, 90);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(save_clip_from(&Mutex::new(Take::new()), 0.0, ClipLength::WholeTake, &dir).is_err());
    }

    /// A host at `bpm` in `n/d` whose song position was `beats0` quarter notes when the
    /// performance clock was 0, playing on without a jump.
    fn anchor(clock: f64, bpm: f64, (n, d): (u32, u32), beats0: f64) -> GridAnchor {
        let beats = beats0 + clock * bpm / 60.0;
        let q = n as f64 * 4.0 / d as f64;
        let bar = (beats / q).floor();
        GridAnchor { clock, bpm, numerator: n, denominator: d, beats, bar_start: bar * q, bar_number: bar as i32 }
    }

    #[test]
    fn clips_land_on_the_songs_grid() {
        // 92 BPM in 3/4 (a bar is 3 * 60/92 s); the performance clock started at beat 37.5 (in
        // bar 13, counted from 1), and the host's buffers kept publishing the same grid.
        let (bpm, bar) = (92.0, 3.0 * 60.0 / 92.0);
        let mut take = Take::new();
        for i in 0..50 {
            take.observe_grid(Some(anchor(i as f64 * 0.1, bpm, (3, 4), 37.5)));
        }
        assert_eq!(take.grid.len(), 1, "anchors that follow from the first add nothing");
        let notes = [(2.0, 60), (2.345_678, 64), (5.5, 67), (9.123_4, 72)];
        for &(t, key) in &notes {
            take.push(played(t, Midi::NoteOn { key, velocity: 77 }));
            take.push(played(t + 0.25, Midi::NoteOff { key }));
        }
        let source = take.clip_source(10.0, ClipLength::WholeTake).unwrap();
        let clip = source.clip().unwrap();
        // The first note, at clock 2 s, is at beat 37.5 + 2 * 92/60 = 40.567: bar 14 (from 1)
        // starts at beat 39, which was at clock (39 - 37.5) * 60/92 s.
        let line = 1.5 * 60.0 / bpm;
        assert_eq!(clip.bars, Some((14, 14 + ((10.0 - line) / bar).floor() as i32)));
        assert_eq!(clip.grid.time_signature, Some((3, 4)));
        assert!((clip.grid.bpm - 92.0).abs() < 1e-12);
        let name = clip.name("2026-11-29 14.03");
        assert_eq!(name, format!("pianoforte 2026-11-29 14.03, bars 14-{}, 92 bpm", clip.bars.unwrap().1));
        let read = crate::codec::midi::read(&clip.bytes()).unwrap().performance;
        assert_eq!(read.notes.len(), notes.len());
        for (&(t, key), n) in notes.iter().zip(&read.notes) {
            assert_eq!(n.pitch, key);
            assert!((n.start - (t - line)).abs() < 0.000_5, "{t}: {n:?}");
            assert!((n.end - (t + 0.25 - line)).abs() < 0.000_5, "{t}: {n:?}");
        }
        // The file ends at a bar line.
        let bars = read.duration / bar;
        assert!((bars - bars.round()).abs() < 1e-3, "{bars} bars");

        // The last 2 bars: from the bar line one bar before the current bar's start.
        let clip = take.clip_source(10.0, ClipLength::LastBars(2)).unwrap().clip().unwrap();
        let (_, last) = clip.bars.unwrap();
        assert_eq!(clip.bars, Some((last - 1, last)));
        let read = crate::codec::midi::read(&clip.bytes()).unwrap().performance;
        assert_eq!(read.notes.len(), 1);
        let beat_of = |t: f64| 37.5 + t * bpm / 60.0;
        let start_beat = (last - 2) as f64 * 3.0;
        assert!((read.notes[0].start - (beat_of(9.1234) - start_beat) * 60.0 / bpm).abs() < 0.000_5);

        // The last 5 s start at clock 5; the first note then is at 5.5 and the bar line before
        // it lies before the cut: the file starts at that bar line with silence up to the cut.
        let clip = take.clip_source(10.0, ClipLength::LastSeconds(5.0)).unwrap().clip().unwrap();
        let (line5, _) = take.grid_at(5.5).unwrap().bar_line_before(5.5).unwrap();
        assert!(line5 < 5.0);
        assert!((clip.grid.offset - (5.0 - line5)).abs() < 1e-9);
        let read = crate::codec::midi::read(&clip.bytes()).unwrap().performance;
        assert!((read.notes[0].start - (5.5 - line5)).abs() < 0.000_5);
    }

    #[test]
    fn a_jump_starts_a_new_grid() {
        let mut take = Take::new();
        take.observe_grid(Some(anchor(0.0, 120.0, (4, 4), 0.0)));
        take.observe_grid(Some(anchor(1.0, 120.0, (4, 4), 0.0)));
        // At clock 2 the host jumped to beat 64 (bar 17).
        let jumped = GridAnchor { clock: 2.0, beats: 64.0, bar_start: 64.0, bar_number: 16, ..anchor(0.0, 120.0, (4, 4), 0.0) };
        take.observe_grid(Some(jumped));
        assert_eq!(take.grid.len(), 2);
        take.push(played(2.5, Midi::NoteOn { key: 60, velocity: 50 }));
        take.push(played(3.0, Midi::NoteOff { key: 60 }));
        let clip = take.clip_source(3.5, ClipLength::WholeTake).unwrap().clip().unwrap();
        assert_eq!(clip.bars, Some((17, 17)));
        assert_eq!(clip.performance.notes[0].start, 0.0);
        assert!((clip.grid.offset - 0.5).abs() < 1e-9, "silence from the bar line to the note");
        // Without a transport (the Play switch): no bars, the clip starts at its first note.
        take.observe_grid(Some(GridAnchor { clock: 4.0, bpm: 120.0, numerator: 4, denominator: 4, ..GridAnchor::default() }));
        take.push(played(4.7, Midi::NoteOn { key: 62, velocity: 50 }));
        take.push(played(5.0, Midi::NoteOff { key: 62 }));
        let clip = take.clip_source(5.0, ClipLength::LastSeconds(1.0)).unwrap().clip().unwrap();
        assert_eq!(clip.bars, None);
        assert_eq!(clip.performance.notes[0].start, 0.0);
        assert_eq!(clip.name("t"), "pianoforte t, 0 s, 120 bpm");
    }

    #[test]
    fn the_shared_grid_publishes_changes_only() {
        let grid = SharedGrid::default();
        assert_eq!(grid.load(), None);
        let a = anchor(0.0, 100.0, (4, 4), 2.0);
        grid.publish(&a);
        grid.publish(&anchor(0.5, 100.0, (4, 4), 2.0));
        assert_eq!(grid.load(), Some(a), "a continuation keeps the first anchor");
        let b = anchor(1.0, 101.0, (4, 4), 2.0);
        grid.publish(&b);
        assert_eq!(grid.load(), Some(b));
        // Readers on other threads never see a torn anchor. The writer goes on until the reader
        // has checked enough anchors (bounded in time): a reader that never got one would
        // otherwise pass without checking anything.
        let grid = std::sync::Arc::new(SharedGrid::default());
        let checked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        const ENOUGH: usize = 1000;
        let writer = {
            let (grid, checked) = (grid.clone(), checked.clone());
            std::thread::spawn(move || {
                let began = std::time::Instant::now();
                let mut i = 0;
                while checked.load(Ordering::Relaxed) < ENOUGH && began.elapsed().as_secs() < 10 {
                    let t = i as f64;
                    grid.publish(&GridAnchor { clock: t, bpm: t, numerator: 4, denominator: 4, beats: t, bar_start: t, bar_number: i });
                    i += 1;
                }
                i - 1
            })
        };
        while !writer.is_finished() {
            if let Some(a) = grid.load() {
                assert!(a.clock == a.bpm && a.beats == a.clock && a.bar_number as f64 == a.clock, "{a:?}");
                checked.fetch_add(1, Ordering::Relaxed);
            }
        }
        let last = writer.join().unwrap();
        assert!(checked.load(Ordering::Relaxed) >= ENOUGH, "the reader saw only {} anchors", checked.load(Ordering::Relaxed));
        assert_eq!(grid.load().map(|a| a.bar_number), Some(last), "the last anchor published is read");
    }

    #[test]
    fn saving_a_clip_leaves_the_take_unlocked_while_writing() {
        // Issue 9: the engine thread locks the take every tick; a slow disk must not stall it.
        let dir = temp_folder("lock");
        let take = Mutex::new(sample_take());
        let mut checked = false;
        let saved = save_clip_with(&take, 4.0, ClipLength::WholeTake, &dir, |path, bytes| {
            checked = true;
            assert!(take.try_lock().is_ok(), "the take is still locked while the file is written");
            std::fs::write(path, bytes)
        })
        .unwrap();
        assert!(checked && saved.path.exists());
        let _ = std::fs::remove_dir_all(&dir);
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
