import pytest
import torch
from train_data import make_set

from foldedcnn.checkpoint import load_checkpoint
from foldedcnn.folded import FoldedModel
from foldedcnn.train import Evaluation, TrainConfig, compute_normalization, evaluate, normalize, predict_logits, train

pytestmark = pytest.mark.usefixtures("one_thread")


def test_precision_recall_f1_from_the_confusion_matrix():
    confusion = torch.tensor([[5, 1, 0],   # true 0: 5 right, 1 called 1
                              [2, 6, 2],   # true 1
                              [0, 0, 0]])  # class 2 never occurs but is predicted twice
    ev = Evaluation(top1=0.0, loss=0.0, predictions=torch.zeros(0), confusion=confusion)
    c0, c1, c2 = ev.per_class_scores()
    assert c0["precision"] == pytest.approx(100 * 5 / 7) and c0["recall"] == pytest.approx(100 * 5 / 6)
    assert c0["f1"] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6) * 100) and c0["support"] == 6
    assert c1["precision"] == pytest.approx(100 * 6 / 7) and c1["recall"] == pytest.approx(60.0)
    assert c2 == {"precision": 0.0, "recall": None, "f1": None, "support": 0}
    summary = ev.to_dict(["a", "b", "c"])
    assert summary["confusion"] == {"classes": ["a", "b", "c"], "matrix": confusion.tolist()}
    assert summary["macro_f1"] == pytest.approx(round((c0["f1"] + c1["f1"]) / 2, 4))
    assert "per_class" not in ev.to_dict(["a", "b", "c"], detail_limit=2)


def test_on_the_cpu_weights_go_channels_last_with_the_same_logits(tmp_path):
    """fast_layout: on the CPU, predict_logits and train() put conv weights channels_last (oneDNN's faster layout).
    Logits match the plain layout's to float32 rounding (other summation orders; logits of size ~1-10), and a
    checkpoint written from channels_last weights scores the validation top-1 its training recorded."""
    data = make_set(64, (3, 22, 52), 111)
    model = FoldedModel.from_zoo("game-lol-gold-int", 2).eval()
    norm = compute_normalization(data.images)
    with torch.no_grad():
        expected = model(normalize(data.images, norm))  # plain layout: from_zoo's weights are contiguous
    got = predict_logits(model, data.images, norm)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    convs = [m.weight for m in model.network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)

    config = TrainConfig(model="game-lol-gold-int", fold=2, epochs=1, batch=8, progress=False, curriculum="off")
    result = train(FoldedModel.from_zoo("game-lol-gold-int", 2), data, data, config, out=tmp_path)
    convs = [m.weight for m in result.model.network.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    best = load_checkpoint(result.best_path, fold=2)
    top1 = evaluate(best.model, data.images, data.labels, best.normalization).top1
    assert round(top1, 4) == best.meta["metrics"]["val_top1"] == result.best_val_top1
