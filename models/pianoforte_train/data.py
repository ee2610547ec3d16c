"""Token files, on-the-fly augmentation and the random-crop sampler.

Layout of a token directory DIR (written by ``pianoforte dataset``):
  DIR/manifest.json        {"vocabulary": {"version", "size", ...}, "splits": {...}}
  DIR/{split}.npy          1-D uint16, all documents concatenated
  DIR/{split}.docs.json    [{"offset", "length", "source", "piece", "duration_s", "notes"[, "beats"]}, ...]

A document's optional "beats" are its annotated beats, ``[[step, 0|1], ...]``: steps on the 10 ms
clock from the document's start, 1 = downbeat (features.beat_features). Without them (or with
none) the document is in free time throughout.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from . import vocab as V
from .features import KEY_SIZE, STATE_SIZE, beat_features, crop_inputs, no_beat

IGNORE = -100  # target value of padding (ignored by the loss)


# ---------------------------------------------------------------- loading
@dataclass
class TokenSplit:
    name: str
    tokens: np.ndarray  # uint16 memmap
    docs: list[dict]

    @classmethod
    def load(cls, root: str, name: str) -> TokenSplit:
        tokens = np.load(os.path.join(root, f"{name}.npy"), mmap_mode="r")
        with open(os.path.join(root, f"{name}.docs.json")) as f:
            docs = json.load(f)
        if tokens.ndim != 1:
            raise ValueError(f"{name}.npy must be 1-D, got shape {tokens.shape}")
        for d in docs:
            if d["offset"] < 0 or d["offset"] + d["length"] > len(tokens):
                raise ValueError(f"{name}.docs.json: document {d.get('source')} out of bounds")
            if d.get("beats") is not None and any(len(b) != 2 for b in d["beats"]):
                raise ValueError(f"{name}.docs.json: document {d.get('source')}: beats are [step, downbeat] pairs")
        docs = [d for d in docs if d["length"] > 0]
        return cls(name, tokens, docs)

    def __len__(self) -> int:
        return len(self.docs)

    def doc(self, i: int) -> np.ndarray:
        d = self.docs[i]
        return np.asarray(self.tokens[d["offset"] : d["offset"] + d["length"]]).astype(np.int64)

    def beats(self, i: int) -> np.ndarray | None:
        """The document's beats [n, 2] int64 (step, downbeat 0/1), or None when it has none."""
        b = self.docs[i].get("beats")
        if not b:
            return None
        return np.asarray(b, dtype=np.int64).reshape(-1, 2)

    @property
    def n_beat_docs(self) -> int:
        """Documents with beats."""
        return sum(1 for d in self.docs if d.get("beats"))

    @property
    def n_tokens(self) -> int:
        return int(sum(d["length"] for d in self.docs))

    @property
    def hours(self) -> float:
        return float(sum(d.get("duration_s", 0.0) for d in self.docs)) / 3600.0


def load_manifest(root: str) -> dict:
    with open(os.path.join(root, "manifest.json")) as f:
        manifest = json.load(f)
    voc = manifest.get("vocabulary", {})
    if voc.get("version") != V.VOCABULARY_VERSION or voc.get("size") != V.VOCAB_SIZE:
        raise ValueError(
            f"{root}: vocabulary {voc.get('version')}/{voc.get('size')} unsupported "
            f"(expected version {V.VOCABULARY_VERSION}, size {V.VOCAB_SIZE})"
        )
    return manifest


