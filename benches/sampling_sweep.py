#!/usr/bin/env python3
"""Choose the default sampling by measurement: for each temperature / top-p setting, generate
`--count` pieces of `--seconds` (Density Auto, key Any) and compare them with the MAESTRO
validation performances after the codec's round trip (benches/realism.py's statistics).

Run from the repository root, after `cargo build --release` and `cargo xtask onnxruntime`:

    ~/.cache/pianoforte/venv/bin/python benches/sampling_sweep.py --model models/pianoforte-gru.onnx

Columns: keys-down overlap (pooled distribution of keys down at each onset, 1 = identical), notes
held >= 4.9 s, notes per second, key clarity, velocity spread (sd within piece), note-length and
inter-onset overlaps. The score that picks the default (printed last) is the mean of four
closenesses to MAESTRO: the keys-down overlap, the note-length overlap, the inter-onset overlap,
and 1 - |log(notes/s ratio)|; settings that hold more than 0.5 % of notes >= 4.9 s are not chosen.
`--json OUT` also writes the rows, and `--card OUT` a `{"sampling": ...}` object for
`python -m pianoforte_train card MODEL.onnx --merge OUT`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from realism import MAESTRO_CSV, ROOT, generate_pieces, overlap, reference_pieces, summarise  # noqa: E402

DISTS = {
    "polyphony": np.arange(0.5, 21.5, 1),
    "duration": np.geomspace(0.005, 10, 40),
    "ioi": np.geomspace(0.005, 10, 40),
}


def pooled(raws, key):
    x = np.concatenate([r[key] for r in raws]) if raws else np.array([])
    return np.minimum(x, 20) if key == "polyphony" else x


def row(ref, ref_raw, gen, gen_raw, stuck) -> dict:
    r, g = summarise(ref), summarise(gen)
    ov = {k: overlap(pooled(ref_raw, k), pooled(gen_raw, k), bins) for k, bins in DISTS.items()}
    ratio = g["notes_per_s"][0] / r["notes_per_s"][0]
    score = (ov["polyphony"] + ov["duration"] + ov["ioi"] + max(0.0, 1 - abs(math.log(ratio)))) / 4
    return {
        "keys_down_overlap": ov["polyphony"], "note_length_overlap": ov["duration"], "ioi_overlap": ov["ioi"],
        "long_notes": g["long_notes"][0], "notes_per_s": g["notes_per_s"][0], "key_clarity": g["key_clarity"][0],
        "velocity_sd": g["velocity_sd"][0], "score": score, "stuck": len(stuck),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(ROOT, "models/pianoforte-gru.onnx"))
    p.add_argument("--binary", default=os.path.join(ROOT, "target/release/pianoforte"))
    p.add_argument("--temperatures", default="0.8,0.85,0.9,0.95,1.0")
    p.add_argument("--top-ps", default="off,0.95", help="comma-separated; 'off' for none")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=700)
    p.add_argument("--csv", default=MAESTRO_CSV)
    p.add_argument("--max-files", type=int, default=0, help="reference files (0: all 137 validation)")
    p.add_argument("--json", default=None, metavar="OUT.json")
    p.add_argument("--card", default=None, metavar="OUT.json", help="write the chosen setting as a card object")
    a = p.parse_args()

    ref, ref_raw = reference_pieces(a.csv, a.max_files, a.binary)
    r = summarise(ref)
    rows = []
    print(f"reference: {len(ref)} MAESTRO validation performances after the codec round trip: "
          f"{r['notes_per_s'][0]:.2f} notes/s, key clarity {r['key_clarity'][0]:.3f}, "
          f"notes >= 4.9 s {r['long_notes'][0]:.4f}, velocity sd {r['velocity_sd'][0]:.1f}\n", flush=True)
    print(f"model {a.model}; {a.count} x {a.seconds:g} s per setting, seeds {a.seed}.., Density Auto, key Any\n")
    print("| temperature | top-p | keys-down overlap | notes >= 4.9 s | notes/s | key clarity | velocity sd "
          "| note-length overlap | IOI overlap | score |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for t in a.temperatures.split(","):
        for top_p in a.top_ps.split(","):
            gen, gen_raw, stuck = generate_pieces(a.binary, a.model, a.count, a.seconds, a.seed, float(t), top_p)
            x = row(ref, ref_raw, gen, gen_raw, stuck) | {"temperature": float(t), "top_p": top_p}
            rows.append(x)
            print(f"| {t} | {top_p} | {x['keys_down_overlap']:.3f} | {x['long_notes'] * 100:.2f} % "
                  f"| {x['notes_per_s']:.2f} | {x['key_clarity']:.3f} | {x['velocity_sd']:.1f} "
                  f"| {x['note_length_overlap']:.3f} | {x['ioi_overlap']:.3f} | {x['score']:.3f} |", flush=True)
    ok = [x for x in rows if x["long_notes"] <= 0.005] or rows
    best = max(ok, key=lambda x: x["score"])
    print(f"\nchosen: temperature {best['temperature']}, top-p {best['top_p']} (score {best['score']:.3f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "count": a.count, "seconds": a.seconds, "seed": a.seed,
                       "reference": {k: v[0] for k, v in r.items()}, "rows": rows, "chosen": best}, f, indent=1)
    if a.card:
        top_p = None if best["top_p"] == "off" else float(best["top_p"])
        with open(a.card, "w") as f:
            json.dump({"sampling": {
                "temperature": best["temperature"], "top_p": top_p,
                "method": f"benches/sampling_sweep.py: {a.count} x {a.seconds:g} s per setting against "
                          f"{len(ref)} MAESTRO validation performances after the codec round trip; "
                          "best mean of keys-down, note-length, IOI overlaps and notes/s closeness, "
                          "notes >= 4.9 s <= 0.5 %",
            }}, f, indent=1)


if __name__ == "__main__":
    main()
