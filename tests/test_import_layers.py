"""The package's floors (docs/architecture.md), checked on the source: no import circles, and no
import from a lower floor to a higher one or sideways between wings.

Every module under src/hicra is parsed with `ast` (nothing is imported), and every import counts:
top level, inside functions, under TYPE_CHECKING. Deprecated aliases are the only exceptions and
are named below; a test checks that each of them still works and warns.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Floors, lowest first. A wing may import its own modules and any lower floor, nothing else.
FLOORS: dict[str, int] = {
    "core": 0,  # the top-level modules (errors, limits, jsonl, run_folder, ..., models, images)
    "eval": 1,
    "mining": 1,
    "report": 1,
    "integrations": 1,
    "train": 2,  # may use eval (held-out evaluation reuses its registry, sampling and scoring)
    "experiment": 3,
    "commands": 4,
    "testing": 5,  # test support: may use anything, nothing in hicra may import it
}
# Top-level modules that belong to a wing rather than to the core.
TOP_LEVEL_WINGS = {
    "hicra.cli": "commands",
    "hicra.trainer": "train",  # the trainer's public home: re-exports the train wing's classes
}
# Deprecated aliases at old paths: they import their module's new home, wherever it is.
DEPRECATED_ALIASES = {
    "hicra.tiny": "hicra.testing.tiny",
    "hicra.tiny_vision": "hicra.testing.tiny_vision",
    "hicra.report.experiment": "hicra.experiment.report",
    "hicra.mining.selection": "hicra.mining.paper_selection",
    "hicra.mining.contrast": "hicra.mining.contrastive_corpus",
    "hicra.mining.scoring": "hicra.mining.contrastive_scoring",
}
# Deprecated names inside a module (a module-level __getattr__) that import their new home.
DEPRECATED_EDGES = {
    ("hicra.eval.sampling", "hicra.eval.backends"): "sampling.choose_backend, make_backend",
    ("hicra.train.images", "hicra.train.data"): "images.image_field, row_images",
}


def module_files() -> dict[str, Path]:
    files = {}
    for path in sorted((SRC / "hicra").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imports(name: str, path: Path, modules: set[str]) -> list[tuple[str, int]]:
    """(imported hicra module, line) for every import in the file, however deep."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{alias.name}"
                found.append((sub if sub in modules else target, node.lineno))
    return [(t, line) for t, line in found if t == "hicra" or t.startswith("hicra.")]


def wing(module: str) -> str:
    if module in TOP_LEVEL_WINGS:
        return TOP_LEVEL_WINGS[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOORS) else "core"


def graph() -> dict[str, list[tuple[str, int]]]:
    files = module_files()
    edges = {}
    for name, path in files.items():
        if name in DEPRECATED_ALIASES:
            continue
        edges[name] = [
            (target, line)
            for target, line in imports(name, path, set(files))
            if target != name and (name, target) not in DEPRECATED_EDGES
        ]
    return edges


def where(module: str, line: int) -> str:
    return f"{module_files()[module].relative_to(SRC)}:{line}"


def test_every_module_has_a_floor():
    assert set(FLOORS) >= {wing(m) for m in module_files()}
    assert wing("hicra.errors") == wing("hicra") == "core"
    assert wing("hicra.eval.runner") == "eval" and wing("hicra.eval") == "eval"
    assert wing("hicra.cli") == "commands" and wing("hicra.testing.tiny") == "testing"


def test_imports_go_down_only():
    wrong = []
    for module, targets in graph().items():
        for target, line in targets:
            own, other = wing(module), wing(target)
            if own == other or FLOORS[other] < FLOORS[own]:
                continue
            how = "sideways to" if FLOORS[other] == FLOORS[own] else "up to"
            wrong.append(
                f"{where(module, line)}: {module} imports {target}: {own} (floor {FLOORS[own]}) "
                f"may not import {how} {other} (floor {FLOORS[other]})"
            )
    assert not wrong, "imports against the floors (docs/architecture.md):\n" + "\n".join(wrong)


def find_cycle(edges: dict[str, list[tuple[str, int]]]) -> list[tuple[str, str, int]] | None:
    """One import circle as (module, imported, line) steps, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[tuple[str, str, int]] = []

    def visit(module: str) -> list[tuple[str, str, int]] | None:
        state[module] = 1
        for target, line in edges.get(module, []):
            path.append((module, target, line))
            if state.get(target) == 1:
                start = next(i for i, step in enumerate(path) if step[0] == target)
                return path[start:]
            if target not in state and (cycle := visit(target)):
                return cycle
            path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_circles():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle:\n" + "\n".join(
        f"{where(module, line)}: {module} imports {target}" for module, target, line in cycle
    )


def test_the_checks_catch_a_circle_and_name_its_lines():
    edges = {"a": [("b", 3)], "b": [("c", 7)], "c": [("a", 9)], "d": [("a", 1)]}
    assert find_cycle(edges) == [("a", "b", 3), ("b", "c", 7), ("c", "a", 9)]
    assert find_cycle({"a": [("b", 3)], "b": []}) is None


def test_imports_inside_functions_count(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "def f():\n    from hicra.train import runner\n\n"
        "from . import limits\nimport hicra.eval.runner\nimport numpy\n"
    )
    found = imports("hicra.core_module", source, {"hicra.train.runner", "hicra.limits"})
    assert sorted(found) == [
        ("hicra.eval.runner", 5),
        ("hicra.limits", 4),
        ("hicra.train.runner", 2),
    ]


def test_deprecated_aliases_still_work_and_warn():
    """Each old path is the moved module itself, and importing it warns."""
    checks = [
        f"import {old}, {new}\nassert sys.modules[{old!r}] is {new}, {old!r}"
        for old, new in DEPRECATED_ALIASES.items()
    ]
    code = "import sys, warnings\nwarnings.simplefilter('error', DeprecationWarning)\n"
    for old in DEPRECATED_ALIASES:
        code += (
            f"try:\n    import {old}\nexcept DeprecationWarning as w:\n"
            f"    assert {old!r} in str(w), w\nelse:\n    raise SystemExit('{old}: no warning')\n"
            f"sys.modules.pop({old!r}, None)\n"
        )
    code += "warnings.simplefilter('ignore')\n" + "\n".join(checks) + "\n"
    code += (
        "import hicra.eval.sampling as s, hicra.eval.backends as b\n"
        "assert s.make_backend is b.make_backend and s.choose_backend('hf') == 'hf'\n"
        "import hicra.mining.pipeline as mp, hicra.mining.pool as pool\n"
        "assert mp.count_pool is pool.count_pool and mp.parameters is pool.parameters\n"
        "import hicra.train.images as ti, hicra.train.data as td\n"
        "assert ti.image_field is td.image_field and ti.row_images is td.row_images\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=SRC
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout


@pytest.mark.parametrize("alias", sorted(DEPRECATED_ALIASES))
def test_deprecated_aliases_are_named_as_such(alias):
    path = module_files()[alias]
    assert "Deprecated alias" in ast.get_docstring(ast.parse(path.read_text()))
