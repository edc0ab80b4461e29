"""The one "create the output folder or say why not" helper that every command uses."""

from __future__ import annotations

import pytest

from hicra.errors import HicraError
from hicra.output_folder import make_output_folder, refuse_file


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
