# The standalone build under Xvfb, for the scripts that drive its editor (editor-screenshot.sh,
# drag-drop.sh): a private X display, the standalone on the dummy audio backend, where its window
# is, and a cleanup that stops all of it. Source it after `set -euo pipefail` and after setting
# `bin`; it sets `work` (a scratch folder, removed on exit), DISPLAY and HOME.

work="$(mktemp -d)"
pids=()
cleanup() {
    xdotool mouseup 1 2> /dev/null || true # a test that fails mid-drag leaves the button down
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2> /dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

start_xvfb() { # on the highest free display number up to 99; HOME and caches go into $work
    local n=99
    while [[ -e "/tmp/.X11-unix/X$n" || -e "/tmp/.X$n-lock" ]]; do n=$((n - 1)); done
    export DISPLAY=":$n"
    Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp > "$work/xvfb.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 50); do xdpyinfo > /dev/null 2>&1 && break; sleep 0.1; done
    export MESA_SHADER_CACHE_DISABLE=true XDG_CACHE_HOME="$work/cache" HOME="$work/home"
    mkdir -p "$HOME"
}

start_standalone() { # ARGS...: sets standalone_pid; the log is $work/standalone.log
    "$bin" --backend dummy --period-size 512 "$@" > "$work/standalone.log" 2>&1 &
    standalone_pid=$!
    pids+=($!)
}

wait_for_editor() { # sets x, y, w, h: the editor window's place and size on the screen
    local info=""
    for _ in $(seq 600); do
        info="$(xwininfo -name pianoforte 2> /dev/null)" && break
        info=""
        sleep 0.1
    done
    [[ -n "$info" ]] || { cat "$work/standalone.log"; echo "error: the editor window never appeared" >&2; exit 1; }
    x="$(awk '/Absolute upper-left X/ {print $4}' <<< "$info")"
    y="$(awk '/Absolute upper-left Y/ {print $4}' <<< "$info")"
    w="$(awk '/Width:/ {print $2}' <<< "$info")"
    h="$(awk '/Height:/ {print $2}' <<< "$info")"
}
