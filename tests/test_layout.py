import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from foldedcnn import (
    FoldError,
    ShapeError,
    fold_images,
    log_softmax_per_image,
    pad_to_multiple,
    unfold_images,
    unfold_logits,
    valid_mask,
)

shapes = st.tuples(
    st.integers(1, 200), st.integers(1, 8), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)
)


def _images(b, c, h, w):
    # distinct values everywhere so that any misplacement shows
    return torch.arange(b * c * h * w, dtype=torch.float32).reshape(b, c, h, w) + 1


@settings(max_examples=150, deadline=None)
@given(shapes)
def test_round_trip_is_exact(shape):
    b, f, c, h, w = shape
    x = _images(b, c, h, w)
    folded, n = fold_images(x, f)
    assert n == b
    assert folded.shape == (-(-b // f), f * c, h, w)
    assert torch.equal(unfold_images(folded, f, n), x)


@settings(max_examples=150, deadline=None)
@given(shapes)
def test_image_i_lands_in_group_i_div_f_at_block_i_mod_f(shape):
    b, f, c, h, w = shape
    x = _images(b, c, h, w)
    folded, _ = fold_images(x, f)
    for i in range(b):
        g, j = divmod(i, f)
        assert torch.equal(folded[g, j * c:(j + 1) * c], x[i])


@settings(max_examples=150, deadline=None)
@given(shapes)
def test_padding_is_zero_and_never_comes_back(shape):
    b, f, c, h, w = shape
    x = _images(b, c, h, w)
    folded, n = fold_images(x, f)
    mask = valid_mask(n, f)
    per_slot = folded.reshape(-1, f, c, h, w)
    assert torch.all(per_slot[~mask] == 0)
    assert torch.all(per_slot[mask] > 0)
    # logits: one distinct row per slot, the padded ones must be dropped
    k = 3
    logits = torch.arange(per_slot.shape[0] * f * k, dtype=torch.float32).reshape(-1, f * k)
    out = unfold_logits(logits, f, n)
    assert out.shape == (b, k)
    assert torch.equal(out, logits.reshape(-1, k)[:b])


def test_pad_to_multiple_does_not_copy_when_aligned():
    x = torch.randn(8, 3)
    padded, n = pad_to_multiple(x, 4)
    assert padded is x and n == 8
    padded, n = pad_to_multiple(x, 3)
    assert padded.shape == (9, 3) and n == 8 and torch.all(padded[8] == 0)


@pytest.mark.parametrize("fold", [0, -1, 1.5, "2", True, None])
def test_bad_fold_is_refused(fold):
    with pytest.raises(FoldError, match="fold must be an integer >= 1"):
        fold_images(torch.zeros(2, 3, 4, 4), fold)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.integers(1, 6), st.integers(1, 12), st.integers(0, 2 ** 31 - 1))
def test_log_softmax_per_image_is_each_images_own(groups, fold, classes, seed):
    logits = torch.randn(groups, fold * classes, generator=torch.Generator().manual_seed(seed)) * 10
    got = unfold_logits(log_softmax_per_image(logits, classes), fold, groups * fold)
    expected = torch.log_softmax(unfold_logits(logits, fold, groups * fold), dim=1)
    torch.testing.assert_close(got, expected)  # float32 defaults: the same ops on the same values
    assert torch.allclose(got.exp().sum(1), torch.ones(groups * fold))  # each image's probabilities sum to 1


def test_bad_shapes_are_refused():
    with pytest.raises(ShapeError, match="4 dimensions"):
        fold_images(torch.zeros(3, 4, 4), 2)
    with pytest.raises(ShapeError, match="not a multiple of fold=4"):
        unfold_logits(torch.zeros(2, 6), 4, 8)
    with pytest.raises(ShapeError, match="does not fit"):
        unfold_logits(torch.zeros(2, 8), 4, 9)
    with pytest.raises(ShapeError, match="not a multiple of 3 classes"):
        log_softmax_per_image(torch.zeros(2, 8), 3)
