//! Dragging a file out of the editor into another program: a DAW's arrangement, a file manager.
//!
//! baseview (the windowing library under nice-plug-egui) accepts drops but cannot start a drag,
//! so the plugin does it itself, per platform, behind one small interface: [`start_drag`] takes
//! the editor's window and a function that writes the file, and returns a [`Drag`] to poll. On
//! Linux (X11) it speaks the XDND protocol on a connection of its own ([`x11`]); a Windows
//! (OLE `DoDragDrop`) or macOS (`NSDraggingSession`) source would go beside it.

use raw_window_handle::{HasDisplayHandle, HasWindowHandle};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

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
    /// Escape was pressed.
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

/// A drag in progress (it runs on a thread of its own; dropping this does not stop it).
pub struct Drag {
    events: Receiver<DragEvent>,
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
}

/// Whether this build can drag files out on this system.
pub fn supported() -> bool {
    cfg!(target_os = "linux")
}

/// Starts dragging the file that `file` writes (or names) out of `window`, the editor's window,
/// while the mouse button that pressed on it is still down. Call it from the editor's thread.
pub fn start_drag(
    window: &(impl HasWindowHandle + HasDisplayHandle),
    file: impl FnOnce() -> Result<PathBuf, String> + Send + 'static,
) -> Result<Drag, String> {
    #[cfg(target_os = "linux")]
    {
        x11::start(window, file, limit()).map(|events| Drag { events })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (window, file);
        Err("dragging clips out is not available on this system yet; drag the saved file from the clips folder".into())
    }
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
}
