#!/usr/bin/env python3
"""MIDI-to-token throughput: pianoforte (Rust) against a pretty_midi encoder and symusic.

Run from the repository root:

    ~/.cache/pianoforte/venv/bin/python benches/encode_peers.py [--limit N] [--pm-every K]

All tools see the same files, in the same process run, with the bytes preloaded in memory;
everything is single-threaded. File reading is timed separately (by the Rust bench).

- pretty_midi: `pretty_midi.PrettyMIDI(io.BytesIO(data))`, then the Performance-RNN-style
  event list of the pianoforte language (docs/spec/events.json: 10 ms grid, 32 velocity bins,
  CC64 pedal, time shifts of up to 1 s), the way the popular Python re-implementations do it. One pass (it is slow);
  `--pm-every K` encodes only every K-th file (a fixed, deterministic subset).
- symusic: `Score.from_midi(data, ttype="second")` (parse alone, no tokens), and `ttype="tick"`.
- pianoforte: `cargo bench --bench encode -- --list FILE --reps N --per-file` (its JSON lines).

Prints a markdown table and writes it into docs/benchmarks.md under "## MIDI to tokens (codec)".
The pretty_midi encoder's tokens are checked against the Rust tokens file by file (count and a
position-weighted checksum), to show the two encoders do the same work.
"""

import argparse
import datetime
import io
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pretty_midi
import symusic

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT / ".." / "shared" / "data" / "maestro-v2.0.0" / "maestro-v2.0.0-train-validation.csv"
DOC = ROOT / "docs" / "benchmarks.md"
sys.path.insert(0, str(ROOT / "models"))
from pianoforte_train import vocab as V  # noqa: E402

HEADING = "## MIDI to tokens (codec)"
INTRO = (
    "# Benchmarks\n\n"
    "Tables produced by the commands shown; compare ratios within one run, the machine is shared and noisy.\n"
)

# The pianoforte event language, from the spec the Rust codec writes.
MIN_PITCH, MAX_PITCH = V.MIN_PITCH, V.MAX_PITCH
NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY = V.NOTE_ON, V.NOTE_OFF, V.TIME_SHIFT, V.VELOCITY
PEDAL_DOWN, PEDAL_UP = V.PEDAL_DOWN, V.PEDAL_UP
MAX_SHIFT = V.MAX_SHIFT_STEPS


def to_step(seconds):
    # Rust's f64::round (half away from zero); times are never negative here.
    return math.floor(seconds * V.STEPS_PER_SECOND + 0.5)


def velocity_bin(v):
    return V.BIN_OF_MIDI[v]


def pretty_midi_encode(data):
    """The typical Python re-implementation: pretty_midi, then a Performance-RNN event list."""
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    notes = [n for inst in pm.instruments for n in inst.notes if MIN_PITCH <= n.pitch <= MAX_PITCH]
    notes.sort(key=lambda n: (n.start, n.pitch))
    ccs = sorted(
        (cc for inst in pm.instruments for cc in inst.control_changes if cc.number == 64),
        key=lambda cc: cc.time,
    )
    slots = []  # (step, rank, pitch, seq, after_on, id or None for pedal, pedal state)
    for seq, n in enumerate(notes):
        on, off = to_step(n.start), to_step(max(n.end, n.start))
        slots.append((on, 2, n.pitch, seq, False, velocity_bin(n.velocity), None))
        if off == on:
            slots.append((on, 2, n.pitch, seq, True, -1, None))
        else:
            slots.append((off, 0, n.pitch, seq, False, -1, None))
    down = False
    seq = 0
    for cc in ccs:
        if (cc.value >= 64) != down:
            down = cc.value >= 64
            slots.append((to_step(cc.time), 1, 0, seq, False, -1, down))
            seq += 1
    slots.sort(key=lambda s: s[:5])

    ids = []
    now, current_bin, pedal = 0, None, False
    for step, _rank, pitch, _, _, vbin, pedal_state in slots:
        gap = max(step, 0) - now
        while gap > 0:
            s = min(gap, MAX_SHIFT)
            ids.append(TIME_SHIFT + s - 1)
            gap -= s
        now = max(now, step)
        if pedal_state is not None:
            if pedal_state != pedal:
                pedal = pedal_state
                ids.append(PEDAL_DOWN if pedal else PEDAL_UP)
        elif vbin >= 0:
            if vbin != current_bin:
                ids.append(VELOCITY + vbin)
                current_bin = vbin
            ids.append(NOTE_ON + pitch - MIN_PITCH)
        else:
            ids.append(NOTE_OFF + pitch - MIN_PITCH)
    return ids


