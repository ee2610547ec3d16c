//! Dragging a file out of the editor into another program: a DAW's arrangement, a file manager.
//!
//! baseview (the windowing library under nice-plug-egui) accepts drops but cannot start a drag,
//! so the plugin does it itself, per platform, behind one small interface: [`start_drag`] takes
//! the editor's window and a function that writes the file, and returns a [`Drag`] to poll. The
//! drag runs on a thread of the plugin instance ([`Threads`](crate::plugin::threads::Threads)):
//! it writes the file first, before it takes the pointer (a slow disk then holds up nothing but
//! this drag), then runs the platform's part. On Linux (X11) that speaks the XDND protocol on a
//! connection of its own ([`x11`]); a Windows (OLE `DoDragDrop`) or macOS (`NSDraggingSession`)
//! source would go beside it.
//!
//! A drag ends at once when it is cancelled ([`Drag::cancel`], or dropping the [`Drag`]), when the
//! instance closes (`Threads::stopping`) or when the editor's window goes away.

use crate::plugin::shared::Shared;
use raw_window_handle::{HasDisplayHandle, HasWindowHandle};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
pub mod x11;

/// A drag ends after this long even when nothing answers (the pointer is always released).
pub const DRAG_LIMIT: Duration = Duration::from_secs(30);
/// After a drop, how long the file stays on offer for a target that is slow to take it.
pub const FINISH_LIMIT: Duration = Duration::from_secs(5);

/// How a drag ended.
#[derive(Debug, Clone, PartialEq)]
pub enum DragEnd {
    /// Dropped on a window that took the file (its name, when it has one).
    Dropped {
        target: String,
    },
    /// Released over a window that did not want the file.
    Refused {
        target: String,
    },
    /// Released where no window takes drops (or over the editor itself).
    NoTarget,
    /// The button was let go before the file was written (it is saved all the same).
    ReleasedEarly,
    /// Escape was pressed, the drag was cancelled, the editor closed or the plugin is closing.
    Cancelled,
    /// The wall-clock limit ran out (see [`DRAG_LIMIT`]).
    TimedOut,
    Failed(String),
}

impl DragEnd {
    /// For the editor, in words.
    pub fn describe(&self) -> String {
        let name = |t: &str| if t.is_empty() { "the window".to_string() } else { format!("“{t}”") };
        match self {
            DragEnd::Dropped { target } => format!("dropped into {}", name(target)),
            DragEnd::Refused { target } => format!("{} did not take the clip", name(target)),
            DragEnd::NoTarget => "not dropped (no window there takes files)".into(),
            DragEnd::ReleasedEarly => "let go before the clip was written: drag it from the list below".into(),
            DragEnd::Cancelled => "drag cancelled".into(),
            DragEnd::TimedOut => "drag ended: the time limit ran out".into(),
            DragEnd::Failed(why) => format!("cannot drag: {why}"),
        }
    }
}

/// What a running drag reports.
#[derive(Debug, Clone, PartialEq)]
pub enum DragEvent {
    /// The file to drag exists now (written by the function given to [`start_drag`]).
    Written(PathBuf),
    Ended(DragEnd),
}

/// A drag in progress (on a thread of its own). Dropping it cancels the drag.
pub struct Drag {
    events: Receiver<DragEvent>,
    cancel: Arc<AtomicBool>,
}

impl Drag {
    /// The next thing the drag reports, if any; `Ended` comes last (also when the thread died).
    pub fn poll(&self) -> Option<DragEvent> {
        match self.events.try_recv() {
            Ok(event) => Some(event),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(DragEvent::Ended(DragEnd::Failed("the drag stopped".into()))),
        }
    }

    /// Ends the drag at once (the pointer is let go); `Ended(Cancelled)` follows.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
    }
}

