"""The bundled VST3 in two third-party hosts, rendering offline from Python: DawDreamer (JUCE's
VST3 hosting, MIDI notes in) and Spotify's pedalboard.

Both render at once after loading (DawDreamer: no sleep; pedalboard: initialization_timeout=0)
with the built-in model (the bundle embeds it; PIANOFORTE_SOURCE is removed from the hosts'
environment) and the built-in piano, at 48 kHz:

- Play on, no MIDI in, 15 s: at least 80 % of the 100 ms windows after the first second are above
  -50 dBFS (RMS); two fresh instances give bit-identical audio; so do blocks of 128, 512 and 1024.
- Mode "Continue my playing" (Play on as well: pedalboard has no transport) after a short phrase
  fed as MIDI: the continuation sounds from 1.5 s after the last key release (the engine resumes
  one second after it), and two fresh instances give bit-identical audio.
- "Perform my part" (Play on) with the same phrase fed as MIDI, the part: silent until the
  performance's latency (1.302 s; the part itself is not played), then sounding while the
  performance plays; two fresh instances and another block size give bit-identical audio.

Each host renders each scenario in a child process of its own (this file run as a script), one
fresh plugin instance after another: a crash or hang of a host is a failure with its output, not
the end of the test session. The bundle is target/bundled/pianoforte.vst3 (PIANOFORTE_VST3 names
another); CI builds it (with test hooks) first: without it, or without the hosts' Python packages
(tests/python/requirements.txt), these tests fail, never skip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("PIANOFORTE_VST3", ROOT / "target" / "bundled" / "pianoforte.vst3"))
RATE = 48_000
FREE_SECONDS = 15.0
BLOCKS = [512, 512, 128, 1024]  # two fresh instances at 512, then two other block sizes
WINDOW_S = 0.1
SOUNDING_DBFS = -50.0
SOUNDING_SHARE = 0.8
# A phrase for Continue mode: (key, velocity, start s, held s); an arpeggio, then a chord.
PHRASE = [(60, 70, 0.0, 0.22), (64, 74, 0.25, 0.22), (67, 78, 0.5, 0.22), (72, 84, 0.75, 0.22),
          (67, 76, 1.0, 0.22), (64, 72, 1.25, 0.22), (60, 80, 1.5, 0.6),
          (48, 76, 2.25, 0.75), (55, 72, 2.25, 0.75), (64, 74, 2.25, 0.75)]
LAST_RELEASE_S = max(start + held for _, _, start, held in PHRASE)
CONTINUE_FROM_S = LAST_RELEASE_S + 1.5
CONTINUE_SECONDS = 11.0
PERFORM_LATENCY_S = 1.302
PERFORM_SECONDS = 6.0
CHILD_TIMEOUT_S = 240
HOSTS = ["dawdreamer", "pedalboard"]
SECONDS = {"free": FREE_SECONDS, "continue": CONTINUE_SECONDS, "perform": PERFORM_SECONDS}


# ------------------------------------------------------------------ in the child: one host renders
def _parameter_index(processor, name: str) -> int:
    """DawDreamer: the index of the parameter called ``name``."""
    for p in processor.get_parameters_description():
        if p["name"] == name:
            return int(p["index"])
    names = [p["name"] for p in processor.get_parameters_description()]
    raise SystemExit(f"DawDreamer: the plugin has no parameter {name!r} (it has {names})")


def render_dawdreamer(scenario: str, block: int, seconds: float) -> tuple[np.ndarray, dict]:
    import dawdreamer

    engine = dawdreamer.RenderEngine(RATE, block)
    synth = engine.make_plugin_processor("pianoforte", str(BUNDLE))
    play, mode = _parameter_index(synth, "Play"), _parameter_index(synth, "Mode")
    synth.set_parameter(play, 1.0)  # normalised: On
    synth.set_parameter(mode, 1.0 if scenario == "continue" else 0.0)  # Continue my playing / Free
    synth.set_parameter(_parameter_index(synth, "Perform my part"), 1.0 if scenario == "perform" else 0.0)
    if scenario in ("continue", "perform"):
        for key, velocity, start, held in PHRASE:
            synth.add_midi_note(key, velocity, start, held)
    engine.load_graph([(synth, [])])
    engine.render(seconds)  # at once: no waiting for the plugin to settle
    info = {"play": synth.get_parameter_text(play), "mode": synth.get_parameter_text(mode),
            "outputs": synth.get_num_output_channels()}
    return np.asarray(engine.get_audio(), dtype=np.float32), info


def render_pedalboard(scenario: str, block: int, seconds: float) -> tuple[np.ndarray, dict]:
    import pedalboard
    import pedalboard._pedalboard

    # pedalboard's load_plugin searches 1000 values of every parameter for its Python wrappers.
    # It skips JUCE's MIDI CC proxy parameters ("MIDI CC ..."), not nice-plug's 2080 ("MIDI Ch. 1
    # CC 0" .. "MIDI Ch. 16 Pitch Bend"), which makes a load take about a minute on 2 cores.
    # Skipped like JUCE's: only the Python wrappers change, not what the plugin is given.
    pedalboard._pedalboard.PARAMETER_NAME_REGEXES_TO_IGNORE.add(re.compile(r"MIDI Ch\. \d+ "))
    plugin = pedalboard.load_plugin(str(BUNDLE), initialization_timeout=0)
    plugin.play = True
    plugin.mode = "Continue my playing" if scenario == "continue" else "Free"
    plugin.perform_my_part = scenario == "perform"
    midi = []
    if scenario in ("continue", "perform"):
        for key, velocity, start, held in PHRASE:
            midi += [(bytes([0x90, key, velocity]), start), (bytes([0x80, key, 0]), start + held)]
        midi.sort(key=lambda m: m[1])
    audio = plugin(midi, duration=seconds, sample_rate=RATE, num_channels=2, buffer_size=block)
    info = {"play": str(plugin.play), "mode": str(plugin.mode), "is_instrument": plugin.is_instrument}
    return np.asarray(audio, dtype=np.float32), info


def child(argv: list[str]) -> None:
    """Renders with fresh plugin instances (one per block size given) into OUT/render-I.npy."""
    p = argparse.ArgumentParser()
    p.add_argument("host", choices=HOSTS)
    p.add_argument("scenario", choices=SECONDS)
    p.add_argument("out")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--blocks", type=lambda s: [int(b) for b in s.split(",")], required=True)
    a = p.parse_args(argv)
    render = render_dawdreamer if a.host == "dawdreamer" else render_pedalboard
    infos = []
    for i, block in enumerate(a.blocks):
        audio, info = render(a.scenario, block, a.seconds)
        np.save(os.path.join(a.out, f"render-{i}.npy"), audio)
        infos.append({"block": block, **info})
        with open(os.path.join(a.out, "info.json"), "w") as f:
            json.dump(infos, f)


# ------------------------------------------------------------------ in the test session
class Renders:
    def __init__(self, host: str, scenario: str, blocks: list[int], audio: list[np.ndarray], info: list[dict]):
        self.host, self.scenario, self.blocks, self.audio, self.info = host, scenario, blocks, audio, info

    def describe(self, i: int) -> str:
        return f"{self.host}, {self.scenario}, instance {i + 1} (block {self.blocks[i]}, {self.info[i]})"


_cache: dict[tuple[str, str], Renders] = {}


def rendered(host: str, scenario: str, tmp_path_factory) -> Renders:
    """The host's renders of ``scenario`` (one child process per host and scenario, cached)."""
    if (host, scenario) in _cache:
        return _cache[host, scenario]
    assert BUNDLE.is_dir(), (
        f"{BUNDLE} is missing: build it with `cargo xtask bundle pianoforte --release --features test-hooks` "
        "(tests/run-all.sh does, before these tests)"
    )
    blocks = {"free": BLOCKS, "continue": BLOCKS[:2], "perform": BLOCKS[:3]}[scenario]
    seconds = SECONDS[scenario]
    out = tmp_path_factory.mktemp(f"{host}-{scenario}")
    env = {k: v for k, v in os.environ.items()
           if k not in ("PIANOFORTE_SOURCE", "PIANOFORTE_TEST_PANIC", "PIANOFORTE_TRACE_DIR")}
    command = [sys.executable, __file__, host, scenario, str(out), "--seconds", str(seconds),
               "--blocks", ",".join(map(str, blocks))]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{host} did not finish rendering {scenario} in {CHILD_TIMEOUT_S} s; its output:\n"
                    f"{_text(e.stdout)[-3000:]}\n{_text(e.stderr)[-5000:]}")
    if result.returncode != 0:
        pytest.fail(f"{host} failed rendering {scenario} (exit status {result.returncode}):\n"
                    f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    audio = [np.load(out / f"render-{i}.npy") for i in range(len(blocks))]
    info = json.loads((out / "info.json").read_text())
    _cache[host, scenario] = Renders(host, scenario, blocks, audio, info)
    return _cache[host, scenario]


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def window_levels(audio: np.ndarray) -> np.ndarray:
    """RMS level (dBFS, both channels) of each 100 ms window."""
    n = int(WINDOW_S * RATE)
    frames = audio.shape[1] // n * n
    windows = audio[:, :frames].astype(np.float64).reshape(audio.shape[0], -1, n)
    rms = np.sqrt(np.mean(windows ** 2, axis=(0, 2)))
    return 20 * np.log10(np.maximum(rms, 1e-12))


def check_sounding(r: Renders, i: int, from_s: float, seconds: float) -> None:
    audio = r.audio[i]
    assert audio.ndim == 2 and audio.shape[0] == 2, f"{r.describe(i)}: audio of shape {audio.shape}, expected stereo"
    assert audio.shape[1] >= int(seconds * RATE), f"{r.describe(i)}: {audio.shape[1]} frames for {seconds} s"
    assert np.all(np.isfinite(audio)), f"{r.describe(i)}: NaN or infinite samples"
    levels = window_levels(audio[:, : int(seconds * RATE)])[int(round(from_s / WINDOW_S)):]
    share = float(np.mean(levels > SOUNDING_DBFS))
    peak = 20 * np.log10(max(float(np.max(np.abs(audio))), 1e-12))
    first = next((k * WINDOW_S for k, level in enumerate(window_levels(audio)) if level > SOUNDING_DBFS), None)
    assert share >= SOUNDING_SHARE, (
        f"{r.describe(i)}: {share:.0%} of the 100 ms windows from {from_s:.2f} s to {seconds:.0f} s are above "
        f"{SOUNDING_DBFS:.0f} dBFS (want >= {SOUNDING_SHARE:.0%}); peak {peak:.1f} dBFS, first sounding window "
        f"at {first} s"
    )


def difference(r: Renders, i: int, j: int, seconds: float) -> str | None:
    """None if renders ``i`` and ``j`` are bit-identical over ``seconds``, else how they differ."""
    n = int(seconds * RATE)
    a, b = r.audio[i][:, :n], r.audio[j][:, :n]
    if a.shape != b.shape:
        return f"{r.describe(i)} vs {r.describe(j)}: shapes {a.shape} and {b.shape}"
    if np.array_equal(a, b):
        return None
    differ = np.flatnonzero(np.any(a != b, axis=0))
    return (f"{r.describe(i)} and {r.describe(j)} differ: {len(differ)} of {n} frames, the first at "
            f"{differ[0] / RATE:.4f} s (frame {differ[0]}), the largest difference {np.max(np.abs(a - b)):.3g}; "
            f"peaks {np.max(np.abs(a)):.3g} and {np.max(np.abs(b)):.3g}")


def check_identical(r: Renders, pairs: list[tuple[int, int]], seconds: float) -> None:
    problems = [d for i, j in pairs if (d := difference(r, i, j, seconds))]
    if problems:
        pytest.fail("\n".join(problems))


@pytest.mark.parametrize("host", HOSTS)
def test_play_sounds_at_once_without_midi(host, tmp_path_factory):
    r = rendered(host, "free", tmp_path_factory)
    for i in range(len(r.blocks)):
        check_sounding(r, i, 1.0, FREE_SECONDS)


@pytest.mark.parametrize("host", HOSTS)
def test_play_is_identical_in_two_fresh_instances(host, tmp_path_factory):
    r = rendered(host, "free", tmp_path_factory)
    check_sounding(r, 0, 1.0, FREE_SECONDS)  # two silent renders are identical too
    check_identical(r, [(0, 1)], FREE_SECONDS)


@pytest.mark.parametrize("host", HOSTS)
def test_play_is_identical_at_any_block_size(host, tmp_path_factory):
    r = rendered(host, "free", tmp_path_factory)
    check_sounding(r, 0, 1.0, FREE_SECONDS)
    check_identical(r, [(0, i) for i in range(2, len(r.blocks))], FREE_SECONDS)


@pytest.mark.parametrize("host", HOSTS)
def test_continue_sounds_after_the_phrase(host, tmp_path_factory):
    r = rendered(host, "continue", tmp_path_factory)
    for i in range(len(r.blocks)):
        check_sounding(r, i, CONTINUE_FROM_S, CONTINUE_SECONDS)


@pytest.mark.parametrize("host", HOSTS)
def test_continue_is_identical_in_two_fresh_instances(host, tmp_path_factory):
    r = rendered(host, "continue", tmp_path_factory)
    check_sounding(r, 0, CONTINUE_FROM_S, CONTINUE_SECONDS)
    check_identical(r, [(0, 1)], CONTINUE_SECONDS)


@pytest.mark.parametrize("host", HOSTS)
def test_perform_my_part_plays_the_part_a_latency_later_and_not_the_part_itself(host, tmp_path_factory):
    r = rendered(host, "perform", tmp_path_factory)
    for i in range(len(r.blocks)):
        levels = window_levels(r.audio[i])
        before = levels[: int((PERFORM_LATENCY_S - 0.2) / WINDOW_S)]
        assert np.all(before <= SOUNDING_DBFS), (
            f"{r.describe(i)}: sound before the performance's latency (the part itself played?): "
            f"{np.round(before, 1).tolist()}"
        )
        check_sounding(r, i, PERFORM_LATENCY_S + 0.1, PERFORM_LATENCY_S + LAST_RELEASE_S)


@pytest.mark.parametrize("host", HOSTS)
def test_perform_my_part_is_identical_in_fresh_instances_and_at_another_block_size(host, tmp_path_factory):
    r = rendered(host, "perform", tmp_path_factory)
    check_sounding(r, 0, PERFORM_LATENCY_S + 0.1, PERFORM_LATENCY_S + LAST_RELEASE_S)
    check_identical(r, [(0, 1), (0, 2)], PERFORM_SECONDS)


if __name__ == "__main__":
    child(sys.argv[1:])
