#!/usr/bin/env bash
# The editor, seen: runs the standalone build (dummy audio backend, so it plays) under Xvfb,
# waits for the window, takes a screenshot and checks it shows the controls.
#
# usage: tests/host/editor-screenshot.sh PYTHON [OUT.png]   (default: docs/editor.png)
# Needs tests/host/setup-hosts.sh and
#   cargo build --release --features standalone --bin pianoforte-standalone
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${1:?usage: editor-screenshot.sh PYTHON [OUT.png]}"
out="${2:-$root/docs/editor.png}"
bin="$root/target/release/pianoforte-standalone"
[[ -x "$bin" ]] || { echo "error: build it first: cargo build --release --features standalone --bin pianoforte-standalone" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A free display number.
n=99
while [[ -e "/tmp/.X11-unix/X$n" || -e "/tmp/.X$n-lock" ]]; do n=$((n - 1)); done
export DISPLAY=":$n"
Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp > "$work/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do xdpyinfo > /dev/null 2>&1 && break; sleep 0.1; done

export MESA_SHADER_CACHE_DISABLE=true XDG_CACHE_HOME="$work/cache" HOME="$work/home"
mkdir -p "$HOME"
"$bin" --backend dummy --period-size 512 > "$work/standalone.log" 2>&1 &
pids+=($!)

geometry=""
for _ in $(seq 600); do
    if info="$(xwininfo -name pianoforte 2>/dev/null)"; then
        geometry="$info"
        break
    fi
    sleep 0.1
done
[[ -n "$geometry" ]] || { cat "$work/standalone.log"; echo "error: the editor window never appeared" >&2; exit 1; }
# Let the model load and the piano roll fill.
sleep "${PIANOFORTE_SCREENSHOT_WAIT:-10}"
x="$(awk '/Absolute upper-left X/ {print $4}' <<< "$geometry")"
y="$(awk '/Absolute upper-left Y/ {print $4}' <<< "$geometry")"
w="$(awk '/Width:/ {print $2}' <<< "$geometry")"
h="$(awk '/Height:/ {print $2}' <<< "$geometry")"

# Press "Save clip" (its place in the 980x660 layout of src/editor.rs) and look for the file.
xdotool mousemove $((x + 798)) $((y + 379)) click 1
clips="$HOME/Documents/pianoforte clips"
for _ in $(seq 50); do compgen -G "$clips/*.mid" > /dev/null && break; sleep 0.1; done
clip="$(compgen -G "$clips/*.mid" | head -n 1 || true)"
if [[ -z "$clip" ]]; then
    echo "FAIL: pressing Save clip wrote no MIDI file into $clips" >&2
    status=1
elif [[ "$(head -c 4 "$clip")" != "MThd" ]]; then
    echo "FAIL: $clip is not a standard MIDI file" >&2
    status=1
else
    echo "Save clip wrote $(basename "$clip") ($(stat -c %s "$clip") bytes)"
    status=0
fi
sleep 1
"$python" "$root/tests/host/editor_screenshot.py" "$DISPLAY" "$x" "$y" "$w" "$h" "$out" || status=1
if [[ $status -eq 0 ]]; then echo "editor: 1 passed, 0 failed"; else echo "editor: 0 passed, 1 failed"; fi
exit $status
