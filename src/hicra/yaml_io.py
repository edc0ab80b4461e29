"""The one YAML reader of hicra: PyYAML's safe loader, with aliases that may not blow up.

PyYAML's `safe_load` builds an alias (`*a`) as a second reference to the anchored object, so a
"billion laughs" file (9 levels of 10 aliases each) loads in a millisecond, but every later walk
over it (checking its numbers, comparing, writing it back) visits 10^9 values and ends in a
MemoryError minutes later. **Decision:** a document is refused when its values, counted as if
every alias were written out, exceed `MAX_VALUES`; the count is made on the parsed node graph,
each node sized once, so the check takes time in the file's size, not in its expansion.
Ordinary anchors (`<<: *defaults` in an experiment file) stay allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from hicra.errors import HicraError

MAX_VALUES = 1_000_000  # far beyond any config; a 9x10 alias bomb expands to 10^9


class YamlError(HicraError):
    """A YAML file cannot be read; the message names the file (and line, where known)."""


def _expanded_size(root: yaml.Node, where: str) -> int:
    """Values in the document with every alias written out, without writing them out."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = 1
            continue
        kids: list[yaml.Node] = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children_done:
            active.discard(key)
            total = 1 + sum(sizes[id(k)] for k in kids)
            sizes[key] = min(total, MAX_VALUES + 1)  # capped: no huge integers either
            continue
        if key in active:
            mark = node.start_mark
            raise YamlError(f"{where}, line {mark.line + 1}: an alias refers to itself")
        active.add(key)
        stack.append((node, True))
        for kid in kids:
            if id(kid) in active:
                mark = kid.start_mark
                raise YamlError(f"{where}, line {mark.line + 1}: an alias refers to itself")
            stack.append((kid, False))
    return sizes[id(root)]


def load_yaml_text(text: str, where: str) -> Any:
    """A YAML document as Python values; `YamlError` (one line naming `where`) when it is not
    valid YAML or its aliases expand past MAX_VALUES."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, where) > MAX_VALUES:
            raise YamlError(
                f"{where}: refused: its aliases (*name) expand to more than {MAX_VALUES:,} values "
                "(a YAML 'billion laughs' file?)"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        place = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise YamlError(f"{where}{place}: invalid YAML: {problem}") from None
    except RecursionError:
        raise YamlError(f"{where}: nested too deeply to read") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | os.PathLike[str]) -> Any:
    """A YAML file as Python values (see `load_yaml_text`); `YamlError` when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise YamlError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise YamlError(f"{path}: cannot read: {err.strerror or err}") from None
    return load_yaml_text(text, str(path))
