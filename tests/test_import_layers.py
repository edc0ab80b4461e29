"""The package's floors (docs/architecture.md), checked on the source: no import circles, and no
import from a lower floor to a higher one or sideways between wings.

Every module under src/hicra is parsed with `ast` (nothing is imported), and every import counts:
top level, inside functions, under TYPE_CHECKING. There are no exceptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

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
        edges[name] = [
            (target, line) for target, line in imports(name, path, set(files)) if target != name
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
