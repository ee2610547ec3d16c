"""Training loop: AdamW, warm-up + cosine decay, validation, early stopping,
checkpoints with exact resume, metrics.jsonl + loss.png, optional DDP (torchrun).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from . import vocab as V
from .data import IGNORE, CropSampler, TokenSplit, load_manifest, validation_crops
from .features import BEAT_SIZE, KEY_SIZE, STATE_SIZE
from .model import ModelConfig, PerformanceGRU, control_from_bins, load_checkpoint_weights, load_onnx_weights

# Options that may be changed when resuming (everything else comes from the checkpoint).
RESUME_OVERRIDABLE = {
    "max_steps", "max_minutes", "stop_at", "patience", "eval_every", "log_every",
    "device", "threads", "progress", "data",
}


def add_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--data", help="token directory written by `pianoforte dataset`")
    g.add_argument("--out", default=None, help="run directory (default runs/<date-time>)")
    g.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if it exists")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="auto", help="auto | cpu | cuda")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    g.add_argument("--no-bf16", dest="bf16", action="store_false", help="CUDA: no bf16 autocast")
    g = p.add_argument_group("model")
    g.add_argument("--layers", type=int, default=2)
    g.add_argument("--hidden", type=int, default=512)
    g.add_argument("--embedding", type=int, default=256)
    g.add_argument("--dropout", type=float, default=0.1)
    g.add_argument("--format", type=int, default=2, choices=(1, 2, 3),
                   help="model format: 2 adds the key control and the music-state features, 3 also the beat "
                        "features (documents with beats in the token directory)")
    g.add_argument("--beat-skip", action="store_true",
                   help="format 3: the beat features also reach the logits through a linear map (zero at first)")
    g.add_argument("--beat-skip-lr-scale", type=float, default=30.0,
                   help="the beat skip's learning rate as a multiple of --lr (it learns from zero)")
    g.add_argument("--init-onnx", default=None,
                   help="warm start from this ONNX model's (or a .pt checkpoint's) weights "
                        "(new input columns start at zero)")
    g = p.add_argument_group("data")
    g.add_argument("--seq-len", type=int, default=512)
    g.add_argument("--batch-size", type=int, default=32, help="per process")
    g.add_argument("--control-dropout", type=float, default=0.2, help="share of crops without density control")
    g.add_argument("--key-dropout", type=float, default=0.25, help="share of crops without key control (formats 2, 3)")
    g.add_argument("--all-off", type=float, default=0.25,
                   help="share of crops with every control off (formats 2, 3; before the two above)")
    g.add_argument("--beat-dropout", type=float, default=0.2,
                   help="share of crops of documents with beats given no beats (format 3)")
    g.add_argument("--beat-share", type=float, default=None,
                   help="share of crops drawn from the documents with beats (format 3; default: every "
                        "document by its length)")
    g.add_argument("--max-transpose", type=int, default=4)
    g.add_argument("--max-stretch", type=float, default=0.05)
    g.add_argument("--no-augment", dest="augment", action="store_false")
    g.add_argument("--val-crops", type=int, default=64, help="fixed validation crops (seq-len each)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--lr", type=float, default=2e-3)
    g.add_argument("--min-lr-ratio", type=float, default=0.1)
    g.add_argument("--warmup-steps", type=int, default=200)
    g.add_argument("--weight-decay", type=float, default=0.01)
    g.add_argument("--grad-clip", type=float, default=1.0)
    g = p.add_argument_group("stopping")
    g.add_argument("--max-steps", type=int, default=5000, help="also the length of the LR schedule")
    g.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of the run (all sessions)")
    g.add_argument("--time-schedule", action="store_true",
                   help="decay the LR over --max-minutes too (whichever of steps / time is further); "
                        "resume is then exact up to wall-clock jitter")
    g.add_argument("--stop-at", type=int, default=None, help="checkpoint and stop after this step (schedule unchanged)")
    g.add_argument("--patience", type=int, default=10, help="validations without improvement before stopping")
    g.add_argument("--eval-every", type=int, default=250)
    g.add_argument("--log-every", type=int, default=10)


def lr_lambda(step: int, warmup: int, total: int, min_ratio: float, time_fraction: float = 0.0) -> float:
    """Linear warm-up, then cosine from 1 to ``min_ratio``; progress is the larger of
    the step progress and ``time_fraction`` (fraction of the wall-clock budget used)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), time_fraction))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class _Schedule:
    """Picklable LR lambda (so the scheduler state_dict is complete)."""

    def __init__(self, warmup: int, total: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = warmup, total, min_ratio
        self.time_fraction = 0.0  # set by the loop with --time-schedule

    def __call__(self, step: int) -> float:
        return lr_lambda(step, self.warmup, self.total, self.min_ratio, self.time_fraction)


def _save(obj, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rank_state(sampler_state: dict, device: torch.device) -> dict:
    return {
        "sampler": sampler_state,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "python_rng": random.getstate(),
    }


def _load_rank_state(state: dict, sampler: CropSampler, device: torch.device) -> None:
    sampler.load_state_dict(state["sampler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    random.setstate(state["python_rng"])


_BF16 = {"enabled": True}


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and _BF16["enabled"])


def _probe_bf16(model: PerformanceGRU, device: torch.device) -> bool:
    """bf16 autocast on CUDA needs a cuDNN with bf16 RNN support; fall back to fp32 (TF32) without it."""
    if device.type != "cuda":
        return False
    rng = torch.cuda.get_rng_state(device)  # the probe's dropout must not shift the RNG stream
    try:
        x = torch.zeros(4, 2, dtype=torch.int64, device=device)
        c = control_from_bins(torch.zeros(4, 2, dtype=torch.int64, device=device))
        with _autocast(device):
            logits, _ = model(x, c)
        logits.float().sum().backward()
        model.zero_grad(set_to_none=True)
        return True
    except RuntimeError as e:
        print(f"bf16 autocast unavailable for the GRU ({e}); training in fp32/TF32", file=sys.stderr)
        model.zero_grad(set_to_none=True)
        return False
    finally:
        torch.cuda.set_rng_state(rng, device)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean",
            allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy; with ``allowed`` (bool [T, B, VOCAB_SIZE]) over the events the grammar allows."""
    logits = logits.float()
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return F.cross_entropy(
        logits.reshape(-1, V.VOCAB_SIZE), targets.reshape(-1), ignore_index=IGNORE, reduction=reduction
    )


def forward_batch(model, batch, device):
    """(x, c, k, s, a, y, b) numpy batch -> (logits, targets, allowed) on ``device``."""
    device = torch.device(device)
    cfg = getattr(model, "module", model).cfg
    if not cfg.beat_size:
        batch = batch[:-1]  # the beat features: format 3 only
    x, c, k, st, a, y, *b = (torch.from_numpy(v).to(device, non_blocking=True) for v in batch)
    with _autocast(device):
        logits, _ = model(x, control_from_bins(c), None, k, st, *b)
    if cfg.format_version < 2:
        return logits, y, None
    # The codec's streams never break the grammar (tested on MAESTRO); should a target do so
    # anyway, it stays allowed rather than giving an infinite loss.
    a.scatter_(-1, y.clamp(min=0).unsqueeze(-1), True)
    return logits, y, a


@torch.no_grad()
def validate(model: PerformanceGRU, batches, device) -> dict:
    was_training = model.training
    model.eval()
    total, count, correct = 0.0, 0, 0
    for batch in batches:
        logits, y, allowed = forward_batch(model, batch, device)
        total += loss_fn(logits, y, "sum", allowed).item()
        mask = y != IGNORE
        if allowed is not None:
            logits = logits.float().masked_fill(~allowed, float("-inf"))
        correct += ((logits.argmax(-1) == y) & mask).sum().item()
        count += mask.sum().item()
    model.train(was_training)
    return {"val_loss": total / max(count, 1), "val_accuracy": correct / max(count, 1)}


def _filter_metrics(path: str, max_step: int) -> None:
    """Drop metric lines written after the checkpoint we resume from."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= max_step]
    with open(path, "w") as f:
        f.writelines(lines)


# ----------------------------------------------------------------------------- the run, step by step
# train() below reads as the list of its steps: processes and device, run directory (new or
# resumed), data, model, optimiser, restored progress, the loop, the summary.


def train(args: argparse.Namespace, explicit: set[str] | None = None) -> dict:
    """Trains (or resumes) a model as ``args`` say; returns the run's summary. ``explicit``: the
    options given on the command line (those in RESUME_OVERRIDABLE override the checkpoint's)."""
    explicit = explicit if explicit is not None else set(vars(args))
    procs = start_processes(args)
    args, ckpt = open_run_dir(args, explicit, procs)
    data = load_data(args, procs)
    model = build_model(args, ckpt, procs)
    optimizer, scheduler = build_optimizer(model, args, procs.device)
    run = Run(args, procs, data, model, optimizer, scheduler)
    if ckpt is not None:
        run.restore(ckpt)
    ddp_model = prepare_for_training(model, args, procs)
    run.write_config()
    stopped = run.loop(ddp_model)
    return finish(run, stopped)


@dataclass
class Processes:
    """This process's place in the run (the only process, or one rank under torchrun) and its device."""

    distributed: bool
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def master(self) -> bool:
        return self.rank == 0


def start_processes(args: argparse.Namespace) -> Processes:
    """Resolves ``--device auto``, joins the process group under torchrun, sets TF32 and threads."""
    distributed = "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank, world, local_rank = 0, 1, 0
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if args.device == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
    device = torch.device(f"cuda:{local_rank}" if args.device == "cuda" else args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.threads:
        torch.set_num_threads(args.threads)
    return Processes(distributed, rank, world, local_rank, device)


def open_run_dir(
    args: argparse.Namespace, explicit: set[str], procs: Processes
) -> tuple[argparse.Namespace, dict | None]:
    """Creates the run directory; with ``--resume`` and a last.pt there, the options are the
    checkpoint's (but for the overridable ones given explicitly). Returns (args, checkpoint or None)."""
    if args.out is None:
        args.out = os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    if procs.distributed:  # all ranks must agree on the run directory
        box = [args.out]
        dist.broadcast_object_list(box, src=0)
        args.out = box[0]
    run_dir = args.out
    os.makedirs(run_dir, exist_ok=True)
    last_path = os.path.join(run_dir, "last.pt")
    ckpt = None
    if args.resume and os.path.exists(last_path):
        ckpt = torch.load(last_path, map_location="cpu", weights_only=False)
        saved = dict(ckpt["args"])
        for k in RESUME_OVERRIDABLE & explicit:
            saved[k] = getattr(args, k)
        saved["out"], saved["resume"], saved["device"] = run_dir, True, args.device
        saved["stop_at"] = args.stop_at  # an interruption point belongs to one session only
        args = argparse.Namespace(**saved)
    elif args.resume and procs.master:
        print(f"no checkpoint at {last_path}: starting a new run", file=sys.stderr)
    if args.data is None:
        raise SystemExit("--data is required")
    return args, ckpt


@dataclass
class Data:
    manifest: dict
    train_split: TokenSplit
    sampler: CropSampler  # this rank's training crops
    val_batches: list | None  # the fixed validation batches (rank 0 only)


def load_data(args: argparse.Namespace, procs: Processes) -> Data:
    manifest = load_manifest(args.data)
    train_split = TokenSplit.load(args.data, "train")
    val_split = TokenSplit.load(args.data, "validation")
    fmt = getattr(args, "format", 1)
    if fmt == 3 and procs.master and not train_split.n_beat_docs:
        print(f"format 3, but no training document in {args.data} has beats", file=sys.stderr)
    sampler = CropSampler(
        train_split, args.seq_len, args.batch_size, seed=args.seed, rank=procs.rank, augment=args.augment,
        max_transpose=args.max_transpose, max_stretch=args.max_stretch, control_dropout=args.control_dropout,
        key_dropout=args.key_dropout if fmt >= 2 else 0.0,
        all_off=args.all_off if fmt >= 2 else 0.0,
        beats=fmt == 3, beat_dropout=getattr(args, "beat_dropout", 0.2),
        beat_share=getattr(args, "beat_share", None) if fmt == 3 else None,
    )
    val_batches = validation_crops(val_split, args.seq_len, args.val_crops, args.batch_size) if procs.master else None
    return Data(manifest, train_split, sampler, val_batches)


def build_model(args: argparse.Namespace, ckpt: dict | None, procs: Processes) -> PerformanceGRU:
    """The model on its device: seeded initial weights, or a warm start from ``--init-onnx`` (new
    runs only). Leaves torch's RNG on this rank's dropout stream."""
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    fmt = getattr(args, "format", 1)
    mcfg = ModelConfig(args.layers, args.hidden, args.embedding, args.dropout,
                       *((KEY_SIZE, STATE_SIZE) if fmt >= 2 else (0, 0)), BEAT_SIZE if fmt == 3 else 0,
                       beat_skip=getattr(args, "beat_skip", False))
    model = PerformanceGRU(mcfg)
    if args.init_onnx and ckpt is None:
        load = load_checkpoint_weights if args.init_onnx.endswith(".pt") else load_onnx_weights
        info = load(model, args.init_onnx)
        if procs.master:
            print(f"warm start from {info['source']}", file=sys.stderr)
    model = model.to(procs.device)
    torch.manual_seed(args.seed * 1000 + procs.rank + 1)  # per-rank dropout stream
    return model


def build_optimizer(model: PerformanceGRU, args: argparse.Namespace, device: torch.device):
    """AdamW (weight decay on the matrices but the embedding) and the warm-up + cosine schedule."""
    named = [(n, p) for n, p in model.named_parameters() if not n.startswith("beat_head")]
    decay = [p for n, p in named if p.dim() >= 2 and not n.startswith("embed")]
    no_decay = [p for n, p in named if not (p.dim() >= 2 and not n.startswith("embed"))]
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if model.beat_head is not None:
        # A table from beat features to logits, learned from zero: Adam moves each weight by about
        # the learning rate a step, so it gets its own (and no decay towards zero).
        lr = args.lr * getattr(args, "beat_skip_lr_scale", 1.0)
        groups.append({"params": list(model.beat_head.parameters()), "weight_decay": 0.0, "lr": lr})
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.99), fused=device.type == "cuda")
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _Schedule(args.warmup_steps, args.max_steps, args.min_lr_ratio)
    )
    return optimizer, scheduler


def prepare_for_training(model: PerformanceGRU, args: argparse.Namespace, procs: Processes):
    """bf16 autocast if this CUDA device can; the model wrapped in DDP under torchrun."""
    _BF16["enabled"] = args.device == "cuda" and getattr(args, "bf16", True) and _probe_bf16(model, procs.device)
    if not procs.distributed:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[procs.local_rank] if procs.device.type == "cuda" else None
    )


