import json
import subprocess
import sys

from hicra.cli import main


def test_tag_brackets_and_ratio(capsys, smollm2_tokenizer):
    assert main(["tag", "Hmm, so also wait, no.", "--format", "brackets"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[[Hmm, so]] also[[ wait, no]].")  # H mm , Ġso | Ġalso | Ġwait , Ġno | .
    assert "planning tokens: 7 / 9 (77.78%)" in out


def test_tag_json_file_and_grams_file(tmp_path, capsys, smollm2_tokenizer):
    (tmp_path / "g.txt").write_text("also\n")
    (tmp_path / "t.txt").write_text("So also x")
    args = ["tag", "--file", str(tmp_path / "t.txt"), "--grams", str(tmp_path / "g.txt")]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["spans"] == [[3, 7, "also"]]
    assert [t for t, p in zip(data["tokens"], data["planning"], strict=True) if p] == [" also"]
    assert data["planning_ratio"] == 1 / 3


def test_tag_sample_trace(capsys, smollm2_tokenizer):
    assert main(["tag", "--sample", "--format", "brackets"]) == 0
    out = capsys.readouterr().out
    assert "[[Let's break this down]]" in out and "[[Wait, but]]" in out
    assert "\\boxed{86}" in out


def test_tag_errors_are_clear(tmp_path, capsys):
    assert main(["tag", "--file", str(tmp_path / "missing.txt")]) == 2
    assert "file not found" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"grams": [1]}')
    assert main(["tag", "x", "--grams", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "entry 0 is int 1" in err and "Traceback" not in err
    assert main(["tag", "x", "--tokenizer", "./no/such/folder"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_reads_stdin(smollm2_tokenizer):
    result = subprocess.run(
        [sys.executable, "-m", "hicra.cli", "tag"],
        input="Let me think.",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[[Let me]] think.")


def test_tag_reads_a_pipe_and_dev_null(tmp_path, capsys, smollm2_tokenizer):
    """`--file <(echo ...)` is a pipe (/dev/fd/N) and /dev/null a device: both are read as files
    (they were refused as "file not found"); /dev/null holds no text, which is said."""
    import os

    (tmp_path / "g.txt").write_text("also\n")
    read, write = os.pipe()
    os.write(write, b"So also x")
    os.close(write)
    try:
        args = ["tag", "--file", f"/dev/fd/{read}", "--grams", str(tmp_path / "g.txt")]
        assert main([*args, "--format", "brackets"]) == 0
    finally:
        os.close(read)
    assert capsys.readouterr().out.startswith("So[[ also]] x")
    assert main(["tag", "--file", "/dev/null"]) == 2
    assert capsys.readouterr().err.strip() == "hicra tag: error: the text is empty: nothing to tag"
    assert main(["tag", "--file", str(tmp_path)]) == 2
    assert "is a folder, not a text file" in capsys.readouterr().err
