import pytest
import torch
from train_data import make_set

from foldedcnn.folded import FoldedModel
from foldedcnn.train import Curriculum, TrainConfig, train
from foldedcnn.train.trainer import epoch_order

pytestmark = pytest.mark.usefixtures("one_thread")


def test_papers_schedule_when_epochs_allow():
    # K=111, f=4: start max(11, 4) = 11, add 11 per period; 10 steps over 600 epochs -> every 60 epochs
    c = Curriculum.build(111, 4, span=600, seed=0)
    assert (c.start, c.step, c.period) == (11, 11, 60)
    assert [c.num_active(e) for e in (0, 59, 60, 119, 120, 540, 599, 600)] == [11, 11, 22, 22, 33, 110, 110, 111]
    assert sorted(c.order.tolist()) == list(range(111))


def test_schedule_squeezed_into_few_epochs():
    c = Curriculum.build(111, 4, span=4, seed=0)  # 10 steps of 11 do not fit 4 epochs: 25 per epoch
    assert [c.num_active(e) for e in range(6)] == [11, 36, 61, 86, 111, 111]
    small = Curriculum.build(22, 4, span=3, seed=0)  # start max(2, 4) = 4, step 2 -> 9 steps -> 6 per epoch
    assert [small.num_active(e) for e in range(5)] == [4, 10, 16, 22, 22]
    mask = small.active_mask(1)
    assert mask.sum() == 10 and torch.equal(mask.nonzero().squeeze(1), small.order[:10].sort().values)


def test_round_trip_and_no_curriculum():
    c = Curriculum.build(15, 2, span=5, seed=7)
    back = Curriculum.from_dict(c.to_dict())
    assert (back.start, back.step, back.period) == (c.start, c.step, c.period) and torch.equal(back.order, c.order)
    assert bool(Curriculum.all_classes(15).active_mask(0).all())


def test_batches_exclude_inactive_classes():
    labels = torch.arange(200) % 10
    active = torch.zeros(10, dtype=torch.bool)
    active[[1, 4, 7]] = True
    order = epoch_order(labels, active, fold=2, seed=0, epoch=3)
    assert set(labels[order].tolist()) == {1, 4, 7} and order.numel() == 60
    assert order.unique().numel() == 60


def test_trainer_admits_classes_on_schedule():
    data = make_set(120, (3, 17, 40), 15)
    model = FoldedModel.from_zoo("game-sot-coin-count", 2)
    config = TrainConfig(fold=2, epochs=4, batch=40, curriculum="auto", curriculum_epochs=2, progress=False)
    result = train(model, data, data, config)
    # K=15, f=2: start max(1, 2) = 2, step 1 -> 13 steps squeezed into 2 epochs: 7 per epoch
    assert [h["active_classes"] for h in result.history] == [2, 2, 9, 15, 15]  # row 0: before training
    off = train(FoldedModel.from_zoo("game-sot-coin-count", 1), data, data,
                TrainConfig(fold=1, epochs=1, progress=False))
    assert off.history[0]["active_classes"] == 15  # auto: no curriculum for the original