@dataclass
class Progress:
    """Where the run stands; a checkpoint carries it beside the weights and the optimiser."""

    step: int = 0
    tokens_seen: int = 0
    elapsed_s: float = 0.0  # training wall-clock time over all sessions
    best_val: float = float("inf")
    bad_evals: int = 0  # validations since the best one
    last_eval_step: int = -1


@dataclass
class _Window:
    """Training losses and tokens since the last train record."""

    t0: float
    loss: float = 0.0
    n: int = 0
    tokens: int = 0


class Run:
    """A training run's state and what the loop does with it: train steps, logs, validation,
    checkpoints."""

    def __init__(self, args, procs: Processes, data: Data, model: PerformanceGRU, optimizer, scheduler):
        self.args, self.procs, self.data = args, procs, data
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.progress = Progress()
        self.run_dir = args.out
        self.last_path = os.path.join(self.run_dir, "last.pt")
        self.metrics_path = os.path.join(self.run_dir, "metrics.jsonl")
        self.data_info = {
            "data": os.path.abspath(args.data),
            "hours": data.train_split.hours,
            "train_tokens": data.train_split.n_tokens,
            "beat_docs": data.train_split.n_beat_docs,
            "docs": len(data.train_split),
            "manifest_vocabulary": data.manifest["vocabulary"],
        }
        # The sampler state right after the last *consumed* batch (the next one is prepared
        # ahead in a thread): what a checkpoint stores, for an exact resume. Set by the loop.
        self.consumed: dict | None = None
        self.pbar: tqdm | None = None

    # ------------------------------------------------------------------ resume, config, logs
    def restore(self, ckpt: dict) -> None:
        """Weights, optimiser, schedule, progress and (same world size) this rank's data and RNG streams."""
        args, procs = self.args, self.procs
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scheduler.lr_lambdas[0] = _Schedule(args.warmup_steps, args.max_steps, args.min_lr_ratio)
        self.progress = Progress(ckpt["step"], ckpt["tokens_seen"], ckpt["elapsed_s"], ckpt["best_val"],
                                 ckpt["bad_evals"], last_eval_step=ckpt["step"])
        if ckpt["world_size"] == procs.world:
            _load_rank_state(ckpt["ranks"][procs.rank], self.data.sampler, procs.device)
        elif procs.master:
            print("world size changed since the checkpoint: data streams re-seeded", file=sys.stderr)
        if procs.master:
            _filter_metrics(self.metrics_path, self.progress.step)

    def write_config(self) -> None:
        if self.procs.master:
            with open(os.path.join(self.run_dir, "config.json"), "w") as f:
                json.dump({**vars(self.args), "world_size": self.procs.world, "parameters": self.model.n_params}, f,
                          indent=2)

    def log(self, record: dict) -> None:
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def checkpoint(self, path: str, rank_states, with_optimizer: bool = True) -> None:
        p, device, world = self.progress, self.procs.device, self.procs.world
        obj = {
            "model": self.model.state_dict(),
            "model_config": self.model.cfg.to_dict(),
            "args": vars(self.args),
            "step": p.step,
            "tokens_seen": p.tokens_seen,
            "elapsed_s": p.elapsed_s,
            "best_val": p.best_val,
            "bad_evals": p.bad_evals,
            "world_size": world,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{world}",
            "data_info": self.data_info,
        }
        if with_optimizer:
            obj |= {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "ranks": rank_states}
        _save(obj, path)

    # ------------------------------------------------------------------ the loop
    def loop(self, ddp_model) -> str:
        """Trains until a stop condition (every rank stops together); returns which one."""
        args, p, sampler = self.args, self.progress, self.data.sampler
        stop_requested = {"flag": False}

        def on_signal(signum, frame):
            stop_requested["flag"] = True

        old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        time_schedule = bool(getattr(args, "time_schedule", False) and args.max_minutes)
        if time_schedule:
            self.scheduler.lr_lambdas[0].time_fraction = p.elapsed_s / (args.max_minutes * 60)
        self.pbar = tqdm(total=args.max_steps, initial=p.step, disable=not (self.procs.master and args.progress),
                         dynamic_ncols=True, unit="step")
        self.consumed = sampler.state_dict()
        prefetch = ThreadPoolExecutor(1, thread_name_prefix="batches")
        pending = prefetch.submit(sampler.next_batch)
        self.model.train()
        window = _Window(time.perf_counter())
        t_last = time.perf_counter()
        try:
            while True:
                reason = self.stop_reason(stop_requested["flag"])
                if self.should_stop(reason is not None):
                    reason = reason or "other rank"
                    break
                batch = pending.result()
                self.consumed = sampler.state_dict()  # the sampler state after this batch
                pending = prefetch.submit(sampler.next_batch)
                loss, grad_norm, n_tok = self.train_step(ddp_model, batch)
                now = time.perf_counter()
                p.elapsed_s += now - t_last
                t_last = now
                if time_schedule:
                    self.follow_the_clock()
                self.scheduler.step()
                window.loss += loss.item()
                window.n += 1
                window.tokens += n_tok
                if p.step % args.log_every == 0 or p.step == args.max_steps:
                    self.log_training(window, grad_norm, now)
                    window = _Window(now)
                self.pbar.update(1)
                early = False
                if p.step % args.eval_every == 0:
                    t_eval = time.perf_counter()
                    early = self.evaluate_and_checkpoint()
                    window.t0 += time.perf_counter() - t_eval  # keep tokens/s about training only
                if self.should_stop(early):
                    reason = "early_stopping"
                    break
            if p.last_eval_step != p.step:
                self.evaluate_and_checkpoint()
        finally:
            prefetch.shutdown(wait=True, cancel_futures=True)
            self.pbar.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        return reason

    def stop_reason(self, signalled: bool) -> str | None:
        """Why this rank would stop before the next step (None: go on)."""
        args, p = self.args, self.progress
        if p.step >= args.max_steps:
            return "max_steps"
        if args.stop_at is not None and p.step >= args.stop_at:
            return "stop_at"
        if args.max_minutes is not None and p.elapsed_s >= args.max_minutes * 60:
            return "max_minutes"
        if signalled:
            return "signal"
        return None

    def should_stop(self, local: bool) -> bool:
        """True on every rank when any rank wants to stop."""
        if not self.procs.distributed:
            return local
        t = torch.tensor([1.0 if local else 0.0], device=self.procs.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def train_step(self, ddp_model, batch):
        """One optimiser step on ``batch``; returns (loss, gradient norm, target tokens over all ranks)."""
        logits, y, allowed = forward_batch(ddp_model, batch, self.procs.device)
        loss = loss_fn(logits, y, allowed=allowed)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.grad_clip)
        self.optimizer.step()
        self.progress.step += 1
        n_tok = int((y != IGNORE).sum().item()) * self.procs.world
        self.progress.tokens_seen += n_tok
        return loss, grad_norm, n_tok

    def follow_the_clock(self) -> None:
        """--time-schedule: the LR schedule's progress includes the share of --max-minutes used
        (rank 0's, on every rank)."""
        frac = self.progress.elapsed_s / (self.args.max_minutes * 60)
        if self.procs.distributed:  # every rank must use the same LR
            t = torch.tensor([frac], dtype=torch.float64, device=self.procs.device)
            dist.broadcast(t, src=0)
            frac = float(t.item())
        self.scheduler.lr_lambdas[0].time_fraction = frac

    def log_training(self, window: _Window, grad_norm, now: float) -> None:
        p = self.progress
        dt = now - window.t0
        rec = {"kind": "train", "step": p.step, "loss": window.loss / window.n,
               "lr": self.scheduler.get_last_lr()[0], "grad_norm": float(grad_norm),
               "tokens_per_s": window.tokens / dt, "tokens_seen": p.tokens_seen, "elapsed_min": p.elapsed_s / 60}
        if self.procs.master:
            self.log(rec)
        self.pbar.set_postfix(loss=f"{rec['loss']:.3f}", tok_s=f"{rec['tokens_per_s']:.0f}")

    def evaluate_and_checkpoint(self) -> bool:
        """Validation + checkpoint; returns True when early stopping triggers (on rank 0)."""
        procs, p = self.procs, self.progress
        rank_states = [None] * procs.world
        if procs.distributed:
            dist.all_gather_object(rank_states, _rank_state(self.consumed, procs.device))
        else:
            rank_states = [_rank_state(self.consumed, procs.device)]
        p.last_eval_step = p.step
        if not procs.master:
            return False
        res = validate(self.model, self.data.val_batches, procs.device)
        improved = res["val_loss"] < p.best_val
        if improved:
            p.best_val, p.bad_evals = res["val_loss"], 0
        else:
            p.bad_evals += 1
        self.log({"kind": "val", "step": p.step, "tokens_seen": p.tokens_seen, "elapsed_min": p.elapsed_s / 60, **res,
                  "best_val_loss": p.best_val})
        if improved:
            self.checkpoint(os.path.join(self.run_dir, "best.pt"), None, with_optimizer=False)
        self.checkpoint(self.last_path, rank_states)
        try:
            from .plot import plot_metrics

            plot_metrics(self.metrics_path, os.path.join(self.run_dir, "loss.png"))
        except Exception as e:  # plotting must never kill a run
            print(f"plot failed: {e}", file=sys.stderr)
        if self.pbar is not None:
            self.pbar.write(f"step {p.step}: val_loss {res['val_loss']:.4f} acc {res['val_accuracy']:.3f}"
                            f"{' *' if improved else ''}")
        return p.bad_evals >= self.args.patience


def finish(run: Run, stopped: str) -> dict:
    """The summary (logged and printed by rank 0); leaves the process group."""
    p, procs = run.progress, run.procs
    summary = {"run_dir": run.run_dir, "step": p.step, "tokens_seen": p.tokens_seen, "minutes": p.elapsed_s / 60,
               "best_val_loss": p.best_val, "stopped": stopped, "rank": procs.rank, "world_size": procs.world}
    if procs.master:
        run.log({"kind": "end", **summary})
        print(json.dumps(summary))
    if procs.distributed:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def load_checkpoint(path: str, device="cpu") -> tuple[PerformanceGRU, dict]:
    """A model from best.pt / last.pt (or a run directory: its best.pt)."""
    if os.path.isdir(path):
        path = os.path.join(path, "best.pt")
    ckpt = torch.load(path, map_location=device, weights_only=False)
    model = PerformanceGRU(ModelConfig(**ckpt["model_config"]))  # old checkpoints: format 1
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt
