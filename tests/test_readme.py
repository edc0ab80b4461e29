"""README.md is a newcomer's path: every command in its shell blocks must work when pasted into a
fresh clone.

Each line of a ```bash block is taken as written. Short commands run for real (`hicra tag`, the
quick start's `hicra report` on the newest of two run folders, through bash as a user pastes it);
`hicra train` lines run with `--print-config` appended (and `--use-cpu` for a GPU config) (flags, config files and layers resolved as
the run would, without training); experiment files are loaded and every arm x seed resolved; the
other long commands (evaluating or reporting on a model the reader has, not this clone) are parsed
by hicra's own argument parser. Every repository file a command names must exist, every `make`
target must be in the Makefile. (The ```python blocks are run by tests/test_docs_examples.py.)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hicra.cli import build_parser, main
from tests.report_fixtures import make_run

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
REPO_PATH = re.compile(r"^(configs|experiments|examples|scripts|docs)/")


def shell_lines() -> list[tuple[int, str]]:
    """(README line number, command) for every command of every bash block (continuations joined)."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        first = text.count("\n", 0, match.start()) + 2
        pending, start = "", first
        for offset, line in enumerate(match.group(1).splitlines()):
            if not pending:
                start = first + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command = (pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                found.append((start, command))
    return found


def hicra_lines() -> list:
    return [
        pytest.param(command, id=f"README:{line}")
        for line, command in shell_lines()
        if command.startswith("hicra ") and "$(" not in command  # the quick start's: below
    ]


def test_every_readme_command_is_one_a_user_can_run():
    lines = shell_lines()
    assert len(lines) >= 15
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for line, command in lines:
        words = shlex.split(command, comments=True)
        assert words[0] in {"hicra", "make", "bash", "."}, f"README:{line}: {command}"
        if words[0] == "make":
            assert words[1] in targets, f"README:{line}: no make target {words[1]!r}"
        for word in words[1:]:
            if REPO_PATH.match(word):
                assert (ROOT / word).exists(), f"README:{line}: {word} is not in the repository"


def test_quick_start_report_finds_the_newest_of_several_runs(tmp_path):
    """The quick start's report line, pasted into bash after two runs (a glob would match both)."""
    (line,) = [c for _, c in shell_lines() if c.startswith("hicra report") and "$(" in c]
    older = make_run(tmp_path / "runs" / "hicra-20261201-100000", steps=12, seed=1)
    newer = make_run(tmp_path / "runs" / "hicra-20261201-110000", steps=12, seed=2)
    os.utime(older, (1_000_000_000, 1_000_000_000))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    done = subprocess.run(
        ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert (newer / "report" / "report.html").is_file()
    assert not (older / "report").exists()


@pytest.mark.parametrize("command", hicra_lines())
def test_readme_hicra_command(command, capsys, monkeypatch):
    argv = shlex.split(command, comments=True)[1:]
    monkeypatch.chdir(ROOT)
    if argv[0] == "tag":
        assert main(argv) == 0
        assert "planning tokens:" in capsys.readouterr().out
    elif argv[0] == "train":  # a GPU config is checked as it would run, less the GPU
        on_cpu = ["--use-cpu"] if any("gpu" in a for a in argv) else []
        assert main([*argv, *on_cpu, "--print-config"]) == 0, capsys.readouterr().err
        assert "# set by" in capsys.readouterr().out
    elif argv[:2] == ["experiment", "run"]:
        from hicra.experiment.spec import load_spec

        load_spec(argv[2], check_flags=("--use-cpu",) if "gpu" in argv[2] else ())
    else:  # needs the reader's own model, data or runs: the flags must be hicra's
        build_parser().parse_args(argv)
