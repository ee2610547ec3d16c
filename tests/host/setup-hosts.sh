#!/usr/bin/env bash
# Installs what the plugin's host tests need, once (idempotent; Debian packages, as root):
# - Ardour 7 (`ardour`): the VST3 host, run headless through `ardour7-lua` with its dummy backend;
# - Xvfb, Mesa's software OpenGL, the X11 libraries baseview loads and xdotool: the editor test;
# - the ALSA and JACK headers: the plugin's standalone build (`--features standalone`);
# - GTK 3 for the system python3 (python3-gi, gir1.2-gtk-3.0) and python3-xlib: the drop
#   targets of the drag-and-drop test (tests/host/drag-drop.sh).
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

have_cmd ardour7-lua || need+=(ardour)
have_cmd Xvfb || need+=(xvfb)
for pkg in libasound2-dev libjack-jackd2-dev libgl1-mesa-dri libglx-mesa0 libx11-xcb1 libxcursor1 libxrandr2 libxkbcommon-x11-0 x11-utils xdotool \
    python3-gi gir1.2-gtk-3.0 python3-xlib; do
    have_pkg "$pkg" || need+=("$pkg")
done

if ((${#need[@]})); then
    echo "setup-hosts: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
echo "setup-hosts: ardour7-lua, Xvfb, the standalone build's libraries and the drop targets' GTK are present" >&2
