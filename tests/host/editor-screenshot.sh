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

source "$root/tests/host/lib.sh"
start_xvfb
start_standalone
wait_for_editor
# Let the model load and the piano roll fill.
sleep "${PIANOFORTE_SCREENSHOT_WAIT:-10}"

# Press "Save clip" (its place in the 980x660 layout of src/plugin/editor.rs) and look for the file.
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
