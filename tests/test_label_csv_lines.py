"""The video job's CSV lines (label._frame_labels.csv_lines_for) are what csv.writer writes for the rows of Python's
own formatting, for any logits, class names and times: their numbers are formatted as one array for speed."""

import csv
import io
import itertools
from collections import Counter

import numpy as np
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from foldedcnn.label._chunk_store import csv_lines
from foldedcnn.label._frame_labels import cascade, csv_lines_for, header, probabilities
from foldedcnn.label._job_video import RowTally
from foldedcnn.label._labels_csv import read_labels
from foldedcnn.label._row_times import RowTimes


def _reference(index, time_s, logits, class_names, uncertain, decoded=None) -> str:
    """The rows as the job wrote them before csv_lines_for: each number by Python's format, each row by csv.writer
    ending in "\r\n" (so a field with a bare carriage return is quoted, as one with a newline is) made "\n"; a frame
    that did not decode with its frame and time only."""
    probs = probabilities(logits)
    score, label, unsure = cascade(probs, uncertain)
    ok = [True] * len(index) if decoded is None else decoded.tolist()
    lines = []
    for i, t, pr, s, k, u, d in zip(index.tolist(), time_s.tolist(), probs.tolist(), score.tolist(), label.tolist(),
                                    unsure.tolist(), ok, strict=True):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow(
            [i, f"{t:.6f}", *(f"{p:.6f}" for p in pr), f"{s:.6f}", class_names[k], int(u)] if d else
            [i, f"{t:.6f}", *[""] * (len(class_names) + 3)])
        lines.append(buf.getvalue().removesuffix("\r\n") + "\n")
    return "".join(lines)


@st.composite
def _batches(draw):
    b, k = draw(st.integers(1, 24)), draw(st.integers(2, 120))
    # logits up to +-100: softmax outputs of exactly 0 and 1 as well as every rounding in between
    logits = draw(hnp.arrays(np.float32, (b, k), elements=st.floats(-100, 100, width=32)))
    names = draw(st.lists(st.text(min_size=1, max_size=6), min_size=k, max_size=k))
    first = draw(st.integers(0, 10**9))
    time_s = draw(hnp.arrays(np.float64, (b,), elements=st.floats(0, 1e6)))
    lo = draw(st.floats(0, 1))
    # which frames decoded (the others' packets damaged); None: all of them
    decoded = draw(st.none() | hnp.arrays(np.bool_, (b,)))
    return np.arange(first, first + b), time_s, torch.from_numpy(logits), names, (lo, draw(st.floats(lo, 1))), decoded


@settings(max_examples=300, deadline=None)
@given(_batches())
def test_the_lines_are_those_of_pythons_formatting_and_csv_writer(batch):
    lines = csv_lines_for(*batch)
    assert len(lines) == len(batch[0]) and all(line.endswith("\n") for line in lines)
    assert "".join(lines) == _reference(*batch)


def test_a_model_gone_wrong_writes_nan_as_python_does():
    logits = torch.tensor([[0.0, float("nan")], [1.0, 2.0]])
    batch = np.arange(2), np.array([0.0, 0.1]), logits, ["no", "ye\ns"], (0.2, 0.8)  # a name quoted over two lines
    lines = csv_lines_for(*batch)
    assert lines[0] == "0,0.000000,nan,nan,nan,no,0\n" and len(lines) == 2 and "".join(lines) == _reference(*batch)


def test_a_class_name_with_a_comma_or_quote_is_quoted():
    batch = np.arange(3), np.zeros(3), torch.tensor([[9.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 9.0]]), \
        ["a,b", 'say "hi"', "plain"], (0.0, 0.5)
    labels = [next(csv.reader([line]))[-2] for line in csv_lines_for(*batch)]
    assert labels == ["a,b", 'say "hi"', "plain"]


_BARE_CR = (np.arange(2), np.zeros(2), torch.tensor([[0.0, 9.0], [9.0, 0.0]]), ["a\rb", "c,d"], (0.2, 0.8), None)


