"""Fresh training images every epoch (issue #16, item 2): deterministic draws, workers ahead, teacher per epoch."""

import pytest
import torch
from train_data import make_set

from foldedcnn.data import DataError, load_data
from foldedcnn.errors import ShapeError
from foldedcnn.folded import FoldedModel
from foldedcnn.train import FreshDraws, TrainConfig, train, train_from_config

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = "game-sot-coin-count?n_train=40&n_val=16"


def test_draws_are_new_images_per_epoch_and_the_same_every_time():
    fixed = load_data(SPEC, "train")
    one, two = load_data(SPEC, "train", draw=1), load_data(SPEC, "train", draw=2)
    assert one.images.shape == fixed.images.shape == (40, 3, 17, 40)
    assert not torch.equal(one.images, fixed.images) and not torch.equal(one.images, two.images)
    assert torch.equal(load_data(SPEC, "train", draw=1).images, one.images)
    assert torch.equal(load_data(SPEC, "train", draw=0).images, fixed.images)  # draw 0 is the split itself
    with pytest.raises(DataError, match="no fresh draws"):
        load_data("fashion-mnist", "train", draw=1)


@pytest.mark.slow  # spawns two worker processes
def test_workers_draw_ahead_what_load_data_draws():
    with FreshDraws(SPEC, epochs=4, workers=2) as draws:
        got = [draws(e) for e in (2, 3)]  # skipping epoch 1, as a resumed run does
    for e, d in zip((2, 3), got, strict=True):
        want = load_data(SPEC, "train", draw=e)
        assert torch.equal(d.images, want.images) and torch.equal(d.labels, want.labels)


def test_each_epoch_trains_on_its_draw_distilled_toward_the_teacher_on_it():
    model = FoldedModel.from_zoo("game-sot-coin-count", 2)
    first = make_set(24, model.input_shape, model.num_classes)
    sets = {e: make_set(24, model.input_shape, model.num_classes, seed=e) for e in (1, 2)}
    seen = []

    def teacher(images: torch.Tensor) -> torch.Tensor:
        seen.append(images)
        return torch.zeros(images.shape[0], model.num_classes)

    config = TrainConfig(fold=2, epochs=3, batch=8, curriculum="off", progress=False)
    soft = torch.zeros(24, model.num_classes)
    train(model, first, first, config, teacher_logits=soft, draws=sets.__getitem__, teacher=teacher)
    assert [s.data_ptr() for s in seen] == [sets[1].images.data_ptr(), sets[2].images.data_ptr()]
    with pytest.raises(ShapeError, match="need `teacher`"):
        train(model, first, first, config, teacher_logits=soft, draws=sets.__getitem__)


def test_fresh_data_needs_generated_data():
    with pytest.raises(DataError, match="generated data spec"):
        train_from_config(TrainConfig(model="noscope-coral", data="vtest", fresh_data=True, progress=False))
