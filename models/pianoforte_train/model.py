"""The performance model: embedding + controls (+ key + music state) -> stacked GRU -> linear over
the VOCAB_SIZE events.

Model format 1: inputs events, control.  Model format 2 adds the key control [.., 12] and the
music-state features [.., STATE_SIZE] (features.py) as further GRU input columns; format 3 adds
the beat features [.., BEAT_SIZE] after them (so a format-2 model's weights warm-start it).
Time-major tensors throughout ([T, B, ...]) to match the ONNX contract.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from . import vocab as V
from .features import NO_BEAT_OFFSET


@dataclass
class ModelConfig:
    layers: int = 2
    hidden: int = 512
    embedding: int = 256
    dropout: float = 0.1
    key_size: int = 0  # 12 in format 2
    state_size: int = 0  # features.STATE_SIZE in formats 2 and 3
    beat_size: int = 0  # features.BEAT_SIZE in format 3
    # format 3: the beat features also reach the logits through a linear map of their own (no bias),
    # so "the next beat is k steps away" can favour a time shift of k without passing the GRU
    beat_skip: bool = False

    def __post_init__(self):
        if self.beat_size and not (self.key_size and self.state_size):
            raise ValueError("format 3 (beat features) is format 2 plus beats: key_size and state_size are needed")
        if self.beat_skip and not self.beat_size:
            raise ValueError("the beat skip needs the beat features (format 3)")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def format_version(self) -> int:
        if self.beat_size:
            return 3
        return 2 if (self.key_size or self.state_size) else 1


class PerformanceGRU(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(V.EMBED_SIZE, cfg.embedding)
        self.gru = nn.GRU(
            cfg.embedding + V.CONTROL_SIZE + cfg.key_size + cfg.state_size + cfg.beat_size,
            cfg.hidden,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, V.VOCAB_SIZE)
        # Zero at first: a warm-started model computes what it did until training changes it.
        self.beat_head = nn.Linear(cfg.beat_size, V.VOCAB_SIZE, bias=False) if cfg.beat_skip else None
        if self.beat_head is not None:
            nn.init.zeros_(self.beat_head.weight)

    def forward(
        self,
        events: torch.Tensor,
        control: torch.Tensor,
        hidden: torch.Tensor | None = None,
        key: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
        beat: torch.Tensor | None = None,
    ):
        """events int64 [T, B]; control float [T, B, CONTROL_SIZE]; hidden float [L, B, H] or None (zeros);
        format 2: key float [T, B, key_size], state float [T, B, state_size] (zeros when None);
        format 3: beat float [T, B, beat_size] (None: free time, the no-beat flag set, as the engine
        feeds without a beat clock).

        Returns logits [T, B, VOCAB_SIZE] and the new hidden state [L, B, H].
        """
        dtype = self.embed.weight.dtype
        parts = [self.embed(events), control.to(dtype)]
        T, B = events.shape
        for size, x in ((self.cfg.key_size, key), (self.cfg.state_size, state)):
            if size:
                if x is None:
                    x = torch.zeros(T, B, size, dtype=dtype, device=events.device)
                parts.append(x.to(dtype))
        if self.cfg.beat_size:
            if beat is None:
                beat = torch.zeros(T, B, self.cfg.beat_size, dtype=dtype, device=events.device)
                beat[..., NO_BEAT_OFFSET] = 1.0
            beat = beat.to(dtype)
            parts.append(beat)
        out, hidden = self.gru(torch.cat(parts, dim=-1), hidden)
        logits = self.head(self.drop(out))
        if self.beat_head is not None:
            logits = logits + self.beat_head(beat)
        return logits, hidden

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class OnnxInterface(nn.Module):
    """The ONNX input order: events, control, [key, state, [beat,]] hidden."""

    def __init__(self, model: PerformanceGRU):
        super().__init__()
        self.model = model

    def forward(self, events, control, *rest):
        if self.model.cfg.format_version == 1:
            return self.model(events, control, rest[0])
        if self.model.cfg.format_version == 2:
            key, state, hidden = rest
            return self.model(events, control, hidden, key, state)
        key, state, beat, hidden = rest
        return self.model(events, control, hidden, key, state, beat)


def control_from_bins(bins: torch.Tensor) -> torch.Tensor:
    """int bins [...] (0..NO_CONTROL) -> float one-hot [..., CONTROL_SIZE]."""
    return nn.functional.one_hot(bins, V.CONTROL_SIZE).float()


def load_onnx_weights(model: PerformanceGRU, path: str) -> dict:
    """Warm start: copies a format-1, 2 (or 3) ONNX model's weights into ``model``. Columns of the
    first GRU layer's input matrix that the ONNX model lacks (key, state, beat) are set to zero, so
    the new model computes exactly what the ONNX one does until training changes them.

    ONNX GRU weights are [1, 3H, in] in gate order z, r, h; PyTorch's are [3H, in] in r, z, n.
    """
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    grus = [n for n in m.graph.node if n.op_type == "GRU"]
    H, L = model.cfg.hidden, model.cfg.layers
    if len(grus) != L:
        raise ValueError(f"{path}: {len(grus)} GRU layers, the model has {L}")

    def reorder(w):  # [3H, ...] z, r, h -> r, z, n
        z, r, h = w[:H], w[H : 2 * H], w[2 * H :]
        return np.concatenate([r, z, h])

    def weights_of(op: str) -> list[np.ndarray]:  # the weights feeding the nodes of this type, in order
        nodes = [n for n in m.graph.node if n.op_type == op]
        return [init[name] for n in nodes for name in n.input if name in init]

    vocab = V.VOCAB_SIZE
    head = [w for w in weights_of("MatMul") if w.shape == (H, vocab)]
    skip = [w for w in weights_of("MatMul") if w.shape == (model.cfg.beat_size, vocab) and model.cfg.beat_size != H]
    if skip and model.beat_head is None:
        raise ValueError(f"{path} has a beat skip (--beat-skip); the model has none")
    sd = model.state_dict()
    sd["embed.weight"] = torch.from_numpy(weights_of("Gather")[-1].copy())
    sd["head.bias"] = torch.from_numpy([w for w in weights_of("Add") if w.shape == (vocab,)][-1].copy())
    sd["head.weight"] = torch.from_numpy(head[-1].T.copy())
    if skip:
        sd["beat_head.weight"] = torch.from_numpy(skip[-1].T.copy())
    for layer, node in enumerate(grus):
        W, R, Bias = (init[name][0] for name in node.input[1:4])
        w_ih = torch.zeros_like(sd[f"gru.weight_ih_l{layer}"])
        if W.shape[1] > w_ih.shape[1] or W.shape[0] != 3 * H:
            raise ValueError(f"{path}: layer {layer} input {W.shape} does not fit {tuple(w_ih.shape)}")
        w_ih[:, : W.shape[1]] = torch.from_numpy(reorder(W))
        sd[f"gru.weight_ih_l{layer}"] = w_ih
        sd[f"gru.weight_hh_l{layer}"] = torch.from_numpy(reorder(R).copy())
        sd[f"gru.bias_ih_l{layer}"] = torch.from_numpy(reorder(Bias[: 3 * H]).copy())
        sd[f"gru.bias_hh_l{layer}"] = torch.from_numpy(reorder(Bias[3 * H :]).copy())
    model.load_state_dict(sd)
    return {"source": path, "columns_copied": int(init[grus[0].input[1]].shape[2])}


def load_checkpoint_weights(model: PerformanceGRU, path: str) -> dict:
    """Warm start from a trainer checkpoint (``best.pt`` / ``last.pt``) of a model with fewer
    input columns: the first GRU layer's missing columns (features added at the end) are zero,
    so the new model computes what the old one did until training changes them."""
    state = torch.load(path, map_location="cpu", weights_only=False)["model"]
    sd = model.state_dict()
    for name, old in state.items():  # a layer the old model lacks (the beat skip) keeps its zeros
        new = sd[name]
        if name == "gru.weight_ih_l0" and old.shape[1] < new.shape[1] and old.shape[0] == new.shape[0]:
            new = torch.zeros_like(new)
            new[:, : old.shape[1]] = old
            sd[name] = new
        elif old.shape == new.shape:
            sd[name] = old
        else:
            raise ValueError(f"{path}: {name} is {tuple(old.shape)}, the model's is {tuple(new.shape)}")
    model.load_state_dict(sd)
    return {"source": path, "columns_copied": int(state["gru.weight_ih_l0"].shape[1])}
