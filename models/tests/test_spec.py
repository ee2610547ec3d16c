"""vocab.py reads docs/spec/events.json and refuses a spec it cannot use."""

import importlib.util
import json

import pytest

from pianoforte_train import vocab as V


def load_vocab(monkeypatch, path):
    """A fresh copy of the vocab module reading the spec at ``path``."""
    monkeypatch.setenv("PIANOFORTE_SPEC", str(path))
    spec = importlib.util.spec_from_file_location("vocab_under_test", V.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_spec(tmp_path, change):
    spec = json.loads(json.dumps(V.SPEC))
    change(spec)
    path = tmp_path / "events.json"
    path.write_text(json.dumps(spec))
    return path


def test_constants_come_from_the_spec(monkeypatch, tmp_path):
    same = load_vocab(monkeypatch, write_spec(tmp_path, lambda s: None))
    assert (same.NOTE_OFF, same.PEDAL_UP, same.START, same.DENSITY_EDGES) == (
        V.NOTE_OFF, V.PEDAL_UP, V.START, V.DENSITY_EDGES)

    def edges(s):
        s["density"]["edges"] = s["density"]["edges"][:-1] + [40]

    assert load_vocab(monkeypatch, write_spec(tmp_path, edges)).DENSITY_EDGES[-1] == 40


def test_missing_spec(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="missing.*PIANOFORTE_SPEC"):
        load_vocab(monkeypatch, tmp_path / "nowhere.json")


def test_unknown_version(monkeypatch, tmp_path):
    path = write_spec(tmp_path, lambda s: s["vocabulary"].update(version=99))
    with pytest.raises(RuntimeError, match="vocabulary version 99"):
        load_vocab(monkeypatch, path)


def test_layout_the_code_cannot_read(monkeypatch, tmp_path):
    path = write_spec(tmp_path, lambda s: s["vocabulary"].update(pedal_up=s["vocabulary"]["pedal_down"]))
    with pytest.raises(RuntimeError, match="layout"):
        load_vocab(monkeypatch, path)