# ----------------------------------------------------------- augmentation
def encode(times: np.ndarray, events: np.ndarray, end_time: int | None = None) -> np.ndarray:
    """Non-shift ``events`` at absolute step ``times`` (non-decreasing) -> token stream.

    Gaps are written longest first: k x the longest shift then one SHIFT(remainder).
    ``end_time`` (>= last time) appends trailing shifts.
    """
    times = np.asarray(times, dtype=np.int64)
    events = np.asarray(events, dtype=np.int64)
    last = times[-1] if len(times) else 0
    slots = np.append(times, last if end_time is None else end_time)
    gaps = np.diff(slots, prepend=0)
    if (gaps < 0).any():
        raise ValueError("times must be non-decreasing")
    n_max = gaps // V.MAX_SHIFT_STEPS
    rem = gaps % V.MAX_SHIFT_STEPS
    has_rem = (rem > 0).astype(np.int64)
    has_event = np.ones_like(gaps)
    has_event[-1] = 0
    seg = n_max + has_rem + has_event
    starts = np.cumsum(seg) - seg
    out = np.full(int(seg.sum()), V.SHIFT_MAX, dtype=np.int64)
    r = has_rem.astype(bool)
    out[(starts + n_max)[r]] = V.TIME_SHIFT - 1 + rem[r]
    out[(starts + n_max + has_rem)[:-1]] = events
    return out


def transpose(tokens: np.ndarray, semitones: int) -> np.ndarray:
    """Shift NOTE_ON/NOTE_OFF by ``semitones``; notes leaving MIN_PITCH..MAX_PITCH are dropped (ON and OFF)."""
    if semitones == 0:
        return tokens
    tokens = np.asarray(tokens, dtype=np.int64)
    is_note = tokens < V.TIME_SHIFT
    pitch = np.where(tokens < V.NOTE_OFF, tokens, tokens - V.NOTE_OFF) + semitones
    keep = ~is_note | ((pitch >= 0) & (pitch < V.N_PITCHES))
    out = np.where(is_note, tokens + semitones, tokens)
    return out[keep]


def time_stretch(tokens: np.ndarray, factor: float) -> np.ndarray:
    """Scale time by ``factor``: absolute step times are scaled and rounded
    (half up) and the TIME_SHIFT tokens re-derived from the rounded absolute
    times, so no rounding error accumulates."""
    if factor == 1.0:
        return tokens
    tokens = np.asarray(tokens, dtype=np.int64)
    shift = V.is_shift(tokens)
    cum = np.cumsum(V.shift_steps(tokens))
    ev = np.flatnonzero(~shift)
    end = cum[-1] if len(cum) else 0
    new_times = np.floor(cum[ev] * factor + 0.5).astype(np.int64)
    new_end = int(np.floor(end * factor + 0.5))
    return encode(new_times, tokens[ev], new_end)


def canonical_velocities(tokens: np.ndarray) -> np.ndarray:
    """Drops the VELOCITY events that the codec would not write: one not followed by a NOTE_ON
    (its note was transposed out of range) and one repeating the bin already in effect."""
    tokens = np.asarray(tokens, dtype=np.int64)
    is_vel = (tokens >= V.VELOCITY) & (tokens < V.PEDAL_DOWN)
    nxt = np.append(tokens[1:], V.START)
    keep = ~is_vel | (nxt < V.NOTE_OFF)
    tokens = tokens[keep]
    vel_pos = np.flatnonzero((tokens >= V.VELOCITY) & (tokens < V.PEDAL_DOWN))
    repeat = np.zeros(len(tokens), dtype=bool)
    repeat[vel_pos[1:]] = tokens[vel_pos[1:]] == tokens[vel_pos[:-1]]
    return tokens[~repeat]


def augment(tokens: np.ndarray, semitones: int = 0, factor: float = 1.0) -> np.ndarray:
    """Transposition then time-stretch; the result is a stream the codec could have written
    (the grammar of features.py holds), so the shifts are re-derived even for factor 1."""
    if semitones == 0 and factor == 1.0:
        return tokens
    moved = transpose(tokens, semitones)
    if len(moved) != len(tokens):
        moved = canonical_velocities(moved)
        if factor == 1.0:
            shift = V.is_shift(moved)
            cum = np.cumsum(V.shift_steps(moved))
            ev = np.flatnonzero(~shift)
            return encode(cum[ev], moved[ev], cum[-1] if len(cum) else 0)
    return time_stretch(moved, factor)


