"""The one "create the output folder or say why not" helper that every command uses."""

from __future__ import annotations

import pytest

from hicra.errors import HicraError
from hicra.output_folder import make_output_folder, refuse_file, set_aside


class OwnError(HicraError):
    pass


def test_creates_the_folder_and_its_parents(tmp_path):
    folder = make_output_folder(tmp_path / "a" / "b", "report folder")
    assert folder.is_dir() and folder == tmp_path / "a" / "b"
    assert make_output_folder(str(folder)) == folder  # an existing folder is used as it is


def test_a_file_in_the_way_is_named_with_what_it_should_be(tmp_path):
    path = tmp_path / "taken"
    path.write_text("user data")
    with pytest.raises(OwnError, match=r"^experiment folder .*taken is a file, not a folder$"):
        make_output_folder(path, "experiment folder", OwnError)
    with pytest.raises(HicraError, match=r"^output folder .*taken is a file, not a folder$"):
        refuse_file(path)
    assert path.read_text() == "user data"


def test_a_folder_that_cannot_be_made_says_why(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HicraError, match=r"^cannot create the report folder .*file/sub: Not a dir"):
        make_output_folder(tmp_path / "file" / "sub", "report folder")


def test_set_aside_in_one_second_keeps_every_file_and_folder(tmp_path, monkeypatch):
    """Two set-asides with one time stamp: the second gets "-2" (a plain rename overwrote the first
    file, and failed on a folder)."""
    import hicra.output_folder

    monkeypatch.setattr(hicra.output_folder.time, "strftime", lambda _: "20261206-120000")
    kept = []
    for text in ("first\n", "second\n"):
        (tmp_path / "metrics.jsonl").write_text(text)
        kept.append(set_aside(tmp_path / "metrics.jsonl", "metrics.", ".jsonl"))
    assert [p.name for p in kept] == [
        "metrics.20261206-120000.jsonl",
        "metrics.20261206-120000-2.jsonl",
    ]
    assert [p.read_text() for p in kept] == ["first\n", "second\n"]
    folders = []
    for text in ("a", "b"):
        (tmp_path / "seed-1").mkdir()
        (tmp_path / "seed-1" / "log.txt").write_text(text)
        folders.append(set_aside(tmp_path / "seed-1", "seed-1.broken-"))
    assert [p.name for p in folders] == [
        "seed-1.broken-20261206-120000",
        "seed-1.broken-20261206-120000-2",
    ]
    assert [(p / "log.txt").read_text() for p in folders] == ["a", "b"]
    assert not (tmp_path / "seed-1").exists() and not (tmp_path / "metrics.jsonl").exists()
