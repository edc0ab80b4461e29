"""Every fault probe of issue #10, kept as a regression test: no silent loss or corruption, no
number silently reinterpreted, no traceback where a message belongs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hicra.cli import main
from hicra.folder_lock import FolderBusy, FolderLock
from hicra.run_folder import check_run_folder, create_run_folder, remove_failed_start
from tests.test_train_cli import metric_steps, tiny_args, write_jsonl


@pytest.fixture
def math_file(tmp_path):
    rows = [{"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(40)]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def one_step(model_dir, data, out, *extra):
    args = tiny_args(model_dir, data, out, *extra)
    args[args.index("--max-steps") + 1] = "1"
    return args


def hicra(*args, cwd=None, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "hicra.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def read_only_dir(tmp_path):
    """An empty folder nobody can write to: a read-only tmpfs when running as root (where file
    modes do not stop writes), else a folder with mode 555."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("running as root without the right to mount a read-only tmpfs")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


# ----------------------------------------------------------------- run folders: one writer each
def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    base = tmp_path / "runs" / "hicra-20261130-120000"
    first = create_run_folder(base, numbered=True)
    second = create_run_folder(base, numbered=True)
    assert first == base and second == base.with_name(base.name + "-2")
    assert (first / ".hicra-run").is_file() and (second / ".hicra-run").is_file()


def test_two_default_runs_at_once_never_share_a_folder(tiny_model_dir, math_file, tmp_path):
    """`T & T --credit grpo & wait` with no --output-dir: two folders, each with its own steps."""
    base = one_step(tiny_model_dir, math_file, "x")
    i = base.index("--output-dir")
    args = base[1:i] + base[i + 2 :]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "hicra.cli", "train", *args, *extra],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for extra in ([], ["--credit", "grpo"])
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2
    credits = sorted(yaml.safe_load((f / "config.yaml").read_text())["credit"] for f in folders)
    assert credits == ["grpo", "hicra"]
    assert all(metric_steps(f) == [1] for f in folders)


def test_a_made_up_folder_name_already_taken_gets_a_suffix(
    tiny_model_dir, math_file, tmp_path, monkeypatch
):
    """The race above, made certain: the stamp names a folder another run already holds."""
    import hicra.train.config as train_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train_config, "auto_run_folder", lambda: "runs/hicra-20261206-120000")
    taken = create_run_folder(tmp_path / "runs" / "hicra-20261206-120000", numbered=False)
    (taken / "metrics.jsonl").write_text('{"step": 7}\n')
    base = one_step(tiny_model_dir, math_file, "x")
    i = base.index("--output-dir")
    assert main(base[:i] + base[i + 2 :]) == 0
    assert (taken / "metrics.jsonl").read_text() == '{"step": 7}\n'  # the other run untouched
    assert metric_steps(taken.with_name(taken.name + "-2")) == [1]


def test_a_run_closes_its_verifier(tiny_model_dir, math_file, tmp_path, monkeypatch):
    """Its worker processes end with the run, not when the interpreter exits (in-process callers,
    as this test suite, kept every run's workers until the end)."""
    from hicra.answers import MathVerifier

    closed = []
    close = MathVerifier.close
    monkeypatch.setattr(MathVerifier, "close", lambda self: closed.append(self) or close(self))
    assert main(one_step(tiny_model_dir, math_file, tmp_path / "run")) == 0
    assert len(closed) == 1 and not closed[0]._workers


def test_a_second_writer_is_refused_with_the_holders_pid(tiny_model_dir, math_file, tmp_path):
    out = tmp_path / "run"
    assert main(one_step(tiny_model_dir, math_file, out)) == 0
    with FolderLock(out, "run folder"):
        longer = tiny_args(tiny_model_dir, math_file, out)  # max_steps 2: there is work to do
        result = hicra(*longer, "--resume")
    assert result.returncode == 2, result.stderr
    assert f"is in use by process {os.getpid()}" in result.stderr
    assert metric_steps(out) == [1]  # nothing written by the refused writer


