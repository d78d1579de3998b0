import warnings

import pytest
import torch
from torch import nn
from transform_models import INPUT_SHAPE, TOY_MODELS

from foldedcnn import FoldedCNNError, fold_model
from foldedcnn.layout import fold_images, unfold_logits
from foldedcnn.transform import block_diagonal_fold, fill_block_diagonal

pytestmark = pytest.mark.usefixtures("one_thread")


def _randomized(name: str) -> nn.Module:
    torch.manual_seed(1)
    model = TOY_MODELS[name]()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.1)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(m.weight)
            nn.init.normal_(m.bias)
    return model.eval()


@pytest.mark.parametrize("name", sorted(TOY_MODELS))
@pytest.mark.parametrize("fold", [2, 3, 4])
def test_block_diagonal_fold_equals_the_original_per_image(name, fold):
    model = _randomized(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folded = block_diagonal_fold(model, fold, torch.randn(1, *INPUT_SHAPE)).eval()
    images = torch.randn(2 * fold + 1, *INPUT_SHAPE)  # not a multiple of f: the last group is padded
    packed, n = fold_images(images, fold)
    with torch.no_grad():
        expected = model(images)
        got = unfold_logits(folded.forward_folded(packed), fold, n)
    assert expected.std(0).max() > 0.05  # images give different logits: any mixing would show
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_block_diagonal_layout_of_a_grouped_conv_after_a_concat_is_not_image_major():
    # ToyEverything: cat([a (8), b (8)]) -> Conv2d(16, 16, groups=4). With f = 2, folded group 0 holds
    # image 0's channels a[0:8], i.e. original groups 0 and 1 of image 0; its outputs must follow.
    model = _randomized("everything")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folded = block_diagonal_fold(model, 2, torch.randn(1, *INPUT_SHAPE))
    w = folded.network.get_submodule("grouped.0").weight  # (32, 8, 3, 3): 4 folded groups of 8 channels
    src = model.grouped[0].weight  # (16, 4, 3, 3)
    for rows, cols, orig in [(0, 0, 0), (4, 4, 4), (8, 0, 0), (12, 4, 4), (16, 0, 8), (20, 4, 12)]:
        # (folded out rows, local in cols) <- original group's rows: image 0 groups 0, 1; image 1 groups 0, 1;
        # image 0 groups 2, 3 (the concat's second part lands in folded group 2)
        assert torch.equal(w[rows:rows + 4, cols:cols + 4], src[orig:orig + 4])
        assert not w[rows:rows + 4, 4 - cols:8 - cols].any()


def test_block_diagonal_needs_an_exact_widening_and_no_groupnorm():
    model = TOY_MODELS["vgg-bn"]().eval()
    folded = fold_model(model, 2, torch.randn(1, *INPUT_SHAPE))  # sqrt(2) widening
    with pytest.raises(FoldedCNNError, match="widened exactly f=2 times"):
        fill_block_diagonal(folded, model)
    gn = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.Flatten(), nn.Linear(4 * 14 * 14, 3))
    with pytest.raises(FoldedCNNError, match="groupnorm keeps its groups"):
        block_diagonal_fold(gn, 2, torch.randn(1, *INPUT_SHAPE))
