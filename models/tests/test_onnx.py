import json

import numpy as np
import onnx
import pytest
import torch

from pianoforte_train import vocab as V
from pianoforte_train.evaluate import model_card, onnx_session
from pianoforte_train.export import base_card, export_onnx, license_for, parity, set_card
from pianoforte_train.model import ModelConfig, PerformanceGRU


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = PerformanceGRU(ModelConfig(layers=2, hidden=32, embedding=16, dropout=0.0)).eval()
    path = str(tmp_path_factory.mktemp("onnx") / "m.onnx")
    export_onnx(model, path)
    set_card(path, base_card(model.cfg, model.n_params))
    return model, path


def test_parity(exported):
    model, path = exported
    for T, B in [(1, 1), (5, 2), (33, 4)]:
        res = parity(model, path, T=T, B=B, seed=T)
        assert res["max_abs_diff_torch"] <= 1e-4 and res["max_abs_diff_steps"] <= 1e-4


def test_contract(exported):
    model, path = exported
    m = onnx.load(path)
    assert m.opset_import[0].version >= 17
    assert "GRU" in {n.op_type for n in m.graph.node}
    ins = {i.name: i.type.tensor_type for i in m.graph.input}
    outs = {o.name: o.type.tensor_type for o in m.graph.output}
    assert list(ins) == ["events", "control", "hidden"] and list(outs) == ["logits", "hidden_out"]
    TP = onnx.TensorProto
    assert ins["events"].elem_type == TP.INT64 and ins["control"].elem_type == TP.FLOAT
    assert ins["hidden"].elem_type == TP.FLOAT and outs["logits"].elem_type == TP.FLOAT
    dims = lambda t: [d.dim_param or d.dim_value for d in t.shape.dim]  # noqa: E731
    assert dims(ins["events"]) == ["T", "B"] and dims(ins["control"]) == ["T", "B", V.CONTROL_SIZE]
    assert dims(ins["hidden"]) == [2, "B", 32] and dims(outs["logits"]) == ["T", "B", V.VOCAB_SIZE]
    card = model_card(path)
    for key in ["vocabulary_version", "vocab_size", "start_token", "control", "layers", "hidden", "embedding",
                "parameters", "license", "date"]:
        assert key in card
    # the card repeats the spec the Rust engine checks the model against
    density, voc = V.SPEC["density"], V.SPEC["vocabulary"]
    half = density["half_window_steps"]
    assert card["control"] == {
        "kind": "note_density", "window_steps": 2 * half, "window": f"centred, [t-{half}, t+{half}) steps",
        "steps_per_second": voc["steps_per_second"], "edges": density["edges"], "size": density["control_size"],
        "no_control_index": density["no_control_index"],
    }
    assert card["start_token"] == voc["start_token"] and card["vocab_size"] == voc["size"]
    json.dumps(card)


def test_start_token_and_zero_state(exported):
    _, path = exported
    sess = onnx_session(path, threads=1)
    logits, h = sess.run(None, {"events": np.array([[V.START]], dtype=np.int64),
                                "control": V.control_one_hot(np.array([[V.NO_CONTROL]])),
                                "hidden": np.zeros((2, 1, 32), np.float32)})
    assert logits.shape == (1, 1, V.VOCAB_SIZE) and h.shape == (2, 1, 32) and np.isfinite(logits).all()


def test_the_licence_names_the_corpora_the_tokens_came_from(tmp_path):
    vocabulary = {"version": V.VOCABULARY_VERSION, "size": V.VOCAB_SIZE}
    inputs = ["../shared/data/maestro-v2.0.0/maestro-v2.0.0-train-validation.csv",
              "../shared/data/asap/asap-train-validation.csv"]
    for name, given in [("both", inputs), ("maestro", inputs[:1]), ("asap", inputs[1:])]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"vocabulary": vocabulary, "inputs": given}))
    assert license_for(str(tmp_path / "both")) == \
        "CC BY-NC-SA 4.0 (trained on MAESTRO v2.0.0 and ASAP, both CC BY-NC-SA 4.0)"
    assert license_for(str(tmp_path / "maestro")) == "CC BY-NC-SA 4.0 (trained on MAESTRO v2.0.0)"
    assert license_for(str(tmp_path / "asap")) == "CC BY-NC-SA 4.0 (trained on ASAP)"
    assert license_for(str(tmp_path / "missing")) == "CC BY-NC-SA 4.0 (trained on MAESTRO v2.0.0)"
