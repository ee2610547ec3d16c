#!/usr/bin/env bash
# Dragging a clip out of the editor (XDND, src/plugin/drag/x11.rs) into real X11 windows, under
# Xvfb: the standalone build plays the synthetic test pattern through its dummy backend (92 BPM,
# 3/4); xdotool presses the editor's "drag me into your DAW" handle and moves the pointer.
#  1. onto a GTK 3 drop target: it receives one file:// URI; the file is a MIDI clip of what
#     was played, on the host's grid (tests/host/check_clip.py, mido and pretty_midi), written
#     before the drag took the pointer;
#  2. onto a window that takes no drops: nothing is dropped, the pointer is free after release;
#  3. onto a window that says it takes drops but never answers: released there, the drag ends
#     (XdndLeave) and the pointer is free;
#  4. the same, holding the button: the drag's time limit ends it and frees the pointer while
#     the button is still down;
#  5. Perform my part: a flat MIDI part dragged from a GTK 3 drag source (as a file manager or a
#     DAW drags it) and dropped on the editor is performed, saved as a clip with every note of
#     the part, no longer flat, on the part's tempo and meter, and played in place of the pattern
#     (tests/host/check_performed.py).
#
# usage: tests/host/drag-drop.sh PYTHON [SHOT.png]
#   PYTHON: the trainer's environment (mido, pretty_midi, Pillow); SHOT.png: also save a picture
#   of the drag handle and the clip list after the drop (docs/drag.png is one).
# Needs tests/host/setup-hosts.sh and
#   cargo build --release --features standalone,test-hooks --bin pianoforte-standalone
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${1:?usage: drag-drop.sh PYTHON [SHOT.png]}"
shot="${2:-}"
bin="$root/target/release/pianoforte-standalone"
[[ -x "$bin" ]] || { echo "error: build it first: cargo build --release --features standalone,test-hooks --bin pianoforte-standalone" >&2; exit 1; }
targets=(/usr/bin/python3 "$root/tests/host/drop_target.py")
bpm=92 num=3 den=4 limit=4

source "$root/tests/host/lib.sh"
start_xvfb
export PIANOFORTE_SOURCE=synthetic PIANOFORTE_TRACE_DIR="$work/trace" PIANOFORTE_DRAG_LOG="$work/drag.log"
export PIANOFORTE_DRAG_LIMIT_S=$limit
mkdir -p "$PIANOFORTE_TRACE_DIR"
start_standalone --tempo $bpm --timesig-num $num --timesig-denom $den

# The drop targets, right of the editor (no window manager: they stay where they are put).
start_target() {  # MODE X Y -> its output file
    "${targets[@]}" "$1" "$2" "$3" > "$work/$1.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q '^READY' "$work/$1.out" && return; sleep 0.1; done
    cat "$work/$1.out"; echo "error: the $1 target did not start" >&2; exit 1
}
start_target gtk 1010 40
start_target plain 1010 300
start_target silent 1010 560

wait_for_editor
for _ in $(seq 100); do grep -q '^handle' "$PIANOFORTE_DRAG_LOG" 2>/dev/null && break; sleep 0.1; done
read -r _ hx hy hw hh < <(grep '^handle' "$PIANOFORTE_DRAG_LOG" | tail -n 1)
hx="$(awk -v w="$x" -v h="$hx" 'BEGIN { printf "%d", w + h + 60 }')"
hy="$(awk -v w="$y" -v h="$hy" -v s="$hh" 'BEGIN { printf "%d", w + h + s / 2 }')"
# Let the take grow past the selection (the last 30 s): the clip then starts mid-song, at the
# bar line before its first note, with silence up to the cut.
sleep "${PIANOFORTE_DRAG_WAIT:-36}"