def augment_beats(beats: np.ndarray | None, factor: float = 1.0) -> np.ndarray | None:
    """The beats of a document augmented as ``augment(tokens, semitones, factor)``: transposition
    leaves them alone, the time-stretch scales their steps exactly as the events' times (half up)."""
    if beats is None or factor == 1.0:
        return beats
    out = np.array(beats, dtype=np.int64)
    out[:, 0] = np.floor(out[:, 0] * factor + 0.5).astype(np.int64)
    return out


# ---------------------------------------------------------------- sampler
def crop(tokens: np.ndarray, start: int, seq_len: int, use_control: bool = True, use_key: bool | None = None,
         beats: np.ndarray | None = None):
    """(x, c, k, s, a, y, b) of length ``seq_len`` (padded) for the crop starting at event ``start``.

    x = [START, e_s .. e_{s+L-2}], y = e_s .. e_{s+L-1}, c[t] = density bin of y[t] (or no control),
    k[t] = key control (pitch-class histogram around y[t], zeros when dropped), s[t] = music-state
    features before y[t] (from the whole document's history), a[t] = the grammar's allowed events,
    b[t] = beat features at the time of y[t] in the grid ``beats`` (free time without beats and in
    the padding).
    """
    use_key = use_control if use_key is None else use_key
    y_real = tokens[start : start + seq_len]
    n = len(y_real)
    x = np.zeros(seq_len, dtype=np.int64)
    y = np.full(seq_len, IGNORE, dtype=np.int64)
    c = np.full(seq_len, V.NO_CONTROL, dtype=np.int64)
    k = np.zeros((seq_len, KEY_SIZE), dtype=np.float32)
    st = np.zeros((seq_len, STATE_SIZE), dtype=np.float32)
    a = np.ones((seq_len, V.VOCAB_SIZE), dtype=bool)
    b = no_beat(seq_len)
    x[0] = V.START
    x[1:n] = y_real[: n - 1]
    y[:n] = y_real
    if use_control:
        c[:n] = V.density_bins(tokens, slice(start, start + n))
    st[:n], key, a[:n] = crop_inputs(tokens, start, n)
    if use_key:
        k[:n] = key
    if beats is not None and len(beats):
        b[:n] = beat_features(V.event_times(tokens[: start + n])[start:], beats)
    return x, c, k, st, a, y, b


def stack_crops(crops) -> tuple:
    """List of crop tuples -> time-major batch arrays (x, c, k, s, a, y, b), [T, B, ...]."""
    return tuple(np.stack(parts, 1) for parts in zip(*crops, strict=True))


