//! The drag source on X11: the XDND protocol (version 5), as JUCE's Linux code follows it, on a
//! connection of our own (x11rb), on the drag's thread (see the parent module: the file is
//! written before any of this).
//!
//! 1. The editor's connection releases its implicit pointer grab (the button press on the drag
//!    handle), on the editor's thread ([`prepare`]); ours grabs the pointer (and the keyboard,
//!    for Escape) on the root window, once the file is written.
//! 2. We own `XdndSelection` with a small unmapped window of ours.
//! 3. On every move: the window under the pointer that has `XdndAware` (following `XdndProxy`)
//!    gets `XdndEnter` (offering `text/uri-list`) when the pointer comes in, then `XdndPosition`
//!    (one at a time: the next after its `XdndStatus`), and `XdndLeave` when it goes.
//! 4. On release: `XdndDrop` when the target accepted the last position, else `XdndLeave`; the
//!    pointer is let go at once. The target asks for the selection (`SelectionRequest`) and gets
//!    `file:///path\r\n`; `XdndFinished` ends the drag.
//!
//! A wall-clock limit ends the drag even when a target never answers or the release never
//! comes; Escape, a cancel (`stop`) and the editor's window going away end it at once. Every way
//! out lets the pointer and the keyboard go and sends the editor the button release that our
//! grab took from it.

use super::{DragEnd, FINISH_LIMIT, file_uri, log};
use raw_window_handle::{HasDisplayHandle, HasWindowHandle, RawDisplayHandle, RawWindowHandle};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use x11rb::connection::Connection;
use x11rb::errors::ReplyError;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    AtomEnum, BUTTON_RELEASE_EVENT, ButtonReleaseEvent, ChangeWindowAttributesAux, ClientMessageEvent, ConnectionExt as _, CreateWindowAux,
    EventMask, GrabMode, GrabStatus, KeyButMask, LEAVE_NOTIFY_EVENT, LeaveNotifyEvent, MOTION_NOTIFY_EVENT, Motion, MotionNotifyEvent,
    NotifyDetail, NotifyMode, PropMode, SELECTION_NOTIFY_EVENT, SelectionNotifyEvent, SelectionRequestEvent, Timestamp, Window,
    WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{COPY_DEPTH_FROM_PARENT, COPY_FROM_PARENT, CURRENT_TIME, NONE};

/// The XDND version we speak.
const XDND_VERSION: u32 = 5;
/// How long to wait for a target's XdndStatus before taking it as "no".
const STATUS_WAIT: Duration = Duration::from_millis(1000);
/// Pause between polls of the connection when nothing came.
const POLL: Duration = Duration::from_millis(4);
/// X keysym of the Escape key.
const XK_ESCAPE: u32 = 0xff1b;
/// `XC_hand2` in the X cursor font.
const CURSOR_GLYPH: u16 = 60;

x11rb::atom_manager! {
    Atoms: AtomsCookie {
        XdndAware,
        XdndProxy,
        XdndEnter,
        XdndPosition,
        XdndStatus,
        XdndLeave,
        XdndDrop,
        XdndFinished,
        XdndSelection,
        XdndActionCopy,
        TARGETS,
        UTF8_STRING,
        _NET_WM_NAME,
        TextUriList: b"text/uri-list",
    }
}

type XResult<T> = Result<T, String>;

fn text(e: impl std::fmt::Display) -> String {
    format!("X11: {e}")
}

/// The editor's side of a drag, ready to run on the drag's thread ([`Prepared::run`]).
pub(super) struct Prepared {
    editor: Window,
}

/// Readies a drag out of `window` (on the editor's thread): finds its X window and lets go of
/// the editor's implicit pointer grab, so that the drag's connection can take the pointer.
pub(super) fn prepare(window: &(impl HasWindowHandle + HasDisplayHandle)) -> Result<Prepared, String> {
    let editor = match window.window_handle().map_err(text)?.as_raw() {
        RawWindowHandle::Xcb(h) => h.window.get(),
        RawWindowHandle::Xlib(h) => h.window as Window,
        _ => return Err("the editor is not an X11 window".into()),
    };
    release_editor_grab(window)?;
    Ok(Prepared { editor })
}