passed=0 failed=0
check() {  # DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@"; then echo "ok: $what"; passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}
ends() { grep -c '^end ' "$PIANOFORTE_DRAG_LOG" || true; }
wait_end() {  # COUNT SECONDS: waits until the drag log has COUNT ends
    for _ in $(seq $(($2 * 10))); do (($(ends) >= $1)) && return 0; sleep 0.1; done
    return 1
}
last_end() { grep '^end ' "$PIANOFORTE_DRAG_LOG" | tail -n 1; }
end_is() {  # N KIND: the Nth drag (and no later one) ended so
    [[ "$(ends)" -eq $1 ]] && grep '^end ' "$PIANOFORTE_DRAG_LOG" | sed -n "$1p" | grep -q "^end $2"
}
pointer_free() { [[ "$("${targets[@]}" grab)" == "GRAB free" ]]; }
pointer_taken() { [[ "$("${targets[@]}" grab)" == GRAB\ taken* ]]; }
drag_to() {  # X Y: press on the handle and move there in steps (the button stays down)
    xdotool mousemove "$hx" "$hy"
    sleep 0.3
    xdotool mousedown 1
    sleep 0.2
    local i
    for i in 1 2 3 4 5 6 7 8; do
        xdotool mousemove $((hx + ($1 - hx) * i / 8)) $((hy + ($2 - hy) * i / 8))
        sleep 0.1
    done
    sleep 0.5
}

# 1. A GTK drop target.
drag_to 1130 130
check "the pointer is ours while dragging" pointer_taken
xdotool mouseup 1
wait_end 1 10 || true
for _ in $(seq 50); do grep -q '^URI' "$work/gtk.out" && break; sleep 0.1; done
sleep 0.5
uris="$(grep '^URI' "$work/gtk.out" || true)"
check "the GTK target received one file:// URI ($(wc -l <<< "$uris") line(s): ${uris:-none})" \
    test "$(grep -c '^URI file://' <<< "$uris")" -eq 1
check "the drag ended with a drop ($(last_end))" end_is 1 Dropped
clip="$("${python}" -c 'import sys, urllib.parse; print(urllib.parse.unquote(urllib.parse.urlparse(sys.argv[1]).path))' "$(head -n 1 <<< "$uris" | cut -d' ' -f2)")"
check "the clip exists: $clip" test -f "$clip"
check "the clip is MIDI with the performance's notes on the host's grid" \
    "$python" "$root/tests/host/check_clip.py" "$clip" "$PIANOFORTE_TRACE_DIR" $bpm $num $den
check "the pointer is free after the drop" pointer_free
check "the target asked for text/uri-list and got it" grep -q 'answered true' "$PIANOFORTE_DRAG_LOG"
# Issue 18: a slow clips folder must not freeze everyone's input under our grab.
first_step() { grep -m 1 -o -E '^(written|grabbed)' "$PIANOFORTE_DRAG_LOG"; }
check "the clip was written before the pointer was taken (first: $(first_step))" test "$(first_step)" = written
if [[ -n "$shot" ]]; then
    sleep 0.5
    "$python" -c 'import sys; from PIL import ImageGrab
x, y = int(sys.argv[2]), int(sys.argv[3])
ImageGrab.grab(xdisplay=sys.argv[1]).convert("RGB").crop((x + 620, y + 340, x + 980, y + 560)).save(sys.argv[4])' \
        "$DISPLAY" "$x" "$y" "$shot"
    echo "saved $shot"
fi

# 2. A window that takes no drops.
drag_to 1130 390
xdotool mouseup 1
check "released over a window without XDND: no drop ($(wait_end 2 5; last_end))" end_is 2 NoTarget
check "the pointer is free" pointer_free
check "the GTK target got nothing more" test "$(grep -c '^URI' "$work/gtk.out")" -eq 1

# 3. A target that never answers: released over it.
drag_to 1130 650
xdotool mouseup 1
check "released over a silent target: it is left ($(wait_end 3 5; last_end))" end_is 3 Refused
check "the silent target got XdndEnter, XdndPosition and XdndLeave, no XdndDrop" \
    bash -c "grep -q 'MSG XdndEnter' '$work/silent.out' && grep -q 'MSG XdndPosition' '$work/silent.out' && grep -q 'MSG XdndLeave' '$work/silent.out' && ! grep -q 'MSG XdndDrop' '$work/silent.out'"
check "the pointer is free" pointer_free

# 4. A target that never answers, the button held: the time limit ends the drag.
started=$SECONDS
drag_to 1130 650
check "the pointer is ours while holding" pointer_taken
wait_end 4 $((limit + 5)) || true
took=$((SECONDS - started))
timed_out=no
end_is 4 TimedOut && ((took <= limit + 3)) && timed_out=yes
check "the time limit ended the drag within $((limit + 3)) s ($took s: $(last_end))" test $timed_out = yes
check "the pointer is free while the button is still down" pointer_free
xdotool mouseup 1
sleep 0.5
check "the editor still runs" kill -0 "$standalone_pid"

# 5. Perform my part: a part dropped on the editor from a GTK drag source.
part="$work/my part.mid"
"$python" "$root/tests/host/check_performed.py" make "$part"
"${targets[@]}" source 1010 40 "$part" > "$work/source.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^READY' "$work/source.out" && break; sleep 0.1; done
xdotool mousemove 1130 130
sleep 0.3
xdotool mousedown 1
sleep 0.2
ex=$((x + w / 2)) ey=$((y + h / 2))
for i in 1 2 3 4 5 6 7 8 9 10; do
    xdotool mousemove $((1130 + (ex - 1130) * i / 10)) $((130 + (ey - 130) * i / 10))
    sleep 0.1
done
sleep 0.5
xdotool mouseup 1
for _ in $(seq 100); do grep -q '^dropped' "$PIANOFORTE_DRAG_LOG" && break; sleep 0.1; done
check "the editor took the part dropped on it ($(grep '^dropped' "$PIANOFORTE_DRAG_LOG" || echo none))" \
    grep -q "^dropped $part" "$PIANOFORTE_DRAG_LOG"
clips_dir="$(dirname "$clip")"
performed=""
for _ in $(seq 100); do
    performed="$(ls "$clips_dir"/"my part, performed"*.mid 2> /dev/null | head -n 1 || true)"
    [[ -n "$performed" ]] && break
    sleep 0.1
done
check "the performance was saved as a clip (${performed:-none})" test -f "$performed"
# The part lasts about 8 s: let it be played.
sleep 10
if [[ -n "$shot" ]]; then
    "$python" -c 'import sys; from PIL import ImageGrab
x, y, w, h = map(int, sys.argv[2:6])
ImageGrab.grab(xdisplay=sys.argv[1]).convert("RGB").crop((x, y, x + w, y + h)).save(sys.argv[6])' \
        "$DISPLAY" "$x" "$y" "$w" "$h" "${shot%.png}-perform.png"
    echo "saved ${shot%.png}-perform.png"
fi
check "the clip has every note of the part, performed, and the engine played it" \
    "$python" "$root/tests/host/check_performed.py" check "$part" "$performed" "$PIANOFORTE_TRACE_DIR"
check "the editor still runs" kill -0 "$standalone_pid"

echo "--- drag log"; cat "$PIANOFORTE_DRAG_LOG"
if ((failed)); then for t in gtk plain silent source; do echo "--- $t target"; cat "$work/$t.out"; done; fi
echo "drag-drop: $passed passed, $failed failed"
((failed == 0))
