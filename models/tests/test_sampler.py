import numpy as np

from pianoforte_train import vocab as V
from pianoforte_train.data import IGNORE, CropSampler, TokenSplit, crop, validation_crops


def batches(sampler, n):
    return [sampler.next_batch() for _ in range(n)]


def same(a, b):
    """Two lists of batches hold the same arrays."""
    if len(a) != len(b):
        return False
    return all(np.array_equal(x, y) for p, q in zip(a, b, strict=True) for x, y in zip(p, q, strict=True))


def test_determinism_and_state(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "train")
    a = CropSampler(split, 64, 3, seed=7)
    b = CropSampler(split, 64, 3, seed=7)
    assert same(batches(a, 4), batches(b, 4))
    state = a.state_dict()
    nxt = batches(a, 3)
    c = CropSampler(split, 64, 3, seed=123)
    c.load_state_dict(state)
    assert same(batches(c, 3), nxt)
    assert c.batches == a.batches == 7
    other_rank = CropSampler(split, 64, 3, seed=7, rank=1)
    assert not same(batches(other_rank, 2), batches(CropSampler(split, 64, 3, seed=7), 2))


def test_crop_alignment_and_control(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "train")
    doc = split.doc(0)
    x, c, k, st, a, y, b = crop(doc, 10, 32)
    assert k.shape == (32, 12) and st.shape[0] == 32 and a.shape == (32, V.VOCAB_SIZE)
    assert x[0] == V.START and np.array_equal(x[1:], doc[10:41]) and np.array_equal(y, doc[10:42])
    assert np.array_equal(c, V.density_bins(doc)[10:42])  # control = density of the target event
    x, c, k, _, _, y, _ = crop(doc, 10, 32, use_control=False)
    assert (c == V.NO_CONTROL).all() and (k == 0).all()
    # crop longer than the document is padded and ignored by the loss
    x, c, k, st, a, y, b = crop(doc[:5], 0, 8)
    assert (y[5:] == IGNORE).all() and (c[5:] == V.NO_CONTROL).all() and np.array_equal(y[:5], doc[:5])
    assert (st[5:] == 0).all() and a[5:].all() and (k[5:] == 0).all()


def test_sampler_without_augmentation_gives_document_crops(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "train")
    s = CropSampler(split, 40, 8, seed=1, augment=False, control_dropout=0.0)
    x, c, _, _, _, y, _ = s.next_batch()
    assert x.shape == c.shape == y.shape == (40, 8)
    docs = [split.doc(i) for i in range(len(split))]
    for b in range(8):
        hits = [(d, k) for d in docs for k in range(len(d) - 39) if np.array_equal(d[k : k + 40], y[:, b])]
        assert hits
        d, k = hits[0]
        assert np.array_equal(c[:, b], V.density_bins(d)[k : k + 40])


def test_control_dropout(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "train")
    _, c, k, *_ = CropSampler(split, 32, 8, seed=0, control_dropout=1.0).next_batch()
    assert (c == V.NO_CONTROL).all() and (k == 0).all()  # without key options the key follows the density
    _, c, *_ = CropSampler(split, 32, 64, seed=0, control_dropout=0.5).next_batch()
    dropped = (c == V.NO_CONTROL).all(0)
    assert 10 < dropped.sum() < 54  # whole crops, about half of them
    _, c, k, *_ = CropSampler(split, 32, 200, seed=0, control_dropout=0.0, key_dropout=0.5, all_off=0.5).next_batch()
    key_off, density_off = (k == 0).all((0, 2)), (c == V.NO_CONTROL).all(0)
    assert 40 < (density_off & key_off).sum() < 160 and (density_off <= key_off).all()
    assert 100 < key_off.sum() < 190  # all off (half) or key dropped (a quarter)


def test_validation_crops_fixed(synthetic_dir):
    split = TokenSplit.load(synthetic_dir, "validation")
    a = validation_crops(split, 32, 10, 4)
    b = validation_crops(split, 32, 10, 4)
    assert len(a) == 3 and same(a, b)
