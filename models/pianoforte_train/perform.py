"""Score-to-performance model ("Perform my part"): a bidirectional GRU from the notes of a quantized
score to how a pianist played them, trained on the arrays `pianoforte align` writes.

Data (DIR): manifest.json {"kind": "score-performance", "feature_version", "features", "targets"};
per split (train, validation) {split}.features.npy float32 [N, F], {split}.targets.npy float32 [N, 5]
(NaN: unknown) and {split}.docs.json [{"performance", "score", "start", "length", "coverage"}].

ONNX contract: input features float32 [1, T, F]; output outputs float32 [1, T, 5] in target units
(velocity, log_tempo, timing, log_articulation; pedal as a probability). Card: metadata "pianoforte".
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

KIND = "score-performance"
TARGETS = ["velocity", "log_tempo", "timing", "log_articulation", "pedal"]
REGRESSION = len(TARGETS) - 1  # all but pedal, which is a probability
CARD_FORMAT_VERSION = 1
LICENSE = "CC BY-NC-SA 4.0 (trained on ASAP, CC BY-NC-SA 4.0)"


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="directory written by `pianoforte align`")
    p.add_argument("--out", required=True, help="output .onnx (e.g. models/pianoforte-perform.onnx)")
    p.add_argument("--log", default=None, help="JSON log of the run (default: --out with .json)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.2, help="between the GRU layers")
    p.add_argument("--seq-len", type=int, default=256, help="notes per training crop")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-steps", type=int, default=100)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=3000, help="also the length of the LR schedule")
    p.add_argument("--max-minutes", type=float, default=None, help="stop early at this training wall time")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--opset", type=int, default=17)


# ----------------------------------------------------------------------------- data
@dataclass
class Split:
    features: np.ndarray  # float32 [N, F]
    targets: np.ndarray  # float32 [N, 5], NaN where unknown
    docs: list[dict]

    def doc(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, n = self.docs[i]["start"], self.docs[i]["length"]
        return self.features[s : s + n], self.targets[s : s + n]


def load_manifest(data: str) -> dict:
    with open(os.path.join(data, "manifest.json")) as f:
        manifest = json.load(f)
    if manifest.get("kind") != KIND:
        raise SystemExit(f"{data}: manifest kind is {manifest.get('kind')!r}, not {KIND!r} (`pianoforte align`)")
    if manifest.get("targets") != TARGETS:
        raise SystemExit(f"{data}: targets {manifest.get('targets')} are not {TARGETS}")
    return manifest


def load_split(data: str, name: str, n_features: int) -> Split:
    x = np.load(os.path.join(data, f"{name}.features.npy")).astype(np.float32)
    y = np.load(os.path.join(data, f"{name}.targets.npy")).astype(np.float32)
    with open(os.path.join(data, f"{name}.docs.json")) as f:
        docs = [d for d in json.load(f) if d["length"] > 0]
    if x.ndim != 2 or x.shape[1] != n_features:
        raise SystemExit(f"{data}: {name}.features.npy is {x.shape}, the manifest names {n_features} features")
    if not np.isfinite(x).all():
        raise SystemExit(f"{data}: {name}.features.npy has non-finite values (only targets may be unknown)")
    if y.shape != (len(x), len(TARGETS)):
        raise SystemExit(f"{data}: {name}.targets.npy is {y.shape}, expected ({len(x)}, {len(TARGETS)})")
    if not docs:
        raise SystemExit(f"{data}: the {name} split has no documents")
    if any(d["start"] < 0 or d["start"] + d["length"] > len(x) for d in docs):
        raise SystemExit(f"{data}: a document of {name}.docs.json lies outside the arrays")
    return Split(x, y, docs)


def crop_batch(split: Split, seq_len: int, batch_size: int, rng: np.random.Generator):
    """Crops of consecutive notes within one document each; documents drawn by length, so that
    every note is about as likely to be seen. Returns (x [B, T, F], y [B, T, 5], lengths [B])."""
    lengths = np.array([d["length"] for d in split.docs])
    picks = rng.choice(len(lengths), batch_size, p=lengths / lengths.sum())
    T = min(seq_len, int(lengths[picks].max()))
    x = np.zeros((batch_size, T, split.features.shape[1]), np.float32)
    y = np.full((batch_size, T, len(TARGETS)), np.nan, np.float32)  # padding: unknown, so masked
    n = np.minimum(lengths[picks], T)
    for b, (i, k) in enumerate(zip(picks, n, strict=True)):
        s = split.docs[i]["start"] + int(rng.integers(0, lengths[i] - k + 1))
        x[b, :k], y[b, :k] = split.features[s : s + k], split.targets[s : s + k]
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(n)


def mean_sd(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and sd over the finite values (sd 1 where a column is constant or empty)."""
    mean = np.nan_to_num(np.nanmean(np.where(np.isfinite(a), a, np.nan), 0))
    sd = np.nan_to_num(np.nanstd(np.where(np.isfinite(a), a, np.nan), 0))
    return mean.astype(np.float32), np.where(sd > 1e-6, sd, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- model
class PerformGRU(nn.Module):
    """Standardised features -> Linear -> 2-layer bidirectional GRU -> Linear to 5 outputs
    (standardised regression targets and the pedal logit). The standardisations are buffers,
    so the exported graph carries them."""

    def __init__(self, n_features: int, hidden: int, stats: dict[str, np.ndarray], layers: int = 2,
                 dropout: float = 0.0):
        super().__init__()
        self.hidden, self.layers = hidden, layers
        for name in ("feature_mean", "feature_sd", "target_mean", "target_sd"):
            self.register_buffer(name, torch.as_tensor(stats[name], dtype=torch.float32))
        self.inp = nn.Linear(n_features, hidden)
        # Dropout between the layers: a few hundred scores are easy to learn by heart.
        self.gru = nn.GRU(hidden, hidden, num_layers=layers, bidirectional=True, batch_first=True, dropout=dropout)
        self.head = nn.Linear(2 * hidden, len(TARGETS))

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.inp((x - self.feature_mean) / self.feature_sd)
        if lengths is not None and int(lengths.min()) < x.shape[1]:
            # packed, so that the backward direction of a short document starts at its last note, not in padding
            packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
            out, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])
        else:
            out, _ = self.gru(h)
        return self.head(out)

    def in_units(self, raw: torch.Tensor) -> torch.Tensor:
        reg = raw[..., :REGRESSION] * self.target_sd + self.target_mean
        return torch.cat([reg, torch.sigmoid(raw[..., REGRESSION:])], -1)