impl Drop for Drag {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Whether this build can drag files out on this system.
pub fn supported() -> bool {
    cfg!(target_os = "linux")
}

/// Starts dragging the file that `file` writes (or names) out of `window`, the editor's window,
/// while the mouse button that pressed on it is still down. Call it from the editor's thread;
/// the drag runs on a thread owned by `shared.threads`.
pub fn start_drag(
    window: &(impl HasWindowHandle + HasDisplayHandle),
    shared: &Arc<Shared>,
    file: impl FnOnce() -> Result<PathBuf, String> + Send + 'static,
) -> Result<Drag, String> {
    #[cfg(target_os = "linux")]
    {
        let source = x11::prepare(window)?;
        let deadline = Instant::now() + limit();
        spawn(shared, file, move |path, stop| source.run(path, deadline, stop))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (window, shared, file);
        Err("dragging clips out is not available on this system yet; drag the saved file from the clips folder".into())
    }
}

/// Runs a drag on a thread of `shared.threads`: `file` writes the file, then `platform` (the
/// platform's part, given the file and a function that says when to stop) takes the pointer
/// and drags it.
pub(crate) fn spawn(
    shared: &Arc<Shared>,
    file: impl FnOnce() -> Result<PathBuf, String> + Send + 'static,
    platform: impl FnOnce(PathBuf, &dyn Fn() -> bool) -> DragEnd + Send + 'static,
) -> Result<Drag, String> {
    let (events, receiver) = channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let (owner, cancelled) = (shared.clone(), cancel.clone());
    let drag = move || {
        let stop = || cancelled.load(Ordering::Acquire) || owner.threads.stopping();
        let end = write_then_drag(file, platform, &stop, &events);
        log(|| format!("end {end:?}"));
        let _ = events.send(DragEvent::Ended(end));
    };
    shared.threads.spawn("pianoforte-drag", drag).map_err(|e| format!("cannot start the drag: {e}"))?;
    Ok(Drag { events: receiver, cancel })
}

/// The drag thread's steps: the file first (no grab is held yet, so a slow disk freezes no one's
/// input), then the platform's part.
fn write_then_drag(
    file: impl FnOnce() -> Result<PathBuf, String>,
    platform: impl FnOnce(PathBuf, &dyn Fn() -> bool) -> DragEnd,
    stop: &dyn Fn() -> bool,
    events: &Sender<DragEvent>,
) -> DragEnd {
    let path = match file() {
        Ok(path) => path,
        Err(e) => return DragEnd::Failed(e),
    };
    log(|| format!("written {}", path.display()));
    let _ = events.send(DragEvent::Written(path.clone()));
    if stop() {
        return DragEnd::Cancelled;
    }
    platform(path, stop)
}

/// [`DRAG_LIMIT`], or `PIANOFORTE_DRAG_LIMIT_S` seconds in builds with the test hooks.
fn limit() -> Duration {
    #[cfg(feature = "test-hooks")]
    if let Some(seconds) = std::env::var("PIANOFORTE_DRAG_LIMIT_S").ok().and_then(|s| s.parse::<f64>().ok()) {
        return Duration::from_secs_f64(seconds.clamp(0.1, 600.0));
    }
    DRAG_LIMIT
}

/// A `file://` URI for an absolute path (every byte outside the unreserved set and `/`
/// percent-encoded, as RFC 8089 readers expect).
pub fn file_uri(path: &std::path::Path) -> String {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().replace('\\', "/").into_bytes();
    let mut uri = String::from("file://");
    for &b in &bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

/// Test hook: with `PIANOFORTE_DRAG_LOG` set (builds with the test hooks), each step of a drag
/// is appended to that file as a line.
pub(crate) fn log(line: impl FnOnce() -> String) {
    #[cfg(feature = "test-hooks")]
    if let Some(path) = std::env::var_os("PIANOFORTE_DRAG_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{}", line());
        }
    }
    #[cfg(not(feature = "test-hooks"))]
    let _ = line;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_percent_encoded() {
        let path = std::path::Path::new("/home/a b/pianoforte 2026-11-29 14.03, bars 17-24, 92 bpm.mid");
        assert_eq!(file_uri(path), "file:///home/a%20b/pianoforte%202026-11-29%2014.03%2C%20bars%2017-24%2C%2092%20bpm.mid");
        assert_eq!(file_uri(std::path::Path::new("/tmp/é.mid")), "file:///tmp/%C3%A9.mid");
    }

