"""`foldedcnn choose`: the frontier and the recommendation (pure), and the command end to end on a tiny spec."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from foldedcnn.choose import Candidate, pareto_frontier, recommend
from foldedcnn.cli import main
from foldedcnn.errors import FoldedCNNError

pytestmark = pytest.mark.usefixtures("one_thread")


def cand(fold: int, top1: float, ips: float) -> Candidate:
    return Candidate(fold, top1, ips, "torch", Path(f"f{fold}.safetensors"))


def test_recommends_the_fastest_fold_within_the_tolerated_drop():
    gpu = [cand(1, 90.0, 1000), cand(2, 89.8, 1800), cand(3, 89.0, 2500), cand(4, 89.6, 3000)]
    assert recommend(gpu, 0.5).recommended.fold == 4
    assert recommend(gpu, 0.3).recommended.fold == 2
    assert recommend(gpu, 0.0).recommended.fold == 1
    assert [c.fold for c in pareto_frontier(gpu)] == [1, 2, 4]  # f=3 is slower and less accurate than f=4
    cpu = [cand(1, 90.0, 1000), cand(2, 90.0, 700)]  # folding buys no speed here: keep the original
    assert recommend(cpu, 0.5).recommended.fold == 1
    with pytest.raises(FoldedCNNError, match="needs the original"):
        recommend(gpu[1:], 0.5)
    with pytest.raises(FoldedCNNError, match="max_drop must be"):
        recommend(gpu, -1)


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(1, 1e6)), min_size=1, max_size=6), st.floats(0, 100))
def test_the_recommendation_is_within_tolerance_and_nothing_on_the_frontier_is_dominated(points, drop):
    cands = [cand(f + 1, t, s) for f, (t, s) in enumerate(points)]
    choice = recommend(cands, drop)
    assert choice.recommended.top1 >= cands[0].top1 - drop
    assert all(c.images_per_s <= choice.recommended.images_per_s for c in cands if c.top1 >= cands[0].top1 - drop)
    for c in choice.frontier:
        assert not any(o.top1 > c.top1 and o.images_per_s > c.images_per_s for o in cands)


def test_choose_end_to_end_on_a_tiny_spec_then_reuses_the_runs(tmp_path, capsys):
    argv = ["choose", "game-sot-coin-count?n_train=64&n_val=32&n_test=32", "--model", "game-sot-coin-count",
            "--folds", "2", "--epochs", "1", "--batch", "16", "--backend", "torch", "--measure-batch", "64",
            "--max-drop", "100", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "recommended: f=" in out and "images/s on torch" in out
    assert (tmp_path / "frontier.png").stat().st_size > 1000
    assert {p.name for p in tmp_path.iterdir()} >= {"f1", "f2"}
    stamp = (tmp_path / "f2" / "last.safetensors").stat().st_mtime_ns
    assert main(argv) == 0  # finished runs are reused, not retrained
    assert (tmp_path / "f2" / "last.safetensors").stat().st_mtime_ns == stamp