class OnnxPerform(nn.Module):
    def __init__(self, model: PerformGRU):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.in_units(self.model(features))


def loss_terms(model: PerformGRU, raw: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-target summed losses and counts over the known targets: MSE on the standardised
    regression targets, BCE with logits for the pedal."""
    known = torch.isfinite(y)
    y_std = torch.cat([(y[..., :REGRESSION] - model.target_mean) / model.target_sd, y[..., REGRESSION:]], -1)
    y_std = torch.where(known, y_std, torch.zeros_like(y_std))
    mse = (raw[..., :REGRESSION] - y_std[..., :REGRESSION]) ** 2
    bce = F.binary_cross_entropy_with_logits(raw[..., REGRESSION:], y_std[..., REGRESSION:], reduction="none")
    per_note = torch.cat([mse, bce], -1) * known
    return per_note.reshape(-1, len(TARGETS)).sum(0), known.reshape(-1, len(TARGETS)).sum(0)


def total_loss(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return (sums / counts.clamp(min=1)).sum()  # equal weights; a target never seen adds 0


@torch.no_grad()
def validate(model: PerformGRU, split: Split) -> dict:
    """Loss over every validation note (documents whole, one at a time) and the Pearson r of
    velocity and log_tempo over the notes where they are known."""
    was_training = model.training
    model.eval()
    sums, counts, preds = torch.zeros(len(TARGETS)), torch.zeros(len(TARGETS)), []
    for i in range(len(split.docs)):
        x, y = (torch.from_numpy(a)[None] for a in split.doc(i))
        raw = model(x)
        s, c = loss_terms(model, raw, y)
        sums, counts = sums + s, counts + c
        preds.append(model.in_units(raw)[0].numpy())
    model.train(was_training)
    per_target = (sums / counts.clamp(min=1)).tolist()
    res = {"loss": float(total_loss(sums, counts))} | {f"{t}_loss": v for t, v in zip(TARGETS, per_target, strict=True)}
    pred, real = np.concatenate(preds), np.concatenate([split.doc(i)[1] for i in range(len(split.docs))])
    for k in ("velocity", "log_tempo"):
        j = TARGETS.index(k)
        ok = np.isfinite(real[:, j])
        r = float(np.corrcoef(pred[ok, j], real[ok, j])[0, 1]) if ok.sum() > 2 else math.nan
        res[f"{k}_r"] = r if math.isfinite(r) else None  # None: too few notes, or a constant prediction
    return res


# ----------------------------------------------------------------------------- training
def train_model(args: argparse.Namespace, train: Split, val: Split) -> tuple[PerformGRU, dict]:
    """Trains and returns the model at its best validation loss, and the run's record."""
    from .train import lr_lambda

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    fm, fs = mean_sd(train.features)
    tm, ts = mean_sd(train.targets[:, :REGRESSION])
    model = PerformGRU(train.features.shape[1], args.hidden,
                       {"feature_mean": fm, "feature_sd": fs, "target_mean": tm, "target_sd": ts}, dropout=args.dropout)
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": args.weight_decay},
                             {"params": others, "weight_decay": 0.0}], lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, args.warmup_steps, args.steps, 0.1))
    best = validate(model, val) | {"step": 0}
    best_state, curve = copy.deepcopy(model.state_dict()), [best | {"train_loss": None}]
    print(f"step 0: val {best['loss']:.4f}")
    t_start = t_window = time.perf_counter()
    step, notes, elapsed, window, window_notes = 0, 0, 0.0, [], 0
    while step < args.steps and (args.max_minutes is None or elapsed < args.max_minutes * 60):
        x, y, lengths = crop_batch(train, args.seq_len, args.batch_size, rng)
        loss = total_loss(*loss_terms(model, model(x, lengths), y))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        sched.step()
        step, elapsed = step + 1, time.perf_counter() - t_start  # wall time, validations included
        notes, window_notes = notes + int(lengths.sum()), window_notes + int(lengths.sum())
        window.append(loss.item())
        last = step >= args.steps or (args.max_minutes is not None and elapsed >= args.max_minutes * 60)
        if step % args.eval_every == 0 or last:
            notes_per_s = window_notes / (time.perf_counter() - t_window)
            res = validate(model, val) | {"step": step}
            improved = res["loss"] < best["loss"]
            if improved:
                best, best_state = res, copy.deepcopy(model.state_dict())
            curve.append(res | {"train_loss": float(np.mean(window)), "notes_per_s": notes_per_s,
                                "elapsed_min": elapsed / 60})
            print(f"step {step}/{args.steps}: train {np.mean(window):.4f} val {res['loss']:.4f}"
                  f"{' *' if improved else ''} velocity r {res['velocity_r'] or 0:.3f} ({notes_per_s:.0f} notes/s)")
            window, window_notes, t_window = [], 0, time.perf_counter()
    model.load_state_dict(best_state)
    return model.eval(), {"steps": step, "minutes": elapsed / 60, "notes_seen": notes, "best": best, "curve": curve}


