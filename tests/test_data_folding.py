"""Fold-aware ordering and batching: unrelated images share a fold, nothing is dropped, same seed same folds."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from foldedcnn.data import FoldBatcher, LabelledImages, fold_mixing_order
from foldedcnn.data.folding import PAD_LABEL
from foldedcnn.layout import fold_images


def frames(n: int) -> LabelledImages:
    images = torch.arange(n, dtype=torch.int64).remainder(256).to(torch.uint8).view(n, 1, 1, 1).expand(n, 3, 4, 4)
    return LabelledImages(images.contiguous(), torch.arange(n) % 2, ["a", "b"], "frames")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 3000), fold=st.integers(1, 9), seed=st.integers(0, 2**31), epoch=st.integers(0, 5))
def test_mixing_order_is_a_permutation_without_neighbours_in_a_fold(n, fold, seed, epoch):
    order = fold_mixing_order(n, fold, seed, epoch)
    assert order.dtype == torch.int64 and sorted(order.tolist()) == list(range(n))
    assert torch.equal(order, fold_mixing_order(n, fold, seed, epoch))
    if n >= 8 * fold:
        padded = torch.cat([order, 10**9 + 10 * torch.arange(-n % fold)])
        groups = padded.view(-1, fold).sort(dim=1).values
        assert bool((groups.diff(dim=1) > 1).all()), "consecutive frames share a fold"


def test_min_gap_and_epochs():
    order = fold_mixing_order(4000, 4, seed=1, min_gap=5)
    assert bool((order.view(-1, 4).sort(dim=1).values.diff(dim=1) > 5).all())
    assert not torch.equal(fold_mixing_order(100, 2, 0, 0), fold_mixing_order(100, 2, 0, 1))
    assert not torch.equal(fold_mixing_order(100, 2, 0), fold_mixing_order(100, 2, 1))


def test_batcher_covers_every_image_once_and_pads_the_last_batch():
    data = frames(103)
    batcher = FoldBatcher(data, fold=4, batch_size=32, seed=3)
    batches = list(batcher)
    assert len(batches) == len(batcher) == 4
    assert [b.images.shape[0] for b in batches] == [32, 32, 32, 8]
    assert all(b.images.dtype == torch.uint8 and b.images.shape[0] % 4 == 0 for b in batches)
    last = batches[-1]
    assert last.mask.tolist() == [True] * 7 + [False] and last.labels[-1] == PAD_LABEL
    seen = torch.cat([b.images[b.mask, 0, 0, 0] for b in batches]).long()
    assert sorted(seen.tolist()) == sorted((torch.arange(103) % 256).tolist())
    # Folds of a batch are unrelated frames; folding keeps the image order inside a fold.
    first = batches[0].images
    ids = first[:, 0, 0, 0].long().view(-1, 4).sort(dim=1).values
    assert bool((ids.diff(dim=1) > 1).all())
    assert fold_images(first, 4).images.shape == (8, 12, 4, 4)
    again = [b.images for b in FoldBatcher(data, fold=4, batch_size=32, seed=3)]
    assert all(torch.equal(a, b.images) for a, b in zip(again, batches, strict=True))
    batcher.set_epoch(1)
    assert not torch.equal(next(iter(batcher)).images, batches[0].images)


def test_unshuffled_batcher_keeps_order():
    data = frames(10)
    out = list(FoldBatcher(data, fold=3, batch_size=6, shuffle=False))
    assert out[0].images[:, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert out[1].images[:, 0, 0, 0].tolist() == [6, 7, 8, 9, 0, 0] and out[1].mask.sum() == 4


def test_batch_size_must_be_a_multiple_of_the_fold():
    import pytest

    from foldedcnn.errors import FoldedCNNError

    with pytest.raises(FoldedCNNError, match="multiple of fold=4"):
        FoldBatcher(frames(8), fold=4, batch_size=6)
