#!/usr/bin/env bash
# Creates (or reuses) the Python environment for the trainer, its tests and the benchmarks, and
# the third-party plugin hosts of tests/python (tests/python/requirements.txt), and prints its
# python's path on the last line. The environment lives outside the repository (PyTorch is ~5 GB)
# and is rebuilt from scratch when models/pyproject.toml, tests/python/requirements.txt or this
# script changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PIANOFORTE_VENV:-$HOME/.cache/pianoforte/venv}"
stamp="$venv/.pianoforte-stamp"
requirements="$root/tests/python/requirements.txt"
want="$(cat "$root/models/pyproject.toml" "$requirements" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "python-env: installing the trainer's environment into $venv (PyTorch is large: a few minutes)" >&2
    python3 -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    # Only the dependencies: the code itself runs from this checkout (PYTHONPATH=models), so an
    # environment shared by several checkouts never imports another checkout's trainer.
    mapfile -t deps < <(python3 -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(p["dependencies"] + p["optional-dependencies"]["test"]))' "$root/models/pyproject.toml")
    "$venv/bin/python" -m pip install --quiet "${deps[@]}" -r "$requirements" >&2
    echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
