#!/usr/bin/env bash
# The pianoforte VST3 in a real host: Ardour 7, headless (ardour7-lua, dummy backend), on a MIDI
# track with a Lua capture processor after the plugin. Runs at 48 kHz / 256 and 44.1 kHz / 1024
# samples, in real time (about 30 s each), and checks the captured MIDI against the engine's trace
# (tests/host/ardour/check_capture.py).
#
# usage: tests/host/ardour-vst3.sh [path/to/pianoforte.vst3]   (default: target/bundled/)
# Needs tests/host/setup-hosts.sh (Ardour) and `cargo xtask bundle pianoforte --release`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bundle="${1:-$root/target/bundled/pianoforte.vst3}"
here="$root/tests/host/ardour"
[[ -d "$bundle" ]] || { echo "error: $bundle does not exist; run cargo xtask bundle pianoforte --release" >&2; exit 1; }
command -v ardour7-lua >/dev/null || { echo "error: ardour7-lua is missing; run tests/host/setup-hosts.sh" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Ardour's configuration, caches and scripts live in a throwaway home.
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_CACHE_HOME="$work/home/.cache" XDG_DATA_HOME="$work/home/.local/share"
mkdir -p "$XDG_CONFIG_HOME/ardour7/scripts" "$work/vst3"
cp -r "$bundle" "$work/vst3/"
# Ardour trusts a plugin cache only when it is newer (in whole seconds) than the plugin binary.
find "$work/vst3" -exec touch -d '1 hour ago' {} +
cp "$here/pianoforte_capture.lua" "$XDG_CONFIG_HOME/ardour7/scripts/"
cat > "$XDG_CONFIG_HOME/ardour7/config" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Ardour>
  <Config>
    <Option name="hide-dummy-backend" value="0"/>
    <Option name="plugin-path-vst3" value="$work/vst3"/>
  </Config>
</Ardour>
EOF
# ardour7-lua reads only the plugin cache: scan the bundle first.
LD_LIBRARY_PATH=/usr/lib/ardour7 timeout 120 /usr/lib/ardour7/ardour-vst3-scanner -f "$work/vst3/$(basename "$bundle")" > "$work/scan.log" 2>&1 \
    || { cat "$work/scan.log"; echo "error: the VST3 scanner failed" >&2; exit 1; }

passed=0
failed=0
for config in "48000 256" "44100 1024"; do
    read -r rate buffer <<< "$config"
    echo "== Ardour 7, VST3, ${rate} Hz, ${buffer}-sample buffers: roll, jump back while rolling, roll, stop"
    mkdir -p "$work/trace-$rate"
    if PIANOFORTE_TRACE_DIR="$work/trace-$rate" PF_RATE="$rate" PF_BUFFER="$buffer" PF_SESSION="$work/session-$rate" \
        timeout 300 ardour7-lua "$here/session.lua" > "$work/capture-$rate.txt" 2> "$work/ardour-$rate.log" \
        && PF_BUFFER="$buffer" python3 "$here/check_capture.py" "$work/capture-$rate.txt" "$work/trace-$rate" "$rate"; then
        echo "  ok"
        passed=$((passed + 1))
    else
        echo "  FAILED; Ardour said:"
        grep -v '^\[Info\]' "$work/ardour-$rate.log" | tail -n 20 || true
        grep -v '^EV' "$work/capture-$rate.txt" | tail -n 20 || true
        failed=$((failed + 1))
    fi
done
echo "ardour vst3: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