class CropSampler:
    """Random crops with augmentation; documents drawn proportionally to their length.

    The whole state is one NumPy PCG64 generator (seeded from (seed, rank)), so
    ``state_dict()`` / ``load_state_dict()`` give an exact resume.

    ``beats`` (format 3): crops of documents with beats carry their beat features but for a share
    ``beat_dropout`` of them, which are given free time (as the engine plays without a beat clock).
    The dropout coin is drawn for every crop, with or without beats, so the stream of draws does
    not depend on the data. Without ``beats`` no coin is drawn (the format-2 stream) and every crop
    is in free time.

    ``beat_share`` (format 3): the share of crops drawn from the documents with beats (each group by
    length within), to give the beat input more of the training when annotated documents are a
    minority; ``None`` draws every document by its length (the stream of earlier runs).
    """

    def __init__(
        self,
        split: TokenSplit,
        seq_len: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        augment: bool = True,
        max_transpose: int = 4,
        max_stretch: float = 0.05,
        control_dropout: float = 0.2,
        key_dropout: float = 0.0,
        all_off: float = 0.0,
        beats: bool = False,
        beat_dropout: float = 0.2,
        beat_share: float | None = None,
    ):
        if len(split) == 0:
            raise ValueError(f"split {split.name} has no documents")
        self.split = split
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.augment = augment
        self.max_transpose = max_transpose
        self.max_stretch = max_stretch
        self.control_dropout = control_dropout
        self.key_dropout = key_dropout
        self.all_off = all_off
        self.beats = beats
        self.beat_dropout = beat_dropout
        lengths = np.array([d["length"] for d in split.docs], dtype=np.float64)
        self.cdf = np.cumsum(lengths) / lengths.sum()
        self.groups = None if beat_share is None else _beat_groups(split, lengths, beat_share)
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, rank])))
        self.batches = 0

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.batches = state["batches"]

    def draw_document(self) -> int:
        rng = self.rng
        if self.groups is None:
            return _draw(self.cdf, rng)
        share, (with_beats, cdf_with), (without, cdf_without) = self.groups
        if rng.random() < share:
            return int(with_beats[_draw(cdf_with, rng)])
        return int(without[_draw(cdf_without, rng)])

    def sample(self):
        rng = self.rng
        i = self.draw_document()
        semitones = int(rng.integers(-self.max_transpose, self.max_transpose + 1))
        factor = float(rng.uniform(1 - self.max_stretch, 1 + self.max_stretch))
        use_control = bool(rng.random() >= self.control_dropout)
        if self.key_dropout or self.all_off:
            use_key = bool(rng.random() >= self.key_dropout)
            if rng.random() < self.all_off:
                use_control = use_key = False
        else:
            use_key = use_control
        use_beats = self.beats and bool(rng.random() >= self.beat_dropout)
        tokens = self.split.doc(i)
        beats = self.split.beats(i) if use_beats else None
        if self.augment:
            tokens = augment(tokens, semitones, factor)
            beats = augment_beats(beats, factor)
        start = int(rng.integers(0, max(len(tokens) - self.seq_len, 0) + 1))
        return crop(tokens, start, self.seq_len, use_control, use_key, beats)

    def next_batch(self):
        """Arrays [T, B, ...]: inputs, control bins, key control, state features, allowed events, targets,
        beat features."""
        batch = stack_crops([self.sample() for _ in range(self.batch_size)])
        self.batches += 1
        return batch


