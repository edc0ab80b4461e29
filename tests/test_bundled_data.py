"""The project stands on its own: bundled benchmarks intact, in the wheel, and no workspace paths."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from hicra.eval.registry import BENCHMARKS, bundled_dir, bundled_file

# the vision-language benchmarks are not bundled (their images are large): --data-dir or the hub
TEXT_BENCHMARKS = [b for b in BENCHMARKS.values() if not b.vision]

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "SHA256SUMS"  # the files as shipped: `sha256sum -c SHA256SUMS` in the folder
UNCOMPRESSED = "SHA256SUMS.uncompressed"  # the JSONL inside each .gz, as published
DOCS = {MANIFEST, UNCOMPRESSED, "README.md"}


def _manifest(path: Path) -> dict[str, str]:
    """`sha256sum` output as {relative path: hex digest}."""
    entries = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, name = line.split(maxsplit=1)
        entries[name.lstrip("*")] = digest
    return entries


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundled_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - DOCS


def test_bundled_files_match_the_manifest():
    root = bundled_dir()
    assert root is not None
    listed = _manifest(root / MANIFEST)
    # every shipped file is listed (a file added without its checksum fails here), and exists
    assert set(listed) == _bundled_files(root)
    for name, digest in listed.items():
        assert _sha256((root / name).read_bytes()) == digest, name
    for bench in TEXT_BENCHMARKS:
        assert f"{bench.folder}/test.jsonl.gz" in listed, bench.name
    assert {"LICENSE.grade-school-math", "LICENSE.math-evaluation-harness"} <= set(listed)
    for licence in ("LICENSE.grade-school-math", "LICENSE.math-evaluation-harness"):
        assert (root / licence).read_text().startswith("MIT License")
    assert not any("train" in name for name in listed)  # test splits only
    total = sum((root / name).stat().st_size for name in listed)
    assert total < 2_500_000, total  # about 2 MB: keep the package small


def test_decompressed_files_are_the_published_jsonl():
    root = bundled_dir()
    published = _manifest(root / UNCOMPRESSED)
    assert set(published) == {f"{b.folder}/test.jsonl" for b in TEXT_BENCHMARKS}
    for name, digest in published.items():
        with gzip.open(root / f"{name}.gz", "rb") as handle:
            assert _sha256(handle.read()) == digest, name


def test_a_changed_file_fails_the_check(tmp_path):
    """The manifest check above can fail: one flipped byte changes the digest."""
    path = bundled_file(BENCHMARKS["aime25"])
    data = bytearray(path.read_bytes())
    listed = _manifest(bundled_dir() / MANIFEST)
    assert _sha256(bytes(data)) == listed["aime25/test.jsonl.gz"]
    data[len(data) // 2] ^= 1
    assert _sha256(bytes(data)) != listed["aime25/test.jsonl.gz"]


def test_the_wheel_ships_the_bundled_benchmarks(tmp_path):
    """`pip wheel .` from a copy of the sources: every bundled file is inside, byte for byte."""
    source = tmp_path / "src-copy"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    junk = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(ROOT / "src", source / "src", ignore=junk)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*pip_wheel, "--no-index", "--quiet", "--wheel-dir", str(tmp_path / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("hicra-*.whl")
    root = ROOT / "src" / "hicra" / "assets" / "benchmarks"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in sorted(_bundled_files(root) | DOCS):
            inside = f"hicra/assets/benchmarks/{name}"
            assert inside in names, inside
            assert archive.read(inside) == (root / name).read_bytes(), inside
        assert "hicra/assets/paper.json" in names and "hicra/configs/default.yaml" in names
        (licence,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(licence) == (ROOT / "LICENSE").read_bytes()
        contrast = ROOT / "src" / "hicra" / "assets" / "contrast"  # hicra mine's default contrast
        for path in sorted(contrast.iterdir()):
            inside = f"hicra/assets/contrast/{path.name}"
            assert archive.read(inside) == path.read_bytes(), inside


# --------------------------------------------------------------------------- no workspace paths
# The team's workspace keeps source data in a folder beside the checkout; a user's clone has none.
# The patterns are spelled so that this file does not match them itself.
WORKSPACE_PATTERNS = [
    re.compile(r"\.\./share[d]\b"),  # a relative path to it
    re.compile(r"""["']share[d]["']"""),  # a path component: parents[2] / "..." / "data"
    re.compile(r"/work/share[d]\b"),  # its absolute path
]


def _workspace_references(text: str) -> list[str]:
    return [m.group(0) for pattern in WORKSPACE_PATTERNS for m in pattern.finditer(text)]


def test_the_patterns_catch_each_way_of_naming_the_folder():
    word = "shar" + "ed"
    for text in (
        f"python x.py ../{word}/data/math",
        f'DATA = Path(__file__).resolve().parents[2] / "{word}" / "data"',
        f"os.path.join(root, '{word}', 'data')",
        f"/work/{word}/data/math/SHA256SUMS",
    ):
        assert _workspace_references(text), text
    assert not _workspace_references("a shared legend; the shared core; shared_memory")


def test_no_file_under_src_or_tests_refers_to_the_workspace_folder():
    found = []
    for top in ("src", "tests"):
        for path in sorted((ROOT / top).rglob("*")):
            generated = any(p == "__pycache__" or p.endswith(".egg-info") for p in path.parts)
            if not path.is_file() or generated or path.suffix == ".gz":
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue  # binary
            found += [f"{path.relative_to(ROOT)}: {hit}" for hit in _workspace_references(text)]
    assert found == []


def test_nothing_cites_the_teams_notes_that_a_clone_lacks():
    """The team's paper notes and design notes live outside the repository: docs and code cite
    the paper itself (arXiv 2509.03646) instead."""
    notes = [f"{name}.md" for name in ("PAPER", "DESIGN")]  # spelled so this file does not match
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    paths += sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py"))
    found = [
        f"{path.relative_to(ROOT)}: {note}"
        for path in paths
        for note in notes
        if note in path.read_text(encoding="utf-8")
    ]
    assert found == []
