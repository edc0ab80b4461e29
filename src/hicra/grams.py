"""Strategic grams: the named, versioned phrase set that defines planning tokens.

A set is immutable and normalized (lowercase, whitespace collapsed, curly apostrophes made straight,
duplicates dropped, first occurrence kept) so that two sets built from the same phrases compare equal
and the tagger never has to re-normalize.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hicra.errors import HicraError

SCHEMA = "hicra.strategic_grams"
SCHEMA_VERSION = 1
PRESETS = ("paper",)

_WHITESPACE = re.compile(r"\s+")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


class GramsError(HicraError):
    """A strategic-gram set or file is invalid; the message names the file and the entry."""


def normalize_gram(text: str) -> str:
    """Lowercase, straighten apostrophes and collapse whitespace: the canonical form of a gram."""
    return _WHITESPACE.sub(" ", text.translate(_APOSTROPHES)).strip().lower()


def _freeze(value: Any) -> Any:
    """Deep read-only copy of JSON-like data, so provenance cannot be edited behind the set's back."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


class StrategicGrams:
    """An immutable set of strategic grams with a name, provenance and optional per-gram statistics."""

    __slots__ = ("_grams", "_index", "name", "provenance", "stats")

    def __init__(
        self,
        grams: Iterable[str],
        name: str = "custom",
        provenance: Mapping[str, Any] | None = None,
        stats: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        source: str = "grams",
    ) -> None:
        normalized: dict[str, None] = {}
        for i, gram in enumerate(grams):
            if not isinstance(gram, str):
                raise GramsError(
                    f"{source}: entry {i} is {type(gram).__name__} {gram!r}, expected a string"
                )
            norm = normalize_gram(gram)
            if not norm:
                raise GramsError(f"{source}: entry {i} is empty after normalization ({gram!r})")
            normalized.setdefault(norm)
        if not normalized:
            raise GramsError(f"{source}: the set has no grams")
        object.__setattr__(self, "_grams", tuple(normalized))
        object.__setattr__(self, "_index", frozenset(normalized))
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "provenance", _freeze(dict(provenance or {})))
        kept_stats = {normalize_gram(k): v for k, v in (stats or {}).items()}
        object.__setattr__(self, "stats", _freeze(kept_stats))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("StrategicGrams is immutable; build a new set instead")

    @property
    def grams(self) -> tuple[str, ...]:
        return self._grams

    def __len__(self) -> int:
        return len(self._grams)

    @property
    def content_hash(self) -> str:
        """The grams' content (normalized, in order), hashed: a run's config.yaml records it so
        that a resume with an edited grams file of the same name is refused."""
        return hashlib.sha256("\n".join(self._grams).encode("utf-8")).hexdigest()[:16]

    def __iter__(self) -> Iterator[str]:
        return iter(self._grams)

    def __contains__(self, gram: object) -> bool:
        return isinstance(gram, str) and normalize_gram(gram) in self._index

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StrategicGrams):
            return NotImplemented
        return self._grams == other._grams and self.name == other.name

    def __hash__(self) -> int:
        return hash((self._grams, self.name))

    def __repr__(self) -> str:
        head = ", ".join(repr(g) for g in self._grams[:3])
        more = ", ..." if len(self) > 3 else ""
        return f"StrategicGrams(name={self.name!r}, {len(self)} grams: [{head}{more}])"

    # ----------------------------------------------------------------- derived sets
    def sample(self, fraction: float, seed: int = 0) -> StrategicGrams:
        """Keep a random `fraction` of the grams: the paper's robustness check drops 30%."""
        if not 0.0 < fraction <= 1.0:
            raise GramsError(f"fraction must be in (0, 1], got {fraction}")
        rng = random.Random(seed)
        k = max(1, round(len(self) * fraction))
        keep = set(rng.sample(range(len(self)), k))
        grams = [g for i, g in enumerate(self._grams) if i in keep]
        provenance = {
            **_thaw(self.provenance),
            "sampled_from": self.name,
            "sample_fraction": fraction,
            "sample_seed": seed,
        }
        return StrategicGrams(grams, f"{self.name}-sample{fraction:g}", provenance)

    # ----------------------------------------------------------------- presets and files
    @classmethod
    def preset(cls, name: str) -> StrategicGrams:
        """A set shipped with hicra; `paper` is the 249-gram list of the paper's Appendix A."""
        if name not in PRESETS:
            raise GramsError(
                f"unknown strategic-gram preset {name!r}; presets: {', '.join(PRESETS)}"
            )
        ref = resources.files("hicra").joinpath(f"assets/{name}.json")
        with resources.as_file(ref) as path:
            return cls.load(path)

    @classmethod
    def resolve(cls, spec: str | Path | StrategicGrams) -> StrategicGrams:
        """A preset name, a file path, or an existing set: what `--grams` accepts."""
        if isinstance(spec, StrategicGrams):
            return spec
        if isinstance(spec, str) and spec in PRESETS:
            return cls.preset(spec)
        path = Path(spec)
        if not path.exists():
            raise GramsError(
                f"strategic grams {str(spec)!r} is neither a preset ({', '.join(PRESETS)}) "
                "nor an existing file"
            )
        return cls.load(path)

    @classmethod
    def load(cls, path: str | Path) -> StrategicGrams:
        """Read a hicra JSON file, a JSON list or object with `grams`, or a text file (one gram a line)."""
        path = Path(path)
        if not path.is_file():
            raise GramsError(f"strategic grams file not found: {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise GramsError(f"{path}: not UTF-8 text (byte {err.start})") from None
        if path.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
            return cls._from_json(text, path)
        lines = [line.strip() for line in text.splitlines()]
        grams = [line for line in lines if line]
        return cls(grams, name=path.stem, provenance={"file": str(path)}, source=str(path))

    @classmethod
    def _from_json(cls, text: str, path: Path) -> StrategicGrams:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise GramsError(
                f"{path}: invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}"
            ) from None
        if isinstance(data, list):
            return cls(data, name=path.stem, provenance={"file": str(path)}, source=str(path))
        if not isinstance(data, dict) or "grams" not in data:
            raise GramsError(
                f"{path}: expected a JSON list of grams or an object with a 'grams' list"
            )
        version = data.get("version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise GramsError(
                f"{path}: schema version {version!r} is newer than this hicra supports "
                f"({SCHEMA_VERSION}); upgrade hicra"
            )
        grams = data["grams"]
        if not isinstance(grams, list):
            raise GramsError(f"{path}: field 'grams' must be a list, got {type(grams).__name__}")
        provenance = data.get("provenance") or {
            k: v for k, v in data.items() if k not in ("grams", "stats", "schema", "version")
        }
        stats = data.get("stats") or {}
        if not isinstance(stats, dict):
            raise GramsError(f"{path}: field 'stats' must be an object mapping gram to statistics")
        return cls(
            grams,
            name=str(data.get("name") or path.stem),
            provenance=provenance,
            stats=stats,
            source=f"{path}: field 'grams'",
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "name": self.name,
            "provenance": _thaw(self.provenance),
            "grams": list(self._grams),
        }
        if self.stats:
            data["stats"] = _thaw(self.stats)
        return data

    def save(self, path: str | Path) -> Path:
        """Write the JSON format that `load` reads; parent folders are created."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", "utf-8")
        tmp.replace(path)
        return path
