import gzip
import json

import pytest

from hicra.jsonl import JsonlError, ReadStats, append_jsonl, read_jsonl


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def write_gz(path, data: bytes):
    path.write_bytes(gzip.compress(data))
    return path


def test_reads_objects_with_line_numbers_and_skips_blank_lines(tmp_path):
    path = write(tmp_path / "a.jsonl", b'{"a": 1}\n\n{"a": 2}\n')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (3, {"a": 2})]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": 1}\n{"a": \n', "line 2: invalid JSON"),
        (b'{"a": 1}\n[1, 2]\n', "line 2: expected a JSON object, got list"),
        (b'{"a": "caf\xe9"}\n', "line 1: not UTF-8"),
        (b'{"a": "' + b"x" * 5000 + b'"}\n{"b": 1}\n', "line 1: line longer than 1,000 bytes"),
    ],
)
@pytest.mark.parametrize("name", ["bad.jsonl", "bad.jsonl.gz"])
def test_errors_name_file_and_line(tmp_path, data, message, name):
    """The same errors and line numbers, whether the file is plain or gzip."""
    path = (write_gz if name.endswith(".gz") else write)(tmp_path / name, data)
    with pytest.raises(JsonlError, match=message) as info:
        list(read_jsonl(path, max_line_bytes=1000))
    assert str(path) in str(info.value)


def test_skip_mode_counts_each_reason(tmp_path):
    data = b'{"a": 1}\nnot json\n"str"\n\xff\xfe\n' + b"y" * 3000 + b'\n{"a": 2}\n'
    path = write(tmp_path / "mixed.jsonl", data)
    stats = ReadStats()
    rows = list(read_jsonl(path, on_error="skip", stats=stats, max_line_bytes=1000))
    assert [r for _, r in rows] == [{"a": 1}, {"a": 2}]
    assert stats.skipped == {
        "invalid JSON": [2],
        "not an object": [3],
        "not UTF-8": [4],
        "too long": [5],
    }
    assert stats.rows == 2 and stats.skipped_count == 4
    assert "1 invalid JSON (line 2)" in stats.summary()


def test_truncated_last_line_tolerated_only_when_asked(tmp_path):
    path = write(tmp_path / "run.jsonl", b'{"step": 1}\n{"step": 2}\n{"st')
    stats = ReadStats()
    rows = list(read_jsonl(path, allow_truncated_last_line=True, stats=stats))
    assert [r["step"] for _, r in rows] == [1, 2]
    assert stats.skipped == {"truncated last line": [3]}
    with pytest.raises(JsonlError, match="line 3"):
        list(read_jsonl(path))


def test_missing_file_and_append(tmp_path):
    with pytest.raises(JsonlError, match="file not found"):
        list(read_jsonl(tmp_path / "none.jsonl"))
    out = tmp_path / "out.jsonl"
    append_jsonl(out, [{"x": (1, 2)}, {"y": tmp_path}])
    append_jsonl(out, [{"z": 3}])
    lines = out.read_text().splitlines()
    assert json.loads(lines[0]) == {"x": [1, 2]} and json.loads(lines[2]) == {"z": 3}
    assert json.loads(lines[1]) == {"y": str(tmp_path)}


# --------------------------------------------------------------------------- gzip


def test_gzip_reads_like_the_plain_file(tmp_path):
    data = b"".join(b'{"n": %d}\n' % i for i in range(50_000)) + b"\n" + b'{"n": -1}'  # > 1 MiB
    plain = list(read_jsonl(write(tmp_path / "a.jsonl", data)))
    packed = list(read_jsonl(write_gz(tmp_path / "a.jsonl.gz", data)))
    assert packed == plain and len(plain) == 50_001
    assert plain[-1] == (50_002, {"n": -1})  # the blank line still counts


def test_gzip_damage_is_an_error_even_when_skipping(tmp_path):
    not_gzip = write(tmp_path / "plain.jsonl.gz", b'{"a": 1}\n')
    with pytest.raises(JsonlError, match=r"plain.jsonl.gz, line 1: damaged gzip data: Not a gz"):
        list(read_jsonl(not_gzip))
    data = gzip.compress(b"".join(b'{"n": %d}\n' % i for i in range(3000)))
    cut = write(tmp_path / "cut.jsonl.gz", data[: len(data) // 2])
    rows = []
    with pytest.raises(JsonlError, match=r"cut.jsonl.gz, line (\d+): damaged gzip") as info:
        for number, row in read_jsonl(cut, on_error="skip", allow_truncated_last_line=True):
            rows.append((number, row["n"]))
    line = int(info.value.args[0].split("line ")[1].split(":")[0])
    assert rows == [(i + 1, i) for i in range(line - 1)] and line > 1


def test_gzip_truncated_last_line_and_skipping(tmp_path):
    path = write_gz(tmp_path / "run.jsonl.gz", b'{"step": 1}\nnot json\n{"step": 2}\n{"st')
    stats = ReadStats()
    rows = list(read_jsonl(path, on_error="skip", stats=stats, allow_truncated_last_line=True))
    assert [r["step"] for _, r in rows] == [1, 2]
    assert stats.skipped == {"invalid JSON": [2], "truncated last line": [4]}
    whole = write_gz(tmp_path / "whole.jsonl.gz", b'{"step": 1}\n')
    assert list(read_jsonl(whole, allow_truncated_last_line=True)) == [(1, {"step": 1})]
