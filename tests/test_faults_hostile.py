"""Hostile input and faults of issue 29: YAML alias bombs, output folders that are broken symbolic
links, a disk that fills up while a command writes. Each case ends in one line, in seconds."""

from __future__ import annotations

import re
import time

import pytest

from hicra.cli import main
from hicra.errors import HicraError
from hicra.output_folder import make_output_folder, refuse_file


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """The "billion laughs" YAML: `levels` anchors of `width` aliases each (10^9 values)."""
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_the_yaml_loader_sizes_aliases_without_expanding_them():
    from hicra.yaml_io import MAX_VALUES, YamlError, load_yaml_text

    start = time.perf_counter()
    with pytest.raises(YamlError, match=r"^b\.yaml: refused: its aliases .* more than 1,000,000"):
        load_yaml_text(alias_bomb(), "b.yaml")
    assert time.perf_counter() - start < 1.0
    # 10^5 values written out through aliases: allowed (the limit is on the expansion, not on
    # aliases), and so is a merge key
    assert len(load_yaml_text(alias_bomb(5, 10), "ok")["l4"]) == 10
    assert MAX_VALUES < 10**6 + 1 < 10**9
    merged = load_yaml_text("base: &b {x: 1}\narm:\n  <<: *b\n  y: 2\n", "m")
    assert merged["arm"] == {"x": 1, "y": 2}
    with pytest.raises(YamlError, match=r"^r, line 1: an alias refers to itself"):
        load_yaml_text("a: &a [1, *a]\n", "r")


def test_every_yaml_hicra_reads_refuses_an_alias_bomb(tmp_path, capsys):
    """hicra train --config, an experiment file, a run folder's config.yaml (resume, report,
    experiment status): each refuses the bomb in well under a second, in one line (before: a
    MemoryError traceback after 35 s)."""
    from hicra.experiment.spec import load_spec
    from hicra.report.runs import read_config
    from hicra.run_folder import is_run_folder, read_run_config

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb())
    start = time.perf_counter()
    assert main(["train", "--config", str(bomb), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bomb.yaml: refused: its aliases" in err
    with pytest.raises(HicraError, match=r"bomb\.yaml: refused: its aliases"):
        load_spec(bomb)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("hicra_version: 0.1.0\n" + alias_bomb())
    with pytest.raises(HicraError, match=r"config\.yaml: refused: its aliases"):
        read_run_config(run)
    warnings: list[str] = []
    assert read_config(run, warnings) == {} and "refused: its aliases" in warnings[0]
    assert not is_run_folder(run)
    assert main(["train", "--output-dir", str(run), "--resume"]) == 2
    assert "config.yaml: refused: its aliases" in capsys.readouterr().err
    assert time.perf_counter() - start < 20  # TRL's import is most of it; each refusal is ms


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_an_output_folder_that_is_a_broken_link_is_named(tmp_path, kind, capsys):
    """Before: mkdir said "File exists" (dangling link) and training "not found" (a loop)."""
    link = tmp_path / "out"
    if kind == "dangling":
        link.symlink_to(tmp_path / "gone")
        expected = f"is a symbolic link to {tmp_path / 'gone'}, which does not exist"
    else:
        (tmp_path / "other").symlink_to(link)
        link.symlink_to(tmp_path / "other")
        expected = "is a symbolic link loop"
    for call in (refuse_file, make_output_folder):
        with pytest.raises(HicraError, match=re.escape(f"output folder {link} {expected}")):
            call(link)
    for resume in ([], ["--resume"]):
        assert main(["train", "--output-dir", str(link), "--max-steps", "1", *resume]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{link} {expected}" in err, err