# ----------------------------------------------------------------------------- export
def export_onnx(model: PerformGRU, path: str, n_features: int, opset: int = 17) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(OnnxPerform(model.eval()), (torch.zeros(1, 7, n_features),), path, dynamo=False,
                          opset_version=opset, input_names=["features"], output_names=["outputs"],
                          dynamic_axes={"features": {1: "T"}, "outputs": {1: "T"}})


@torch.no_grad()
def parity(model: PerformGRU, path: str, features: np.ndarray) -> float:
    """Max |ORT - torch| over one document's outputs; raises above 1e-3."""
    from .evaluate import onnx_session

    x = features[None].astype(np.float32)
    ort = onnx_session(path, threads=1).run(["outputs"], {"features": x})[0]
    diff = float(np.abs(ort - OnnxPerform(model.eval())(torch.from_numpy(x)).numpy()).max())
    if not diff < 1e-3:
        raise AssertionError(f"ONNX parity failed: max abs diff {diff}")
    return diff


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    manifest = load_manifest(args.data)
    n_features = len(manifest["features"])
    train, val = (load_split(args.data, name, n_features) for name in ("train", "validation"))
    print(f"{len(train.docs)} training documents ({len(train.features)} notes), {len(val.docs)} validation, "
          f"{n_features} features")
    model, record = train_model(args, train, val)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    export_onnx(model, args.out, n_features, args.opset)
    longest = max(range(len(val.docs)), key=lambda i: val.docs[i]["length"])
    diff = parity(model, args.out, val.doc(longest)[0])
    print(f"parity ok: max abs diff {diff:.2e} on a validation document of {val.docs[longest]['length']} notes")

    card = {
        "kind": KIND, "format_version": CARD_FORMAT_VERSION, "feature_version": manifest.get("feature_version"),
        "features": manifest["features"], "targets": TARGETS, "hidden": model.hidden, "layers": model.layers,
        "dropout": args.dropout,
        "parameters": model.n_params, "license": LICENSE, "date": datetime.date.today().isoformat(),
        "training": {"data": os.path.abspath(args.data), "steps": record["steps"], "minutes": record["minutes"],
                     "device": "cpu x1", "seq_len": args.seq_len, "batch_size": args.batch_size,
                     "notes_seen": record["notes_seen"]},
        "validation": record["best"],  # its step: where the exported state comes from
    }
    from .export import set_card

    set_card(args.out, card, doc="pianoforte score-to-performance GRU (Perform my part)")
    log = args.log or os.path.splitext(args.out)[0] + ".json"
    with open(log, "w") as f:
        json.dump({"args": vars(args), "card": card, "parity_max_abs_diff": diff, "curve": record["curve"]}, f,
                  indent=1)
    print(f"wrote {args.out} ({model.n_params} parameters, best val {record['best']['loss']:.4f} "
          f"at step {record['best']['step']}) and {log}")
    return {"onnx": args.out, "log": log, "card": card, "parity": diff, "curve": record["curve"]}