@settings(max_examples=200, deadline=None)
@given(_batches(), st.integers(1, 8), st.booleans())
# a bare carriage return beside a quoted name: csv.writer left it unquoted, and no CSV reader could parse the file
@example(batch=_BARE_CR, chunks=1, by_file=True)
def test_the_counts_of_a_csv_fed_by_chunks_or_read_line_by_line_are_those_of_its_rows(tmp_path_factory, batch, chunks,
                                                                                      by_file):
    """summary.json's counts (RowTally) of rows given a chunk at a time as the CSV is merged, or read back from the
    file line by line, are those of the labels written, for any class names (quoted or not: commas, quotes, line
    breaks, carriage returns, U+2028)."""
    index, time_s, logits, names, uncertain, decoded = batch
    lines = csv_lines_for(index, time_s, logits, names, uncertain, decoded)
    tally = RowTally(names, RowTimes(25.0, 1))
    if by_file:  # as a finished CSV is read back, its header skipped
        path = tmp_path_factory.mktemp("csv") / "video.csv"
        path.write_text(csv_lines([header(names)]) + "".join(lines), newline="")
        tally.add_file(path)
    else:
        cuts = sorted({0, len(lines), *np.linspace(0, len(lines), chunks + 1).astype(int).tolist()})
        for a, b in itertools.pairwise(cuts):
            tally.add_rows("".join(lines[a:b]))
    _, label, unsure = cascade(probabilities(logits), uncertain)
    ok = np.ones(len(label), bool) if decoded is None else decoded
    labels = Counter(names[k] for k in label[ok].tolist())
    undecodable = int((~ok).sum())
    assert tally.counts() == (len(label), len(label) - undecodable - labels[names[0]], int(unsure[ok].sum()),
                              dict(labels.most_common()), undecodable)
    written = RowTimes(25.0, 1)  # the rows' times, as written (6 decimals), reach RowTimes in order
    written.add(np.array([float(f"{t:.6f}") for t in time_s]))
    assert (tally.times.last_s, tally.times.missing_frames, tally.times.gaps) == (
        written.last_s, written.missing_frames, written.gaps)


@settings(max_examples=200, deadline=None)
@given(_batches())
# a class "\x00": NumPy compares a str_, which drops trailing NULs (found by this test)
@example(batch=(np.arange(1), np.zeros(1), torch.zeros(1, 3), ["\x00", "0", "0"], (0.0, 0.0), None))
@example(batch=_BARE_CR)
def test_a_csv_read_back_gives_the_frames_times_scores_and_labels_written(tmp_path_factory, batch):
    """What the report and the frames export read of a run's CSV (read_labels, which splits off only the outer
    fields of each line) is what was written, for any class names."""
    index, time_s, logits, names, uncertain, decoded = batch
    path = tmp_path_factory.mktemp("csv") / "video.csv"
    path.write_text(csv_lines([header(names)]) + "".join(csv_lines_for(*batch)), newline="")
    labels = read_labels(path)
    score, label, unsure = cascade(probabilities(logits), uncertain)
    ok = np.ones(len(label), bool) if decoded is None else decoded
    assert labels.class_names == names and labels.frame.tolist() == index.tolist()
    np.testing.assert_array_equal(labels.time_s, np.round(time_s, 6))  # written with 6 decimals, read back exactly
    np.testing.assert_array_equal(labels.score, np.where(ok, score.astype(np.float64).round(6), np.nan))
    assert labels.label.tolist() == [names[k] if d else "" for k, d in zip(label.tolist(), ok.tolist(), strict=True)]
    assert labels.decoded.tolist() == ok.tolist()
    assert labels.uncertain.tolist() == (unsure & ok).tolist()
    assert labels.positive.tolist() == [names[k] != names[0] and not u and d for k, u, d in
                                        zip(label.tolist(), unsure.tolist(), ok.tolist(), strict=True)]


def test_reading_a_csv_back_holds_its_outer_columns_not_its_probabilities(tmp_path):
    """A 111-class model writes ~1 KB a frame; reading its CSV back for the report keeps 5 numbers a frame."""
    import tracemalloc

    names = [f"class{k}" for k in range(111)]
    rows = 20_000
    lines = csv_lines_for(np.arange(rows), np.arange(rows) / 30, torch.randn(rows, 111), names, (0.2, 0.8))
    path = tmp_path / "video.csv"
    path.write_text(csv_lines([header(names)]) + "".join(lines), newline="")
    del lines
    tracemalloc.start()
    try:
        labels = read_labels(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(labels.frame) == rows and path.stat().st_size > 18e6
    assert peak < 3e6  # ~33 bytes a frame kept (0.7 MB) and its lists while reading; the rows whole: ~130 MB
