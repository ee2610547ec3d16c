#!/usr/bin/python3
"""Windows for the drag-and-drop test (tests/host/drag-drop.sh), run with the system python3.

usage: drop_target.py MODE X Y [FILE]
  gtk     a GTK 3 window that takes text/uri-list drops (drag_dest_set) and prints each URI it
          receives as "URI <uri>"
  source  a GTK 3 window that drags FILE out as text/uri-list (drag_source_set), as a file
          manager or a DAW does; prints "SENT <uri>" when the target takes the data and
          "END" when the drag ends
  plain   a bare X window (python-xlib) that is not XdndAware (GTK marks every window)
  silent  a bare X window (python-xlib) that says it is XdndAware but never answers
The bare windows print the XDND messages they get as "MSG <name>".
  grab    no window: tries to grab the pointer and prints "GRAB free" or "GRAB taken"
Each window prints "READY <window id>" once it is mapped. Needs python3-gi, gir1.2-gtk-3.0 and
python3-xlib (Debian; tests/host/setup-hosts.sh installs them).
"""
import sys


def say(line: str) -> None:
    print(line, flush=True)


def gtk_window(mode: str, x: int, y: int, file: str = "") -> None:
    import gi

    gi.require_version("Gtk", "3.0")
    gi.require_version("Gdk", "3.0")
    gi.require_version("GdkX11", "3.0")
    from gi.repository import Gdk, GdkX11, Gtk  # noqa: F401 (GdkX11 gives get_xid)

    window = Gtk.Window(title=f"pianoforte test {mode} target")
    window.set_default_size(240, 180)
    window.move(x, y)
    label = Gtk.Label(label=f"{mode} target")
    window.add(label)
    if mode == "gtk":
        uri_list = Gtk.TargetEntry.new("text/uri-list", 0, 0)
        window.drag_dest_set(Gtk.DestDefaults.ALL, [uri_list], Gdk.DragAction.COPY)

        def received(_widget, context, _x, _y, data, _info, time):
            uris = data.get_uris() or []
            for uri in uris:
                say(f"URI {uri}")
            Gtk.drag_finish(context, bool(uris), False, time)

        window.connect("drag-data-received", received)
    if mode == "source":
        from pathlib import Path

        uri = Path(file).resolve().as_uri()
        uri_list = Gtk.TargetEntry.new("text/uri-list", 0, 0)
        window.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [uri_list], Gdk.DragAction.COPY)

        def give(_widget, _context, data, _info, _time):
            data.set_uris([uri])
            say(f"SENT {uri}")

        window.connect("drag-data-get", give)
        window.connect("drag-end", lambda *_: say("END"))
    window.connect("destroy", Gtk.main_quit)

    def mapped(_widget, _event):
        say(f"READY {window.get_window().get_xid()}")
        return False

    window.connect("map-event", mapped)
    window.show_all()
    Gtk.main()


def bare_window(mode: str, x: int, y: int) -> None:
    from Xlib import X, display

    d = display.Display()
    screen = d.screen()
    window = screen.root.create_window(
        x, y, 240, 180, 0, screen.root_depth, X.InputOutput, X.CopyFromParent,
        background_pixel=screen.white_pixel, event_mask=X.StructureNotifyMask,
    )
    window.set_wm_name(f"pianoforte test {mode} target")
    if mode == "silent":
        window.change_property(d.intern_atom("XdndAware"), d.intern_atom("ATOM"), 32, [5])
    window.map()
    d.sync()
    names = {d.intern_atom(n): n for n in ("XdndEnter", "XdndPosition", "XdndLeave", "XdndDrop")}
    while True:
        event = d.next_event()
        if event.type == X.MapNotify:
            say(f"READY {window.id}")
        elif event.type == X.ClientMessage:
            say(f"MSG {names.get(event.client_type, event.client_type)}")


def grab_probe() -> None:
    from Xlib import X, display

    d = display.Display()
    root = d.screen().root
    mode = X.GrabModeAsync
    status = root.grab_pointer(False, X.ButtonReleaseMask, mode, mode, X.NONE, X.NONE, X.CurrentTime)
    if status == X.GrabSuccess:
        d.ungrab_pointer(X.CurrentTime)
        d.sync()
    say("GRAB free" if status == X.GrabSuccess else f"GRAB taken ({status})")


def main() -> None:
    mode = sys.argv[1]
    if mode == "grab":
        grab_probe()
        return
    x, y = int(sys.argv[2]), int(sys.argv[3])
    if mode in ("plain", "silent"):
        bare_window(mode, x, y)
    else:
        gtk_window(mode, x, y, *sys.argv[4:5])


if __name__ == "__main__":
    main()
