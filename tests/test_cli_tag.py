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
