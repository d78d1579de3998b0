import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from train_data import make_set

from foldedcnn.folded import FoldedModel
from foldedcnn.train import TrainConfig, classification_loss, distillation_loss, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_distillation_loss_depends_on_the_teacher_and_pulls_toward_it():
    torch.manual_seed(0)
    student = torch.randn(6, 5, requires_grad=True)
    t1, t2 = torch.randn(6, 5), torch.randn(6, 5)
    for kind in ("mse", "kl"):
        assert distillation_loss(student, t1, kind) != distillation_loss(student, t2, kind)
        assert float(distillation_loss(t1.clone(), t1, kind)) == pytest.approx(0.0, abs=1e-6)
    loss = distillation_loss(student, t1, "mse")
    (grad,) = torch.autograd.grad(loss, student)
    assert torch.allclose(grad, 2 * (student - t1) / student.numel())  # gradient descent moves toward t1
    stepped = student - 0.5 * grad
    assert (stepped - t1).norm() < (student - t1).norm()


def test_kl_distillation_is_temperature_scaled_kl():
    torch.manual_seed(1)
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    want = (F.softmax(t / 2, 1) * (F.log_softmax(t / 2, 1) - F.log_softmax(s / 2, 1))).sum(1).mean() * 4
    assert float(distillation_loss(s, t, "kl", temperature=2.0)) == pytest.approx(float(want), rel=1e-5)


def test_losses_only_count_active_classes():
    logits = torch.tensor([[2.0, 0.0, 50.0], [0.0, 1.0, -50.0]])
    labels = torch.tensor([0, 1])
    active = torch.tensor([True, True, False])
    want = F.cross_entropy(logits[:, :2], labels)
    assert float(classification_loss(logits, labels, active)) == pytest.approx(float(want))
    teacher = logits.clone()
    teacher[:, 2] = 1e3  # differs only on the inactive class
    assert float(distillation_loss(logits, teacher, "mse", active=active)) == 0.0
    assert math.isfinite(float(classification_loss(logits, labels, active)))


def test_training_uses_the_teacher_logits():
    data = make_set(48, (3, 17, 40), 15)
    weights = []
    for teacher in (None, torch.zeros(48, 15), torch.randn(48, 15, generator=torch.Generator().manual_seed(3))):
        torch.manual_seed(0)
        model = FoldedModel.from_zoo("game-sot-coin-count", 2)
        config = TrainConfig(fold=2, epochs=1, batch=16, curriculum="off", distill_alpha=1.0, progress=False)
        result = train(model, data, data, config, teacher_logits=teacher)
        weights.append(result.model.network.classifier[1].weight.detach().clone())
    assert not torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[1], weights[2])


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["mse", "kl"]), classes=st.integers(2, 12),
       temperature=st.sampled_from([1.0, 4.0]), scale=st.sampled_from([1.0, 30.0]))
def test_distillation_over_active_classes_equals_cutting_the_inactive_columns_out(seed, kind, classes, temperature,
                                                                                   scale):
    """Inactive classes are masked, not cut out (a mask needs no read back from a GPU): the loss and its gradient are
    those of the active columns alone, the inactive columns getting no gradient."""
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(5, classes, generator=g) * scale).requires_grad_()
    teacher = torch.randn(5, classes, generator=g) * scale
    active = torch.rand(classes, generator=g) < 0.6
    active[torch.randint(classes, (1,), generator=g)] = True  # the curriculum keeps at least one class
    loss = distillation_loss(student, teacher, kind, temperature, active)
    (grad,) = torch.autograd.grad(loss, student)
    cut = student.detach()[:, active].requires_grad_()
    want = distillation_loss(cut, teacher[:, active], kind, temperature)
    (want_grad,) = torch.autograd.grad(want, cut)
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5, abs=1e-6)
    assert torch.allclose(grad[:, active], want_grad, rtol=1e-4, atol=1e-6)
    assert torch.count_nonzero(grad[:, ~active]) == 0
