import math

import pytest
import torch
from transform_models import INPUT_SHAPE, TinyMobileNetV2

from foldedcnn import fold_model
from foldedcnn.analysis import layer_stats

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("fold", [2, 3, 4])
def test_flops_per_image_by_layer_role(fold):
    model = TinyMobileNetV2()
    folded = fold_model(model, fold, torch.randn(1, *INPUT_SHAPE), align=1)  # sqrt(f) widths, not rounded
    roles = {lp.name: lp.role for lp in folded.plan.layers}
    base = {s.name: s.flops for s in layer_stats(model, INPUT_SHAPE)}
    c, h, w = INPUT_SHAPE
    per_image = {s.name: s.flops / fold / base[s.name] for s in layer_stats(folded.network, (fold * c, h, w))}
    expected = {"stem": math.sqrt(fold), "classifier": math.sqrt(fold), "hidden": 1.0, "depthwise": 1 / math.sqrt(fold)}
    seen = set()
    for name, ratio in per_image.items():
        seen.add(roles[name])
        assert ratio == pytest.approx(expected[roles[name]], rel=0.15), (name, roles[name])
    assert seen == set(expected)