impl Prepared {
    /// Drags the written file `path` until it is dropped, refused, cancelled (Escape, `stop()`,
    /// the editor's window gone) or `deadline` passes.
    pub(super) fn run(self, path: PathBuf, deadline: Instant, stop: &dyn Fn() -> bool) -> DragEnd {
        match Source::connect(self.editor) {
            Ok(mut source) => source.run(&path, deadline, stop),
            Err(e) => DragEnd::Failed(e),
        }
    }
}

/// The button press on the drag handle gave the editor's connection an implicit pointer grab,
/// which no other connection can take over: it lets go here, on that connection (baseview's
/// xcb connection, borrowed), so that ours can grab.
fn release_editor_grab(window: &impl HasDisplayHandle) -> XResult<()> {
    let RawDisplayHandle::Xcb(handle) = window.display_handle().map_err(text)?.as_raw() else {
        return Err("the editor's X connection cannot be reached (not an xcb display handle)".into());
    };
    let pointer = handle.connection.ok_or("the editor has no X connection")?;
    // SAFETY: the pointer is the live xcb connection of the editor's window (baseview keeps it
    // open while the window exists, and we are called from its event loop); it is borrowed
    // (`should_drop = false`: not closed when this wrapper goes) and xcb connections are
    // thread-safe. One request goes out.
    let conn = unsafe { x11rb::xcb_ffi::XCBConnection::from_raw_xcb_connection(pointer.as_ptr(), false) }.map_err(text)?;
    conn.ungrab_pointer(CURRENT_TIME).map_err(text)?;
    conn.flush().map_err(text)?;
    Ok(())
}

/// The window a drag is over.
struct Target {
    /// The XdndAware window (named in the messages).
    window: Window,
    /// Where the messages go: the window, or its XdndProxy.
    send_to: Window,
    version: u32,
    name: String,
    /// An XdndPosition awaits its XdndStatus since then.
    waiting: Option<Instant>,
    /// The pointer moved while waiting: send a position when the status comes.
    moved: bool,
    accepted: bool,
}

struct Source {
    conn: RustConnection,
    atoms: Atoms,
    root: Window,
    /// Our unmapped window: owns XdndSelection, receives the targets' messages.
    window: Window,
    editor: Window,
    /// The editor's window in root coordinates: no target there.
    editor_rect: (i32, i32, i32, i32),
    escape: Vec<u8>,
    cursor: u32,
    grabbed: bool,
    /// The last pointer position (root coordinates) and event time.
    x: i16,
    y: i16,
    time: Timestamp,
}