def _draw(cdf: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with the probabilities whose running sum is ``cdf``."""
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _beat_groups(split: TokenSplit, lengths: np.ndarray, share: float):
    """(share, (indices, cdf) of the documents with beats, (indices, cdf) of the others) for
    ``CropSampler``; a split with only one kind draws from it alone."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"beat share {share} is not between 0 and 1")
    has = np.array([split.beats(i) is not None for i in range(len(split))])
    groups = []
    for members in (np.flatnonzero(has), np.flatnonzero(~has)):
        cdf = np.cumsum(lengths[members]) / lengths[members].sum() if len(members) else None
        groups.append((members, cdf))
    if groups[0][1] is None:
        share = 0.0
    elif groups[1][1] is None:
        share = 1.0
    return (share, *groups)


def validation_crops(split: TokenSplit, seq_len: int, n_crops: int, batch_size: int, seed: int = 1234,
                     use_control: bool = False):
    """A fixed list of batches of un-augmented crops (same for every run); controls off by
    default (the unconditioned loss is the headline figure); documents with beats have them."""
    rng = np.random.Generator(np.random.PCG64(seed))
    lengths = np.array([d["length"] for d in split.docs], dtype=np.float64)
    cdf = np.cumsum(lengths) / lengths.sum()
    crops = []
    for _ in range(n_crops):
        i = _draw(cdf, rng)
        tokens = split.doc(i)
        start = int(rng.integers(0, max(len(tokens) - seq_len, 0) + 1))
        crops.append(crop(tokens, start, seq_len, use_control, beats=split.beats(i)))
    return [stack_crops(crops[b : b + batch_size]) for b in range(0, n_crops, batch_size)]


# ---------------------------------------------------------- synthetic data
def synthetic_doc(rng: np.random.Generator, n_notes: int) -> tuple[np.ndarray, float]:
    """A random but well-formed performance (notes, velocities, pedal) in the codec's canonical
    order, so the grammar of features.py holds; returns (tokens, duration_s)."""
    onsets = np.cumsum(rng.integers(0, 40, n_notes))
    durs = rng.integers(5, 150, n_notes)
    pitches = rng.integers(0, V.N_PITCHES, n_notes)
    vels = rng.integers(0, V.VELOCITY_BINS, n_notes)
    slots, last_end = [], {}
    for k in range(n_notes):
        p, on, off = int(pitches[k]), int(onsets[k]), int(onsets[k] + durs[k])
        if on <= last_end.get(p, -1):
            continue  # one note per key at a time
        last_end[p] = off
        slots += [(on, 2, p, int(vels[k])), (off, 0, p, 0)]
    n_ped = max(1, n_notes // 8)
    span = int(onsets[-1]) + 1
    ped = np.sort(rng.choice(span + 2 * n_ped, 2 * n_ped, replace=False)).reshape(-1, 2)
    for a, b in ped:
        slots += [(int(a), 1, 0, 1), (int(b) + 1, 1, 0, 0)]  # at a tie, up (0) sorts before down (1)
    slots.sort()
    times, events, vel, pedal = [], [], None, False
    for t, rank, p, value in slots:
        if rank == 2:
            if value != vel:
                times.append(t)
                events.append(V.VELOCITY + value)
                vel = value
            times.append(t)
            events.append(V.NOTE_ON + p)
        elif rank == 0:
            times.append(t)
            events.append(V.NOTE_OFF + p)
        elif bool(value) != pedal:
            pedal = bool(value)
            times.append(t)
            events.append(V.PEDAL_DOWN if pedal else V.PEDAL_UP)
    end = int(times[-1] + rng.integers(0, 250))
    return encode(np.asarray(times), np.asarray(events), end), end / V.STEPS_PER_SECOND


def synthetic_beats(rng: np.random.Generator, end_step: int) -> list[list[int]]:
    """A beat grid over a document of ``end_step`` steps: a steady-ish tempo with jitter, a meter
    of 2-7 beats with a pickup, starting a little after the document's start and ending before
    its end (free time around it), as ``[[step, 0|1], ...]``."""
    period = int(rng.integers(25, 130))
    meter = int(rng.integers(2, 8))
    pickup = int(rng.integers(0, meter))
    first = int(rng.integers(0, max(1, end_step // 8)))
    last = max(first + 2 * period, end_step - int(rng.integers(0, max(1, end_step // 8))))
    n = (last - first) // period + 1
    steps = first + period * np.arange(n) + rng.integers(-period // 8, period // 8 + 1, n)
    steps = np.maximum.accumulate(np.maximum(steps, 0))
    return [[int(s), int((k - pickup) % meter == 0 and k >= pickup)] for k, s in enumerate(steps)]


def write_synthetic_dir(root: str, docs_per_split=(12, 4), notes=(150, 600), seed: int = 0) -> str:
    """Write a token directory with the Rust builder's layout, filled with synthetic documents;
    every other one has beats (drawn from their own generator: the tokens do not depend on them)."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(seed)
    beat_rng = np.random.default_rng([seed, 1])
    splits = {}
    for name, n_docs in zip(("train", "validation"), docs_per_split, strict=True):
        parts, docs, offset = [], [], 0
        for k in range(n_docs):
            tokens, dur = synthetic_doc(rng, int(rng.integers(notes[0], notes[1] + 1)))
            parts.append(tokens.astype(np.uint16))
            docs.append(
                {
                    "offset": offset,
                    "length": len(tokens),
                    "source": f"synthetic/{name}/{k}.midi",
                    "piece": f"synthetic piece {k}",
                    "duration_s": dur,
                    "notes": int((tokens < V.NOTE_OFF).sum()),
                }
            )
            if k % 2 == 0:
                docs[-1]["beats"] = synthetic_beats(beat_rng, int(V.shift_steps(tokens).sum()))
            offset += len(tokens)
        np.save(os.path.join(root, f"{name}.npy"), np.concatenate(parts).astype("<u2"))
        with open(os.path.join(root, f"{name}.docs.json"), "w") as f:
            json.dump(docs, f)
        splits[name] = {"documents": n_docs, "tokens": offset, "with_beats": sum(1 for d in docs if "beats" in d)}
    manifest = {
        "vocabulary": {"version": V.VOCABULARY_VERSION, "size": V.VOCAB_SIZE},
        "splits": splits,
        "synthetic": True,
    }
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return root