    /// Writes a small file named `name` in the temporary folder and says where.
    fn writing(name: &str) -> impl FnOnce() -> Result<PathBuf, String> + Send + 'static {
        let path = std::env::temp_dir().join(format!("pianoforte-drag-test-{name}-{}.mid", std::process::id()));
        move || std::fs::write(&path, b"MThd").map(|_| path).map_err(|e| e.to_string())
    }

    /// A platform part that holds the pointer (`held`) until told to stop (at most 10 s).
    fn holding(held: Arc<AtomicBool>) -> impl FnOnce(PathBuf, &dyn Fn() -> bool) -> DragEnd + Send + 'static {
        move |path, stop| {
            assert!(path.exists(), "the file is written before the pointer is taken");
            held.store(true, Ordering::SeqCst);
            let began = Instant::now();
            while !stop() && began.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(1));
            }
            held.store(false, Ordering::SeqCst);
            if stop() { DragEnd::Cancelled } else { DragEnd::TimedOut }
        }
    }

    fn wait_until(mut what: impl FnMut() -> bool) -> Duration {
        let began = Instant::now();
        while !what() && began.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        began.elapsed()
    }

    /// What the drag reports, up to its end (waiting for it, 5 s at most).
    fn events(drag: &Drag) -> Vec<DragEvent> {
        let mut events = Vec::new();
        wait_until(|| {
            while let Some(event) = drag.poll() {
                events.push(event);
                if matches!(events.last(), Some(DragEvent::Ended(_))) {
                    return true;
                }
            }
            false
        });
        events
    }

    #[test]
    fn a_drag_ends_at_once_when_cancelled_dropped_or_the_plugin_closes() {
        // Issue 18: closing the editor mid-drag held the pointer for up to 30 s.
        let shared = Arc::new(Shared::default());
        let held = Arc::new(AtomicBool::new(false));
        let is_held = || held.load(Ordering::SeqCst);

        let drag = spawn(&shared, writing("cancel"), holding(held.clone())).unwrap();
        wait_until(is_held);
        drag.cancel();
        assert!(wait_until(|| !is_held()) < Duration::from_secs(1), "cancel lets the pointer go at once");
        let seen = events(&drag);
        assert!(matches!(seen[..], [DragEvent::Written(_), DragEvent::Ended(DragEnd::Cancelled)]), "{seen:?}");

        // The editor that started it goes away.
        let drag = spawn(&shared, writing("dropped"), holding(held.clone())).unwrap();
        wait_until(is_held);
        drop(drag);
        assert!(wait_until(|| !is_held()) < Duration::from_secs(1), "dropping the drag ends it");

        // The plugin closes: the instance's threads stop and are joined.
        let drag = spawn(&shared, writing("closing"), holding(held.clone())).unwrap();
        wait_until(is_held);
        let began = Instant::now();
        shared.threads.join_all();
        assert!(began.elapsed() < Duration::from_secs(1) && !is_held());
        assert_eq!(events(&drag).last(), Some(&DragEvent::Ended(DragEnd::Cancelled)));
        assert!(spawn(&shared, writing("late"), holding(held)).is_err(), "no drag starts while the plugin closes");
    }

    #[test]
    fn a_file_that_cannot_be_written_ends_the_drag_before_any_grab() {
        let shared = Arc::new(Shared::default());
        let grabbed = Arc::new(AtomicBool::new(false));
        let grab = grabbed.clone();
        let drag = spawn(
            &shared,
            || Err("disk full".into()),
            move |_, _| {
                grab.store(true, Ordering::SeqCst);
                DragEnd::NoTarget
            },
        )
        .unwrap();
        assert_eq!(events(&drag), vec![DragEvent::Ended(DragEnd::Failed("disk full".into()))]);
        assert!(!grabbed.load(Ordering::SeqCst));
    }
}
