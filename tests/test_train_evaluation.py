import pytest
import torch

from foldedcnn.train import Evaluation


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
