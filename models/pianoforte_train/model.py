"""The performance model: embedding + control -> stacked GRU -> linear over the VOCAB_SIZE events.

Time-major tensors throughout ([T, B, ...]) to match the ONNX contract.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from . import vocab as V


@dataclass
class ModelConfig:
    layers: int = 2
    hidden: int = 512
    embedding: int = 256
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class PerformanceGRU(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(V.EMBED_SIZE, cfg.embedding)
        self.gru = nn.GRU(
            cfg.embedding + V.CONTROL_SIZE,
            cfg.hidden,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, V.VOCAB_SIZE)

    def forward(self, events: torch.Tensor, control: torch.Tensor, hidden: torch.Tensor | None = None):
        """events int64 [T, B]; control float [T, B, CONTROL_SIZE]; hidden float [L, B, H] or None (zeros).

        Returns logits [T, B, VOCAB_SIZE] and the new hidden state [L, B, H].
        """
        x = torch.cat([self.embed(events), control.to(self.embed.weight.dtype)], dim=-1)
        out, hidden = self.gru(x, hidden)
        return self.head(self.drop(out)), hidden

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def control_from_bins(bins: torch.Tensor) -> torch.Tensor:
    """int bins [...] (0..NO_CONTROL) -> float one-hot [..., CONTROL_SIZE]."""
    return nn.functional.one_hot(bins, V.CONTROL_SIZE).float()