def test_folder_lock_is_exclusive_and_released(tmp_path):
    lock = FolderLock(tmp_path, "run folder").acquire()
    code = (
        "from hicra.folder_lock import FolderLock; import sys\n"
        f"FolderLock({str(tmp_path)!r}).acquire()"
    )
    busy = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert busy.returncode != 0 and f"in use by process {os.getpid()}" in busy.stderr
    lock.release()
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert free.returncode == 0, free.stderr
    with pytest.raises(FolderBusy):  # a lock held by a killed process is gone with it
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code + "; import time; print('held', flush=True); time.sleep(60)",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout.readline().strip() == "held"
            FolderLock(tmp_path).acquire()
        finally:
            holder.kill()
            holder.wait()
    FolderLock(tmp_path).acquire().release()


def test_output_dir_of_user_files_is_refused(tiny_model_dir, math_file, tmp_path, capsys):
    """`cd proj && T --output-dir .` replaced the user's README.md with a model card."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "README.md").write_text("my notes\n")
    (project / "config.yaml").write_text("learning_rate: 0.1\n")
    assert main(one_step(tiny_model_dir, math_file, project)) == 2
    err = capsys.readouterr().err
    assert "is not empty and is not a hicra run folder" in err
    assert (project / "README.md").read_text() == "my notes\n"
    assert (project / "config.yaml").read_text() == "learning_rate: 0.1\n"
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "config.yaml"]
    with pytest.raises(Exception, match="not empty"):
        check_run_folder(project, resume=False)
    with pytest.raises(Exception, match="is not a hicra run folder"):
        check_run_folder(project, resume=True)


def test_an_empty_folder_is_fine_and_a_file_is_not(tiny_model_dir, math_file, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(one_step(tiny_model_dir, math_file, empty)) == 0
    assert metric_steps(empty) == [1]
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(one_step(tiny_model_dir, math_file, afile)) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(one_step(tiny_model_dir, math_file, afile / "run")) == 2
    assert "cannot create" in capsys.readouterr().err


def test_read_only_output_dir_train_and_report(
    tiny_model_dir, math_file, tmp_path, read_only_dir, capsys
):
    assert main(one_step(tiny_model_dir, math_file, read_only_dir)) == 2
    err = capsys.readouterr().err
    assert "cannot write to the run folder" in err and "Traceback" not in err
    run = tmp_path / "run"
    assert main(one_step(tiny_model_dir, math_file, run)) == 0
    assert main(["report", str(run), "-o", str(read_only_dir)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Read-only" in err and "Traceback" not in err


def test_resume_of_a_finished_run_is_a_no_op(tiny_model_dir, math_file, tmp_path, capsys):
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, math_file, out)  # 2 steps, a checkpoint each
    assert main(args) == 0
    capsys.readouterr()
    final = out / "final_model" / "model.safetensors"
    before = final.stat().st_mtime_ns
    assert main([*args, "--resume"]) == 0
    assert "already finished at step 2 (max_steps 2): nothing to resume" in capsys.readouterr().out
    assert not (out / "checkpoint-3").exists()
    assert final.stat().st_mtime_ns == before
    assert metric_steps(out) == [1, 2]
    longer = args[:]
    longer[longer.index("--max-steps") + 1] = "3"  # a larger max_steps trains on
    assert main([*longer, "--resume"]) == 0
    assert metric_steps(out) == [1, 2, 3]


def test_a_failed_start_leaves_no_run_folder(tiny_model_dir, math_file, tmp_path, capsys):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    for item in Path(tiny_model_dir).iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    out = tmp_path / "runs" / "new"
    assert main(one_step(broken, math_file, out)) == 2
    err = capsys.readouterr().err
    assert "cannot start training with model" in err and "Traceback" not in err
    assert not out.exists()
    # a bad dataset fails before any folder is made
    assert main(one_step(tiny_model_dir, tmp_path / "missing.jsonl", out)) == 2
    assert not out.exists()
    # a folder the user made (empty) is kept, emptied of hicra's bookkeeping
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main(one_step(broken, math_file, mine)) == 2
    assert mine.is_dir() and list(mine.iterdir()) == []
    assert remove_failed_start(mine, created=False)


# ----------------------------------------------------------------- eval: fingerprints and locks
@pytest.fixture
def tiny_benchmark(tmp_path):
    folder = tmp_path / "bench" / "gsm8k"
    folder.mkdir(parents=True)
    rows = [{"question": f"What is {i} + 1?", "answer": f"so #### {i + 1}"} for i in range(3)]
    write_jsonl(folder / "test.jsonl", rows)
    return folder.parent


def eval_args(model, data_dir, out):
    return [
        "eval",
        "--model",
        str(model),
        "--benchmarks",
        "gsm8k",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(out),
        "--max-new-tokens",
        "4",
        "--no-progress",
    ]


def test_eval_starts_fresh_when_the_weights_change(tmp_path, tiny_benchmark, capsys):
    from hicra.testing.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "model", seed=1)
    out = tmp_path / "eval"
    assert main(eval_args(model, tiny_benchmark, out)) == 0
    first = json.loads((out / "results.json").read_text())
    assert first["timing"]["generated_problems"] == 3
    assert main(eval_args(model, tiny_benchmark, out)) == 0  # same weights: all resumed
    assert json.loads((out / "results.json").read_text())["timing"]["generated_problems"] == 0
    capsys.readouterr()
    build_tiny_model(tmp_path / "model", seed=2)  # the same folder, other weights
    assert main(eval_args(model, tiny_benchmark, out)) == 0
    err = capsys.readouterr().err
    assert "weights or tokenizer changed" in err and "evaluating afresh" in err
    again = json.loads((out / "results.json").read_text())
    assert again["timing"]["generated_problems"] == 3
    assert len(list(out.glob("samples.*.jsonl"))) == 1  # the old samples, kept aside
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3


def test_two_evals_into_one_folder_are_refused(tmp_path, tiny_model_dir, tiny_benchmark):
    out = tmp_path / "eval"
    out.mkdir()
    with FolderLock(out, "evaluation folder"):
        result = hicra(*eval_args(tiny_model_dir, tiny_benchmark, out))
    assert result.returncode == 2
    assert f"evaluation folder {out.resolve()} is in use by process {os.getpid()}" in result.stderr
    assert not (out / "samples.jsonl").exists()


def test_eval_bad_numbers_and_output_file(tmp_path, tiny_model_dir, tiny_benchmark, capsys):
    base = eval_args(tiny_model_dir, tiny_benchmark, tmp_path / "e")
    for extra, message in (
        (["--temperature", "nan"], "--temperature must be a number >= 0"),
        (["--top-p", "1.5"], "--top-p must be a number in (0, 1]"),
    ):
        assert main([*base, *extra]) == 2
        assert message in capsys.readouterr().err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(eval_args(tiny_model_dir, tiny_benchmark, afile)) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


# ----------------------------------------------------------------- mine, tag, report
def test_mine_refuses_to_overwrite_its_input(tmp_path, capsys):
    corpus = write_jsonl(
        tmp_path / "traces.jsonl", [{"completion": "wait, let me check", "correct": True}] * 5
    )
    before = corpus.read_bytes()
    assert main(["mine", str(corpus), "-o", str(corpus), "--embedder", "none"]) == 2
    assert "is the input" in capsys.readouterr().err
    link = tmp_path / "link.jsonl"
    link.symlink_to(corpus)
    assert main(["mine", str(corpus), "-o", str(link), "--embedder", "none"]) == 2
    assert corpus.read_bytes() == before


def test_tag_empty_text_and_file(tmp_path, capsys, smollm2_tokenizer):
    assert main(["tag", ""]) == 2
    assert "the text is empty" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("")
    assert main(["tag", "--file", str(tmp_path / "empty.txt")]) == 2
    err = capsys.readouterr().err
    assert "the text is empty" in err and "Traceback" not in err


def test_tag_in_pieces_finds_what_the_whole_text_has(monkeypatch, capsys, smollm2_tokenizer):
    """Long input is tagged in bounded pieces; a gram across a piece border is still found."""
    import hicra.commands.tag as tag

    text = "x = 1; wait, let me verify that. " * 40 + "But\nwait, so " * 30
    assert main(["tag", text, "--format", "json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    monkeypatch.setattr(tag, "CHUNK_CHARS", 64)
    assert main(["tag", text, "--format", "json"]) == 0
    pieces = json.loads(capsys.readouterr().out)
    assert pieces["spans"] == whole["spans"]
    assert pieces["planning_tokens"] == whole["planning_tokens"] > 0
    assert abs(pieces["tokens_total"] - whole["tokens_total"]) <= 2 * len(text) // 64


def test_report_html_never_embeds_control_bytes(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_jsonl(run / "metrics.jsonl", [{"step": s, "reward": 0.5} for s in (1, 2, 3)])
    rollout = {
        "step": 1,
        "group": 0,
        "prompt": "p\x00",
        "completion": "wait\x00 let me\x1b[31m check\x7f",
        "answer": "1",
        "reward": 1.0,
        "correct": True,
        "planning_spans": [[0, 4, "wait"]],
    }
    write_jsonl(run / "rollouts.jsonl", [rollout])
    assert main(["report", str(run)]) == 0
    page = (run / "report" / "report.html").read_bytes()
    assert b"\x00" not in page and b"\x1b" not in page and b"\x7f" not in page
    assert "\ufffd let me\ufffd[31m check\ufffd".encode() in page


# ----------------------------------------------------------------- numbers and tracebacks
BAD_NUMBERS = [
    (["--max-steps", "-5"], "--max-steps must be a whole number >= 1 (or -1), got -5"),
    (["--max-steps", "0"], "--max-steps must be a whole number >= 1 (or -1), got 0"),
    (["--dataset-limit", "0"], "--dataset-limit must be a whole number >= 1, got 0"),
    (["--learning-rate", "nan"], "--learning-rate must be a number > 0, got nan"),
    (["--learning-rate", "-1"], "--learning-rate must be a number > 0, got -1"),
    (["--learning-rate", "inf"], "--learning-rate must be a number > 0, got inf"),
    (["--num-generations", "0"], "--num-generations must be a whole number >= 2"),
    (["--per-device-train-batch-size", "0"], "--per-device-train-batch-size must be"),
    (["--max-completion-length", "0"], "--max-completion-length must be a whole number >= 1"),
    (["--temperature", "-1"], "--temperature must be a number > 0, got -1"),
    (["--top-p", "0"], "--top-p must be a number in (0, 1], got 0"),
    (["--alpha", "1"], "--hicra-alpha must be a number in [0, 1), got 1"),
    (["--fork-quantile", "1.2"], "--fork-quantile must be a number in [0, 1)"),
    (["--verify-timeout", "0"], "--verify-timeout must be a number > 0"),
    (["--lora-r", "-2"], "--lora-r must be a whole number >= 0"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_NUMBERS)
def test_bad_numbers_fail_before_trl_is_imported(flags, message):
    code = (
        "import sys; from hicra.cli import main\n"
        f"status = main(['train', *{flags!r}])\n"
        "print('trl imported' if 'trl' in sys.modules else 'trl not imported', status)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert message in result.stderr, result.stderr
    assert result.stdout.strip() == "trl not imported 2"


def test_bad_numbers_in_a_config_file_name_the_file_and_key(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("max_steps: 0\n")
    assert main(["train", "--config", str(config)]) == 2
    assert f"{config}: max_steps must be a whole number >= 1 (or -1), got 0" in (
        capsys.readouterr().err
    )


def test_library_configs_check_the_same_limits():
    from hicra.trainer import HICRAConfig

    with pytest.raises(ValueError, match="--max-steps must be a whole number >= 1"):
        HICRAConfig(output_dir="/tmp/x", max_steps=0, use_cpu=True)
    with pytest.raises(ValueError, match="--learning-rate must be a number > 0, got nan"):
        HICRAConfig(output_dir="/tmp/x", learning_rate=float("nan"), use_cpu=True)


def test_non_utf8_csv_is_a_clear_error_or_skipped(tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "data.csv"
    rows = [b"question,answer\n"] + [f'"What is {i}+1?",{i + 1}\n'.encode() for i in range(12)]
    rows[3] = b'"caf\xe9 ?",3\n'
    data.write_bytes(b"".join(rows))
    out = tmp_path / "run"
    assert main(one_step(tiny_model_dir, data, out)) == 2
    err = capsys.readouterr().err
    assert f"{data}, line 4: not UTF-8 text" in err and "Traceback" not in err
    assert not out.exists()
    assert main(one_step(tiny_model_dir, data, out, "--skip-bad-rows")) == 0
    assert "skipped 1 bad rows: 1 not UTF-8 (line 4)" in capsys.readouterr().err
