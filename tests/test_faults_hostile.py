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


# ----------------------------------------------------------------------------- a full disk
FULL_DISK_SCRIPT = r"""
set -u
mount -t tmpfs -o size=2m tmpfs "$RUNS" || exit 77
mount -t tmpfs -o size=8k tmpfs "$EVALS" || exit 77
hicra() {
  label=$1 command=$2
  shift 2
  "$PYTHON" -m hicra.cli "$command" "$@" 2>"$LOG.$command.$label" >/dev/null
  echo "$command $label rc=$?"
}
train="--model $MODEL --dataset $DATA --output-dir $RUNS/run --max-steps 3 --num-generations 4
 --per-device-train-batch-size 8 --max-completion-length 8 --save-steps 1 --use-cpu --seed 3
 --verify-workers 1"
hicra full train $train
evals="--model $MODEL --benchmarks $BENCH --output-dir $EVALS/eval --max-new-tokens 8
 --no-progress"
hicra full eval $evals
ls "$RUNS/run" > "$LOG.after-full"
mount -o remount,size=16m "$RUNS" && mount -o remount,size=1m "$EVALS"
hicra resumed train $train --resume
hicra resumed eval $evals
"""


def test_a_full_disk_is_one_line_naming_the_folder_and_the_run_resumes(tiny_model_dir, tmp_path):
    """A real full disk (a 2 MB tmpfs for the run: checkpoint-1 fits, checkpoint-2 does not; an
    8 kB one for the evaluation's samples), mounted in a user namespace. Before: tracebacks
    (safetensors' "No space left on device", torch's "unexpected pos", OSError Errno 28)."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("unshare") is None:
        pytest.skip("no unshare to mount a small tmpfs")
    runs, evals = tmp_path / "runs", tmp_path / "evals"
    runs.mkdir()
    evals.mkdir()
    rows = [{"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(40)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows[:30]))
    env = {
        **os.environ,
        "RUNS": str(runs),
        "EVALS": str(evals),
        "MODEL": str(tiny_model_dir),
        "DATA": str(data),
        "BENCH": str(bench),
        "LOG": str(tmp_path / "log"),
        "PYTHON": sys.executable,
    }
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", FULL_DISK_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode == 77 or "unshare: " in done.stderr:
        pytest.skip(f"cannot mount a tmpfs in a user namespace: {done.stderr.strip()[:200]}")
    assert done.stdout.split("\n")[:2] == ["train full rc=2", "eval full rc=2"], done.stdout
    for command, folder in (("train", runs / "run"), ("eval", evals / "eval")):
        err = (tmp_path / f"log.{command}.full").read_text()
        said = [line for line in re.split(r"[\r\n]", err) if line.startswith("hicra ")]
        said = [line for line in said if ": error:" in line]  # not the start's notes
        assert len(said) == 1 and "Traceback" not in err, err  # besides the progress bar
        assert said[0].startswith(f"hicra {command}: error: no space left on the device of the ")
        assert str(folder) in said[0]
    after = (tmp_path / "log.after-full").read_text().split()
    assert "checkpoint-1" in after and "final_model" not in after  # resumable, not finished
    assert done.stdout.split("\n")[2:4] == ["train resumed rc=0", "eval resumed rc=0"]


def test_a_full_disk_anywhere_else_is_one_line_naming_the_file(capsys):
    """Commands that do not name their folder themselves: the CLI turns ENOSPC and EDQUOT into one
    line naming the file; any other OSError is not hidden."""
    import errno

    from hicra.cli import _guarded

    def full() -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/report/index.html")

    assert _guarded("report", full) == 2
    said = capsys.readouterr().err
    assert said == "hicra report: error: no space left on device writing /data/report/index.html\n"

    def other() -> int:
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output error"):
        _guarded("report", other)
