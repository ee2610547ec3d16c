#!/usr/bin/env python3
"""The README's pictures of Perform my part (issue 20): the first bars of a score and its
performance by `pianoforte perform`, both drawn by `pianoforte render` (velocity as colour, pedal
as a band at the bottom), side by side in docs/.

Run from the repository root, after `cargo build --release --bin pianoforte`:

    ~/.cache/pianoforte/venv/bin/python benches/perform_pictures.py

The score is an ASAP validation score (`--score`, relative to ../shared/data/asap), cut to its
first `--quarters` quarter notes with mido (notes that start there, tempo and time signatures
kept).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parents[1]
ASAP = ROOT.parent / "shared" / "data" / "asap"


def cut(src: Path, dst: Path, quarters: float) -> None:
    """`src` up to `quarters` quarter notes: notes that start before it, ended there at the latest."""
    mid = mido.MidiFile(str(src))
    limit = round(quarters * mid.ticks_per_beat)
    out = mido.MidiFile(ticks_per_beat=mid.ticks_per_beat, type=mid.type)
    for track in mid.tracks:
        kept, now, last, sounding = mido.MidiTrack(), 0, 0, set()
        for msg in track:
            now += msg.time
            on = msg.type == "note_on" and msg.velocity > 0
            off = msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0)
            if msg.is_meta and msg.type == "end_of_track":
                continue
            if (on and now >= limit) or (off and (msg.channel, msg.note) not in sounding):
                continue
            if not msg.is_meta and not (on or off) and now >= limit:
                continue
            if msg.is_meta and now > limit:
                continue
            at = min(now, limit) if off else now
            if on:
                sounding.add((msg.channel, msg.note))
            if off:
                sounding.discard((msg.channel, msg.note))
            kept.append(msg.copy(time=at - last))
            last = at
        for channel, note in sorted(sounding):
            kept.append(mido.Message("note_off", channel=channel, note=note, velocity=0, time=limit - last))
            last = limit
        out.tracks.append(kept)
    out.save(str(dst))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--score", default="Bach/Prelude/bwv_875/midi_score.mid")
    p.add_argument("--quarters", type=float, default=16.0)
    p.add_argument("--seed", default="1")
    p.add_argument("--bin", default=os.environ.get("PIANOFORTE_BIN", str(ROOT / "target" / "release" / "pianoforte")))
    p.add_argument("--out", default=str(ROOT / "docs"))
    a = p.parse_args()
    out = Path(a.out)
    with tempfile.TemporaryDirectory() as tmp:
        score = Path(tmp) / "score.mid"
        cut(ASAP / a.score, score, a.quarters)
        performance = Path(tmp) / "performance.mid"
        subprocess.run([a.bin, "perform", str(score), "-o", str(performance), "--seed", a.seed], check=True)
        for name, midi in (("perform-score.png", score), ("perform-performance.png", performance)):
            subprocess.run([a.bin, "render", str(midi), "-o", str(out / name), "--pixels-per-second", "80"], check=True)
            print(f"wrote {out / name}")


if __name__ == "__main__":
    main()
