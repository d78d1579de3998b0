"""fsio.atomic_write_text: the whole text or the old file, never a half-written one, and no temporary left."""

import os

import pytest

from foldedcnn import fsio


def test_the_text_replaces_the_file_byte_for_byte(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    fsio.atomic_write_text(path, "a,b\r\nc\n")  # newlines written as given
    assert path.read_bytes() == b"a,b\r\nc\n" and os.listdir(tmp_path) == ["out.csv"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    path.write_text("old\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsio.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        fsio.atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["out.csv"]
