import json

import numpy as np
import onnx
import pytest
import torch

from pianoforte_train import vocab as V
from pianoforte_train.evaluate import model_card, onnx_session
from pianoforte_train.export import base_card, export_onnx, parity, set_card
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
    assert dims(ins["events"]) == ["T", "B"] and dims(ins["control"]) == ["T", "B", 16]
    assert dims(ins["hidden"]) == [2, "B", 32] and dims(outs["logits"]) == ["T", "B", 310]
    card = model_card(path)
    for key in ["vocabulary_version", "vocab_size", "start_token", "control", "layers", "hidden", "embedding",
                "parameters", "license", "date"]:
        assert key in card
    assert card["control"] == {
        "kind": "note_density", "window_steps": 400, "window": "centred, [t-200, t+200) steps",
        "steps_per_second": 100, "edges": [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 27, 33], "size": 16,
        "no_control_index": 15,
    }
    assert card["start_token"] == 310 and card["vocab_size"] == 310
    json.dumps(card)


def test_start_token_and_zero_state(exported):
    _, path = exported
    sess = onnx_session(path, threads=1)
    logits, h = sess.run(None, {"events": np.array([[V.START]], dtype=np.int64),
                                "control": V.control_one_hot(np.array([[V.NO_CONTROL]])),
                                "hidden": np.zeros((2, 1, 32), np.float32)})
    assert logits.shape == (1, 1, 310) and h.shape == (2, 1, 32) and np.isfinite(logits).all()
