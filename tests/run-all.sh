#!/usr/bin/env bash
# Every test of the project: Rust unit, property and integration tests (MAESTRO round trip,
# bad-input corpus), then the trainer's Python tests on token files made by our own builder.
# Installs what a fresh machine lacks (the Python environment) on the way.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

# How long each stage took, printed at the end (CI allows 90 minutes on 2 cores).
timings=()
stage_started=$SECONDS
stage_name="python environment"
stage() {
    timings+=("$(printf '%5d s  %s' $((SECONDS - stage_started)) "$stage_name")")
    stage_name="$1" stage_started=$SECONDS
    echo "== $1"
}
# The command that failed, said last: CI keeps the end of a long log.
failed_command=""
trap 'failed_command="$BASH_COMMAND (exit $?, ${SECONDS} s in)"' ERR
report() {
    timings+=("$(printf '%5d s  %s' $((SECONDS - stage_started)) "$stage_name")")
    echo "== time per stage (total $SECONDS s)"
    printf '%s\n' "${timings[@]}"
    if [[ -n "$failed_command" ]]; then
        echo "== FAILED in stage \"$stage_name\": $failed_command"
    fi
}
trap report EXIT

python="$(bash tests/python-env.sh | tail -n 1)"
# The Rust tests that compare with the trainer must find it, and must not skip.
export PIANOFORTE_PYTHON="$python" PIANOFORTE_REQUIRE_PYTHON=1
export PYTHONPATH="$PWD/models${PYTHONPATH:+:$PYTHONPATH}"

stage "lint: cargo fmt, clippy, ruff"
# Every crate of the lock file (the debug-only ones too) in one step, retried on a flaky registry.
CARGO_NET_RETRY=10 cargo fetch --locked
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo clippy --release --all-targets --features test-hooks -- -D warnings
"$python" -m ruff check --config models/pyproject.toml models benches tests/python

stage "Rust tests (codec, engine, piano, command line: no plugin)"
cargo xtask onnxruntime
cargo xtask samples
cargo build --release --bins
cargo test --release --workspace
stage "plugin unit tests"
cargo test --release --lib --features plugin plugin::

stage "the plugin in real hosts: CLAP (clack-host), VST3 (Ardour 7), the editor (Xvfb)"
bash tests/host/setup-hosts.sh
# The host tests use a bundle with the test hooks (src/plugin/worker.rs); `cargo xtask install`
# builds the shipped one without them.
cargo xtask bundle pianoforte --release --features test-hooks
cargo build --release -p pianoforte-clap-host
./target/release/pianoforte-clap-host --suite full
./target/release/pianoforte-clap-host --suite full --source synthetic --require-density
./target/release/pianoforte-clap-host --suite no-runtime
# A panic injected into the engine thread (test builds only): notes end, the host runs on.
./target/release/pianoforte-clap-host --suite panic
# Issue 18: a host that refuses MIDI out, renders faster than real time without declaring it,
# bounces while loading; load, play, destroy and unload the library 50 times (no thread left).
./target/release/pianoforte-clap-host --suite bounce
# Issue 19: Song tempo at 84 and 126 BPM, a tempo ramp and a tempo change, offline: on grid and on
# beat figures (asserted when the model hears beats, card format 3), reproducible, Free differs.
./target/release/pianoforte-clap-host --suite tempo
# Issue 20: Perform my part, live: the track's part performed LATENCY behind (reported), every
# note once, the same offline, at another block size and in real time.
./target/release/pianoforte-clap-host --suite perform
./target/release/pianoforte-clap-host --suite unload
# Debug build with nice-plug's assert_process_allocs: any allocation in process() aborts the host.
# Line tables only and no incremental cache: 0.9 GB on disk instead of 1.6 GB.
CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=line-tables-only \
    cargo build -p pianoforte --lib --features assert-process-allocs,test-hooks
./target/release/pianoforte-clap-host --plugin target/debug/libpianoforte.so --suite quick
bash tests/host/ardour-vst3.sh
cargo build --release --features standalone,test-hooks --bin pianoforte-standalone
mkdir -p target/test-artifacts
bash tests/host/editor-screenshot.sh "$python" target/test-artifacts/editor.png
# Dragging a clip out of the editor into a GTK drop target (XDND), under Xvfb.
bash tests/host/drag-drop.sh "$python" target/test-artifacts/drag.png

stage "trainer (Python) tests"
# A small real dataset (a few MAESTRO performances of both splits) for the trainer's tests.
tokens="$(mktemp -d)"
trap 'rm -rf "$tokens"; report' EXIT
maestro="$(cd ../shared/data/maestro-v2.0.0 && pwd)"
{
    head -n 1 "$maestro/maestro-v2.0.0-train-validation.csv"
    grep -m 6 ',train,' "$maestro/maestro-v2.0.0-train-validation.csv"
    grep -m 3 ',validation,' "$maestro/maestro-v2.0.0-train-validation.csv"
} | sed -E "s#,(20[0-9]{2}/)#,$maestro/\1#" > "$tokens/small.csv"
./target/release/pianoforte dataset "$tokens/small.csv" --out "$tokens/data"

PIANOFORTE_TOKENS="$tokens/data" PIANOFORTE_BIN="$PWD/target/release/pianoforte" \
    "$python" -m pytest -q models/tests tests/python 2>&1 | tee "$tokens/pytest.log"