def checksum(ids):
    """sum((i + 1) * id) mod 2^64, the same as the Rust bench's per-file `wsum`."""
    a = np.asarray(ids, dtype=np.uint64)
    return int(np.sum(a * np.arange(1, len(a) + 1, dtype=np.uint64), dtype=np.uint64))


def maestro_paths(csv_path):
    import csv

    with open(csv_path, newline="") as f:
        return [str(Path(csv_path).parent / row["midi_filename"]) for row in csv.DictReader(f)]


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def timed_passes(reps, fn):
    """Median wall and CPU (this thread) seconds of `reps` runs of `fn`."""
    wall, cpu = [], []
    for _ in range(reps):
        c, t = time.thread_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", default=str(DEFAULT_CSV), help="MAESTRO-style CSV (midi_filename column)")
    ap.add_argument("--limit", type=int, help="only the first N files of the CSV (quick runs)")
    ap.add_argument("--pm-every", type=int, default=1, help="pretty_midi encodes every K-th file only")
    ap.add_argument("--reps", type=int, default=5, help="repetitions for symusic and Rust (median)")
    ap.add_argument("--no-write", action="store_true", help="print the table, leave docs/ alone")
    args = ap.parse_args()
    command = "~/.cache/pianoforte/venv/bin/python benches/encode_peers.py" + "".join(
        " " + shlex.quote(a) for a in sys.argv[1:]
    )

    paths = maestro_paths(args.csv)
    if args.limit:
        paths = paths[: args.limit]
    load_start = loadavg()
    started = datetime.datetime.now(datetime.UTC)
    print(f"{len(paths)} files; load average {load_start}", file=sys.stderr)

    # 1. pianoforte (Rust), in its own process on the same list; it preloads the bytes too.
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(paths) + "\n")
        list_file = f.name
    subprocess.run(["cargo", "bench", "--bench", "encode", "--no-run"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stages = "read_files,midly_events,scan_prototype,read,encode,to_ids,read_encode_ids"
    rust_cmd = ["cargo", "bench", "--bench", "encode", "--", "--list", list_file, "--reps", str(args.reps),
                "--only", stages, "--per-file"]
    print("running " + " ".join(rust_cmd), file=sys.stderr)
    out = subprocess.run(rust_cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    os.unlink(list_file)
    rust, per_file = {}, {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            if r["stage"] == "per_file":
                per_file[r["path"]] = r
            else:
                rust[r["stage"]] = r

    # Bytes preloaded for the Python tools.
    data = [open(p, "rb").read() for p in paths]
    total_bytes = sum(map(len, data))
    assert total_bytes == rust["read"]["bytes"], "the Rust bench read different files"

    # 2. symusic: parse alone.
    def symusic_pass(ttype):
        def run():
            for d in data:
                symusic.Score.from_midi(d, ttype=ttype)
        return run

    symusic_pass("second")()  # warm-up (imports, allocator)
    sym = {}
    for ttype in ("second", "tick"):
        print(f"symusic ttype={ttype}", file=sys.stderr)
        sym[ttype] = timed_passes(args.reps, symusic_pass(ttype))

    # 3. pretty_midi encoder: one pass over every K-th file, per-file times summed.
    pm_idx = list(range(0, len(paths), max(1, args.pm_every)))
    pm_seconds, pm_cpu, pm_bytes, pm_events, matches, mismatched = 0.0, 0.0, 0, 0, 0, []
    print(f"pretty_midi over {len(pm_idx)} files", file=sys.stderr)
    wall = time.perf_counter()
    for i in pm_idx:
        c, t = time.thread_time(), time.perf_counter()
        ids = pretty_midi_encode(data[i])
        pm_seconds += time.perf_counter() - t
        pm_cpu += time.thread_time() - c
        pm_bytes += len(data[i])
        pm_events += len(ids)
        ref = per_file.get(paths[i], {})
        if ref.get("events") == len(ids) and ref.get("wsum") == str(checksum(ids)):
            matches += 1
        else:
            mismatched.append((paths[i], ref.get("events"), len(ids)))
    print(f"pretty_midi took {time.perf_counter() - wall:.1f} s wall", file=sys.stderr)
    load_end = loadavg()

    # The table. Rates and ratios use CPU time (see the notes); pretty_midi may run on a subset,
    # so ratios are of throughput (MB per CPU second).
    rows = []

    def row(tool, stage, files, nbytes, wall, cpu):
        rows.append(dict(tool=tool, stage=stage, files=files, bytes=nbytes, wall=wall, cpu=cpu,
                         mbps=nbytes / 1e6 / cpu, fps=files / cpu, wall_mbps=nbytes / 1e6 / wall))

    def rust_row(stage, label):
        x = rust[stage]
        row("pianoforte (Rust)", label, x["files"], x["bytes"], x["seconds"], x["cpu_seconds"])

    rust_row("read_files_first", "`fs::read` of the files, first pass (page cache not dropped)")
    rust_row("read_files", "`fs::read` of the files, warm page cache")
    pm_label = "parse + tokens" + (f" (every {args.pm_every}th file)" if args.pm_every > 1 else "")
    row(f"pretty_midi {pretty_midi.__version__} + Python encoder", pm_label, len(pm_idx), pm_bytes, pm_seconds, pm_cpu)
    sym_version = f"symusic {symusic.__version__}"
    row(sym_version, '`Score.from_midi(ttype="second")`, parse only', len(data), total_bytes, *sym["second"])
    row(sym_version, '`Score.from_midi(ttype="tick")`, parse only', len(data), total_bytes, *sym["tick"])
    rust_row("read", "`midi_io::read` (bytes to Performance)")
    rust_row("read_encode_ids", "`midi_io::read` + `codec::encode_ids` (tokens)")
    pm, sy = rows[2], rows[3]

    lines = [
        "| tool | stage | files | MB | wall s | CPU s | files/s | MB/s | x pretty_midi | x symusic parse |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in rows:
        lines.append(
            f"| {x['tool']} | {x['stage']} | {x['files']} | {x['bytes'] / 1e6:.1f} | {x['wall']:.3f} "
            f"| {x['cpu']:.3f} | "
            f"{x['fps']:,.0f} | {x['mbps']:,.1f} | {x['mbps'] / pm['mbps']:,.1f} | {x['mbps'] / sy['mbps']:.2f} |"
        )
    full = rows[-1]
    breakdown = [
        "| Rust stage (same run, same files) | CPU s | share of the full path | MB/s |",
        "|---|---:|---:|---:|",
    ]
    for stage, label in [
        ("midly_events", "`midly::parse` + walk every event (for comparison; no longer in the path)"),
        ("scan_prototype", "a minimal hand-written SMF walk over every event (bench-only prototype, not used)"),
        ("read", "`midi_io::read` (chunks by midly, events decoded by hand, tempo map, note pairing)"),
        ("encode", "`codec::encode` alone (on performances read beforehand)"),
        ("to_ids", "`codec::to_ids` alone (for comparison; no longer in the path)"),
        ("read_encode_ids", "the full path"),
    ]:
        x = rust[stage]
        breakdown.append(f"| {label} | {x['cpu_seconds']:.3f} | {x['cpu_seconds'] / full['cpu']:.0%} | "
                         f"{x['bytes'] / 1e6 / x['cpu_seconds']:,.1f} |")
    table = "\n".join(lines)
    music_h = rust["read_encode_ids"]["music_seconds"] / 3600
    mmss = rust["read_encode_ids"]["music_seconds"] / full["cpu"]
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    machine = f"{os.cpu_count()} CPUs (`nproc` {nproc}), {cpu_model()}"
    wall_ratio_pm = full["wall_mbps"] / pm["wall_mbps"]
    wall_ratio_sym = full["wall_mbps"] / sy["wall_mbps"]
    notes = [
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}. Machine: {machine}; "
        f"load average {load_start} at the start, {load_end} at the end (shared with other jobs).",
        f"- Files: {len(data)} MAESTRO v2.0.0 MIDI files ({total_bytes / 1e6:.1f} MB, {music_h:.1f} h of music, "
        f"{rust['read_encode_ids']['notes']:,} notes, {rust['read_encode_ids']['events']:,} tokens), "
        f"from `{Path(args.csv).name}`.",
        "- Every measurement single-threaded, all in this one run, bytes preloaded in memory for every tool; "
        "file reading is the separate `fs::read` rows. MB = 10^6 bytes.",
        "- files/s, MB/s and the ratios use CPU time of the measuring thread "
        "(Rust: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`; "
        "Python: `time.thread_time()`), because on this shared machine wall time mostly measures how long "
        "each tool waited for a core. On wall time the full Rust path is "
        f"{wall_ratio_pm:,.0f}x pretty_midi and {wall_ratio_sym:.2f}x symusic's parse.",
        "- pretty_midi: one pass"
        f"{'' if args.pm_every == 1 else f' over every {args.pm_every}th file (a fixed subset)'}, "
        "per-file times summed. symusic and Rust: median of "
        f"{args.reps} passes over all files.",
        "- The pretty_midi encoder produced exactly the Rust tokens (count and checksum) for "
        f"{matches} of {len(pm_idx)} files"
        + ("." if not mismatched else
           f"; the other {len(mismatched)} have the same token count in {sum(a == b for _, a, b in mismatched)} cases "
           f"(first: `{Path(mismatched[0][0]).name}`). The readers differ there, not the encoders: pretty_midi keeps a "
           "re-struck key's earlier note sounding until the next note-off, pianoforte ends it at the re-strike."),
        f"- Goals: at least 20x the pretty_midi path: {full['mbps'] / pm['mbps']:,.0f}x, "
        f"{'met' if full['mbps'] >= 20 * pm['mbps'] else 'NOT met'}; no slower than symusic's parse: "
        f"{full['mbps'] / sy['mbps']:.2f}x, {'met' if full['mbps'] >= sy['mbps'] else 'NOT met'} (CPU time).",
        f"- Rust full path: {mmss:,.0f} seconds of music per CPU second.",
    ]
    section = (
        f"{HEADING}\n\nCommand (from the repository root):\n\n```\n{command}\n```\n\n{table}\n\n"
        + "\n".join(notes)
        + "\n\nWhere the Rust time goes:\n\n"
        + "\n".join(breakdown)
        + "\n"
    )
    print(section)
    if mismatched:
        print(f"pretty_midi token mismatches ({len(mismatched)}), first few: {mismatched[:5]}", file=sys.stderr)

    if not args.no_write:
        text = DOC.read_text() if DOC.exists() else INTRO
        start = text.find(HEADING)
        if start >= 0:
            end = text.find("\n## ", start + len(HEADING))
            text = text[:start] + section + ("" if end < 0 else "\n" + text[end + 1 :])
        else:
            text = text.rstrip("\n") + "\n\n" + section
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text)
        print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
