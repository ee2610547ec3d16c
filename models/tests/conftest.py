import os
import sys

import pytest

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from pianoforte_train.data import write_synthetic_dir  # noqa: E402

# A model small enough for every test to run in seconds on 2 CPU cores.
TINY = ["--layers", "2", "--hidden", "24", "--embedding", "16", "--seq-len", "48", "--batch-size", "4",
        "--val-crops", "4", "--warmup-steps", "2", "--no-progress", "--threads", "1"]


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    return write_synthetic_dir(str(tmp_path_factory.mktemp("tokens")), docs_per_split=(6, 3), notes=(80, 300))


@pytest.fixture(scope="session")
def tokens_dir(synthetic_dir):
    """A real token directory from PIANOFORTE_TOKENS if set, else the synthetic one."""
    return os.environ.get("PIANOFORTE_TOKENS") or synthetic_dir
