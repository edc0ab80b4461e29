"""The Python examples of README.md and docs/train.md run as they are written.

Each ```python block is taken from the markdown and executed on its own, in a fresh namespace and
an empty working folder: a block that uses a name it does not define, or that no longer matches
the API, fails here. Blocks that load the bundled SmolLM2 model are slow-marked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/train.md")
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list:
    params = []
    for name in DOCS:
        text = (ROOT / name).read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            code = match.group(1)
            marks = [pytest.mark.slow] if "smollm2-135m" in code else []
            params.append(pytest.param(code, id=f"{name}:{line}", marks=marks))
    return params


def test_the_docs_have_python_examples():
    assert len(python_blocks()) >= 5


@pytest.mark.parametrize("code", python_blocks())
def test_python_example_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs_example__"}
    exec(compile(code, "<docs example>", "exec"), namespace)
    if "trainer" in namespace:  # a training example trained
        assert namespace["trainer"].state.global_step == namespace["config"].max_steps