impl Source {
    fn connect(editor: Window) -> XResult<Source> {
        let (conn, screen) = RustConnection::connect(None).map_err(text)?;
        let root = conn.setup().roots.get(screen).ok_or("no X screen")?.root;
        let atoms = Atoms::new(&conn).map_err(text)?.reply().map_err(text)?;
        let window = conn.generate_id().map_err(text)?;
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            window,
            root,
            -100,
            -100,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            COPY_FROM_PARENT,
            &CreateWindowAux::new().override_redirect(1),
        )
        .map_err(text)?;
        let editor_rect = match (conn.get_geometry(editor), conn.translate_coordinates(editor, root, 0, 0)) {
            (Ok(g), Ok(t)) => match (g.reply(), t.reply()) {
                (Ok(g), Ok(t)) => (t.dst_x as i32, t.dst_y as i32, g.width as i32, g.height as i32),
                _ => (0, 0, 0, 0),
            },
            _ => (0, 0, 0, 0),
        };
        // Told when the editor's window goes (the host closed the editor): the drag ends then.
        let watch = ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY);
        conn.change_window_attributes(editor, &watch).map_err(text)?.check().map_err(|_| "the editor's window is gone")?;
        let escape = escape_keycodes(&conn).unwrap_or_default();
        let cursor = hand_cursor(&conn).unwrap_or(NONE);
        Ok(Source { conn, atoms, root, window, editor, editor_rect, escape, cursor, grabbed: false, x: 0, y: 0, time: CURRENT_TIME })
    }

    fn run(&mut self, path: &Path, deadline: Instant, stop: &dyn Fn() -> bool) -> DragEnd {
        let end = match self.grab(stop) {
            Ok(()) if !self.button_down() => DragEnd::ReleasedEarly,
            Ok(()) => self.drag(path, deadline, stop).unwrap_or_else(DragEnd::Failed),
            Err(_) if stop() => DragEnd::Cancelled,
            Err(e) => DragEnd::Failed(e),
        };
        self.ungrab();
        let _ = self.conn.destroy_window(self.window);
        if self.cursor != NONE {
            let _ = self.conn.free_cursor(self.cursor);
        }
        let _ = self.conn.flush();
        end
    }

    fn grab(&mut self, stop: &dyn Fn() -> bool) -> XResult<()> {
        let mask = EventMask::BUTTON_RELEASE | EventMask::POINTER_MOTION | EventMask::BUTTON_MOTION;
        // The editor's grab may take a moment to go (its request and ours race to the server).
        let mut status = GrabStatus::ALREADY_GRABBED;
        for _ in 0..50 {
            status = self
                .conn
                .grab_pointer(false, self.root, mask, GrabMode::ASYNC, GrabMode::ASYNC, NONE, self.cursor, CURRENT_TIME)
                .map_err(text)?
                .reply()
                .map_err(text)?
                .status;
            if status == GrabStatus::SUCCESS || stop() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if status != GrabStatus::SUCCESS {
            return Err(format!("cannot take the pointer ({status:?})"));
        }
        self.grabbed = true;
        // Escape cancels: the keyboard too, when we can have it.
        let keyboard = self.conn.grab_keyboard(false, self.root, CURRENT_TIME, GrabMode::ASYNC, GrabMode::ASYNC);
        let keyboard = keyboard.map_err(text)?.reply().map(|r| r.status == GrabStatus::SUCCESS).unwrap_or(false);
        log(|| format!("grabbed pointer (keyboard {keyboard})"));
        Ok(())
    }

    /// Whether the first button is still held (asked after our grab: a release from then on
    /// comes to us, one before it shows here). Also notes where the pointer is.
    fn button_down(&mut self) -> bool {
        let Ok(Ok(pointer)) = self.conn.query_pointer(self.root).map(|c| c.reply()) else {
            return false;
        };
        (self.x, self.y) = (pointer.root_x, pointer.root_y);
        let down = pointer.mask.contains(KeyButMask::BUTTON1);
        if !down {
            log(|| "released before the file was written".to_string());
        }
        down
    }

    /// Lets the pointer and keyboard go (once) and gives the editor the button release that
    /// our grab took from it (with the pointer's position first: baseview drops a release while
    /// it thinks the pointer is outside, and egui would go on taking the button as held).
    fn ungrab(&mut self) {
        if !self.grabbed {
            return;
        }
        self.grabbed = false;
        let _ = self.conn.ungrab_pointer(CURRENT_TIME);
        let _ = self.conn.ungrab_keyboard(CURRENT_TIME);
        let (ex, ey, ew, eh) = self.editor_rect;
        let (event_x, event_y) = ((self.x as i32 - ex).clamp(-32768, 32767) as i16, (self.y as i32 - ey).clamp(-32768, 32767) as i16);
        let (time, root, event, root_x, root_y) = (self.time, self.root, self.editor, self.x, self.y);
        let motion = MotionNotifyEvent {
            response_type: MOTION_NOTIFY_EVENT,
            detail: Motion::NORMAL,
            sequence: 0,
            time,
            root,
            event,
            child: NONE,
            root_x,
            root_y,
            event_x,
            event_y,
            state: KeyButMask::BUTTON1,
            same_screen: true,
        };
        let release = ButtonReleaseEvent {
            response_type: BUTTON_RELEASE_EVENT,
            detail: 1,
            sequence: 0,
            time,
            root,
            event,
            child: NONE,
            root_x,
            root_y,
            event_x,
            event_y,
            state: KeyButMask::BUTTON1,
            same_screen: true,
        };
        let _ = self.conn.send_event(false, event, EventMask::POINTER_MOTION, motion);
        let _ = self.conn.send_event(false, event, EventMask::BUTTON_RELEASE, release);
        let inside = (0..ew).contains(&(event_x as i32)) && (0..eh).contains(&(event_y as i32));
        if !inside {
            let leave = LeaveNotifyEvent {
                response_type: LEAVE_NOTIFY_EVENT,
                detail: NotifyDetail::NONLINEAR,
                sequence: 0,
                time,
                root,
                event,
                child: NONE,
                root_x,
                root_y,
                event_x,
                event_y,
                state: KeyButMask::default(),
                mode: NotifyMode::NORMAL,
                same_screen_focus: 1,
            };
            let _ = self.conn.send_event(false, event, EventMask::LEAVE_WINDOW, leave);
        }
        let _ = self.conn.flush();
        log(|| "ungrabbed".to_string());
    }

    fn drag(&mut self, path: &Path, deadline: Instant, stop: &dyn Fn() -> bool) -> XResult<DragEnd> {
        let uri = format!("{}\r\n", file_uri(path));
        log(|| format!("offer {}", uri.trim_end()));
        self.conn.set_selection_owner(self.window, self.atoms.XdndSelection, CURRENT_TIME).map_err(text)?;
        let mut target = None;
        self.track(&mut target)?;
        loop {
            if Instant::now() >= deadline {
                self.leave(&mut target)?;
                return Ok(DragEnd::TimedOut);
            }
            if stop() {
                log(|| "stopped".to_string());
                self.leave(&mut target)?;
                return Ok(DragEnd::Cancelled);
            }
            let Some(event) = self.conn.poll_for_event().map_err(text)? else {
                self.idle(&mut target)?;
                continue;
            };
            if self.editor_closed(&event) {
                log(|| "the editor closed".to_string());
                self.leave(&mut target)?;
                return Ok(DragEnd::Cancelled);
            }
            match event {
                Event::MotionNotify(e) => {
                    (self.x, self.y, self.time) = (e.root_x, e.root_y, e.time);
                    self.track(&mut target)?;
                }
                Event::ButtonRelease(e) if e.detail == 1 => {
                    (self.x, self.y, self.time) = (e.root_x, e.root_y, e.time);
                    self.track(&mut target)?;
                    return self.release(target, &uri, deadline, stop);
                }
                Event::KeyPress(e) if self.escape.contains(&e.detail) => {
                    log(|| "escape".to_string());
                    self.leave(&mut target)?;
                    return Ok(DragEnd::Cancelled);
                }
                Event::ClientMessage(e) if e.type_ == self.atoms.XdndStatus => {
                    if let Some(t) = target.as_mut() {
                        self.status(t, &e)?;
                    }
                }
                Event::SelectionRequest(e) => self.answer(&e, &uri)?,
                _ => {}
            }
        }
    }

    /// Nothing came: wait a moment; a target that does not answer in time says no.
    fn idle(&mut self, target: &mut Option<Target>) -> XResult<()> {
        self.conn.flush().map_err(text)?;
        std::thread::sleep(POLL);
        if let Some(t) = target.as_mut()
            && t.waiting.is_some_and(|since| since.elapsed() > STATUS_WAIT)
        {
            // Try again on the next move.
            log(|| format!("no status from {:#x}", t.window));
            (t.waiting, t.accepted) = (None, false);
            if std::mem::take(&mut t.moved) {
                self.position(t)?;
            }
        }
        Ok(())
    }

    /// Whether `event` says the editor's window went away (the host closed the editor).
    fn editor_closed(&self, event: &Event) -> bool {
        match event {
            Event::DestroyNotify(e) => e.window == self.editor,
            Event::UnmapNotify(e) => e.window == self.editor,
            _ => false,
        }
    }

    /// Release: drop on a target that accepts, else leave; then serve the file until the
    /// target says it has finished.
    fn release(&mut self, target: Option<Target>, uri: &str, deadline: Instant, stop: &dyn Fn() -> bool) -> XResult<DragEnd> {
        let Some(mut t) = target else {
            log(|| "release over no target".to_string());
            self.ungrab();
            return Ok(DragEnd::NoTarget);
        };
        // The answer to the last position may still be on its way.
        let until = (Instant::now() + STATUS_WAIT).min(deadline);
        while t.waiting.is_some() && Instant::now() < until && !stop() {
            match self.conn.poll_for_event().map_err(text)? {
                Some(Event::ClientMessage(e)) if e.type_ == self.atoms.XdndStatus => {
                    t.moved = false;
                    self.status(&mut t, &e)?;
                }
                Some(Event::SelectionRequest(e)) => self.answer(&e, uri)?,
                Some(_) => {}
                None => {
                    self.conn.flush().map_err(text)?;
                    std::thread::sleep(POLL);
                }
            }
        }
        let name = t.name.clone();
        if stop() {
            self.leave(&mut Some(t))?;
            return Ok(DragEnd::Cancelled);
        }
        if !t.accepted || t.waiting.is_some() {
            self.leave(&mut Some(t))?;
            self.ungrab();
            return Ok(DragEnd::Refused { target: name });
        }
        log(|| format!("drop on {:#x}", t.window));
        self.client_message(&t, self.atoms.XdndDrop, [self.window, 0, self.time, 0, 0])?;
        self.ungrab();
        // The pointer is free already; a stop ends the wait for the target's answer.
        let until = Instant::now() + FINISH_LIMIT;
        while Instant::now() < until && !stop() {
            match self.conn.poll_for_event().map_err(text)? {
                Some(Event::SelectionRequest(e)) => self.answer(&e, uri)?,
                Some(Event::ClientMessage(e)) if e.type_ == self.atoms.XdndFinished && e.data.as_data32()[0] == t.window => {
                    let data = e.data.as_data32();
                    // Version 5 says whether the drop was taken; earlier versions do not.
                    let taken = t.version < 5 || data[1] & 1 == 1;
                    log(|| format!("finished by {:#x} (taken {taken})", t.window));
                    return Ok(if taken { DragEnd::Dropped { target: name } } else { DragEnd::Refused { target: name } });
                }
                Some(_) => {}
                None => {
                    self.conn.flush().map_err(text)?;
                    std::thread::sleep(POLL);
                }
            }
        }
        log(|| "no XdndFinished".to_string());
        Ok(DragEnd::Dropped { target: name })
    }

    /// Follows the pointer: leave the old target, enter a new one, send a position.
    fn track(&mut self, target: &mut Option<Target>) -> XResult<()> {
        let found = self.target_at(self.x, self.y)?;
        if target.as_ref().map(|t| t.window) != found.map(|f| f.0) {
            self.leave(target)?;
            if let Some((window, send_to, version)) = found {
                let t = Target { window, send_to, version, name: self.name(window), waiting: None, moved: false, accepted: false };
                log(|| format!("enter {:#x} \"{}\" (version {version})", t.window, t.name));
                let flags = t.version << 24;
                self.client_message(&t, self.atoms.XdndEnter, [self.window, flags, self.atoms.TextUriList, 0, 0])?;
                *target = Some(t);
            }
        }
        if let Some(t) = target.as_mut() {
            if t.waiting.is_some() {
                t.moved = true;
            } else {
                self.position(t)?;
            }
        }
        self.conn.flush().map_err(text)
    }

    fn position(&self, t: &mut Target) -> XResult<()> {
        let at = (self.x as u16 as u32) << 16 | self.y as u16 as u32;
        self.client_message(t, self.atoms.XdndPosition, [self.window, 0, at, self.time, self.atoms.XdndActionCopy])?;
        t.waiting = Some(Instant::now());
        Ok(())
    }

    fn status(&self, t: &mut Target, e: &ClientMessageEvent) -> XResult<()> {
        let data = e.data.as_data32();
        if data[0] != t.window {
            return Ok(());
        }
        let accepted = data[1] & 1 == 1;
        if accepted != t.accepted || t.waiting.is_some_and(|w| w.elapsed() > Duration::from_millis(200)) {
            log(|| format!("status from {:#x}: accept {accepted}", t.window));
        }
        (t.accepted, t.waiting) = (accepted, None);
        if std::mem::take(&mut t.moved) {
            self.position(t)?;
        }
        Ok(())
    }

    fn leave(&self, target: &mut Option<Target>) -> XResult<()> {
        if let Some(t) = target.take() {
            log(|| format!("leave {:#x}", t.window));
            self.client_message(&t, self.atoms.XdndLeave, [self.window, 0, 0, 0, 0])?;
            self.conn.flush().map_err(text)?;
        }
        Ok(())
    }

    fn client_message(&self, t: &Target, kind: u32, data: [u32; 5]) -> XResult<()> {
        let event = ClientMessageEvent::new(32, t.window, kind, data);
        // Checked (a round trip): a message is through before the next step (and before the
        // connection closes); a target that is gone meanwhile is logged, not fatal.
        let sent = self.conn.send_event(false, t.send_to, EventMask::NO_EVENT, event).map_err(text)?;
        if let Err(e) = sent.check() {
            log(|| format!("message {kind} to {:#x} failed: {e}", t.send_to));
        }
        Ok(())
    }

    /// The XdndAware window under the root position (x, y): (window, where to send, version).
    /// None over the editor itself and where no window takes drops.
    fn target_at(&self, x: i16, y: i16) -> XResult<Option<(Window, Window, u32)>> {
        let (ex, ey, ew, eh) = self.editor_rect;
        let (px, py) = (x as i32, y as i32);
        if px >= ex && px < ex + ew && py >= ey && py < ey + eh {
            return Ok(None);
        }
        let mut window = self.root;
        for _ in 0..32 {
            let child = self.conn.translate_coordinates(self.root, window, x, y).map_err(text)?.reply().map_err(text)?.child;
            if child == NONE || child == self.editor || child == self.window {
                return Ok(None);
            }
            if let Some(version) = self.xdnd_aware(child) {
                let send_to = self.proxy(child).unwrap_or(child);
                return Ok(Some((child, send_to, version.min(XDND_VERSION))));
            }
            window = child;
        }
        Ok(None)
    }

    fn property32(&self, window: Window, property: u32) -> Option<u32> {
        let reply = self.conn.get_property(false, window, property, AtomEnum::ANY, 0, 1).ok()?.reply().ok()?;
        reply.value32()?.next()
    }

    /// The XDND version a window speaks (at least 3), when it is XdndAware.
    fn xdnd_aware(&self, window: Window) -> Option<u32> {
        self.property32(window, self.atoms.XdndAware).filter(|&v| v >= 3)
    }

    /// A valid XdndProxy of `window` (the proxy names itself as its proxy).
    fn proxy(&self, window: Window) -> Option<Window> {
        let proxy = self.property32(window, self.atoms.XdndProxy)?;
        (self.property32(proxy, self.atoms.XdndProxy) == Some(proxy)).then_some(proxy)
    }

    /// The window's title, for messages.
    fn name(&self, window: Window) -> String {
        for (property, kind) in [(self.atoms._NET_WM_NAME, self.atoms.UTF8_STRING), (AtomEnum::WM_NAME.into(), AtomEnum::STRING.into())] {
            if let Ok(Ok(reply)) = self.conn.get_property(false, window, property, kind, 0, 256).map(|c| c.reply())
                && !reply.value.is_empty()
            {
                return String::from_utf8_lossy(&reply.value).into_owned();
            }
        }
        String::new()
    }

    /// A target asks for the file: `text/uri-list` (or the list of what we offer).
    fn answer(&self, e: &SelectionRequestEvent, uri: &str) -> XResult<()> {
        let property = if e.property == NONE { e.target } else { e.property };
        let a = &self.atoms;
        let answered = if e.selection != a.XdndSelection {
            false
        } else if e.target == a.TARGETS {
            let targets = [a.TARGETS, a.TextUriList];
            self.conn.change_property32(PropMode::REPLACE, e.requestor, property, AtomEnum::ATOM, &targets).map_err(text)?;
            true
        } else if e.target == a.TextUriList {
            self.conn.change_property8(PropMode::REPLACE, e.requestor, property, a.TextUriList, uri.as_bytes()).map_err(text)?;
            true
        } else {
            false
        };
        log(|| format!("selection request for atom {} answered {answered}", e.target));
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: e.time,
            requestor: e.requestor,
            selection: e.selection,
            target: e.target,
            property: if answered { property } else { NONE },
        };
        self.conn.send_event(false, e.requestor, EventMask::NO_EVENT, notify).map_err(text)?;
        self.conn.flush().map_err(text)
    }
}

/// The keycodes that give Escape.
fn escape_keycodes(conn: &RustConnection) -> Result<Vec<u8>, ReplyError> {
    let setup = conn.setup();
    let (first, last) = (setup.min_keycode, setup.max_keycode);
    let map = conn.get_keyboard_mapping(first, last - first + 1)?.reply()?;
    let per = map.keysyms_per_keycode.max(1) as usize;
    Ok(map.keysyms.chunks(per).enumerate().filter(|(_, syms)| syms.contains(&XK_ESCAPE)).map(|(i, _)| first + i as u8).collect())
}

/// A hand from the X cursor font, for the drag.
fn hand_cursor(conn: &RustConnection) -> Result<u32, String> {
    let font = conn.generate_id().map_err(text)?;
    conn.open_font(font, b"cursor").map_err(text)?;
    let cursor = conn.generate_id().map_err(text)?;
    conn.create_glyph_cursor(cursor, font, font, CURSOR_GLYPH, CURSOR_GLYPH + 1, 0, 0, 0, 0xffff, 0xffff, 0xffff).map_err(text)?;
    conn.close_font(font).map_err(text)?;
    Ok(cursor)
}
