"""The contrast corpus of contrastive selection: what problems (or reference texts) say.

Sources, any number of them, each counted on its own (a strategic gram must be said more often by
the solvers than by every source, so one large source cannot dilute another):
- `problems` (a default): the problem statement of each successful trace, read from the traces'
  problem field (`problem`, `question`, `prompt`, ... or `--problem-field`);
- `solutions` (a default): reference solutions bundled with hicra (`assets/contrast/`: 1,869
  GSM8K train and 1,250 MATH test solutions, MIT), prose that only executes: what they say more
  often than solvers ("the total", "number of", "subtract the") is computation, not strategy;
- a file: JSONL or Parquet (every row counts; its text field detected as for traces, or
  `--contrast-field`), or plain text (`.txt`, `.md`: every line).

Each distinct text counts once (eight rollouts of one prompt are one problem statement), so the
contrast is what the problems say, not how often they were sampled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hicra.mining.sources import NO_FIELD, CorpusReport, SourceError, TraceSpec, iter_trace_rows

PROBLEMS = "problems"
SOLUTIONS = "solutions"
BUILTIN_SOURCES = (PROBLEMS, SOLUTIONS)
TEXT_SUFFIXES = (".txt", ".md")
SOLUTIONS_ASSET = "assets/contrast/solutions.jsonl.gz"


def solutions_path() -> Path:
    """The bundled reference solutions (a file inside the installed package)."""
    return Path(str(resources.files("hicra").joinpath(SOLUTIONS_ASSET)))


@dataclass
class ContrastReport:
    """What the contrast corpus held: distinct texts per source, and n-grams counted."""

    sources: list[str]
    texts: dict[str, int] = field(default_factory=dict)  # source -> distinct texts
    duplicates: int = 0
    ngrams: int = 0  # n-gram occurrences of the mined lengths, in all contrast texts
    shared: int = 0  # occurrences of pool n-grams among them
    ngrams_by_source: dict[str, int] = field(default_factory=dict)
    shared_by_source: dict[str, int] = field(default_factory=dict)
    files: CorpusReport = field(default_factory=CorpusReport)

    def to_dict(self) -> dict[str, object]:
        return {
            "sources": self.sources,
            "distinct_texts": dict(self.texts),
            "duplicate_texts_skipped": self.duplicates,
            "ngram_occurrences": self.ngrams,
            "pool_ngram_occurrences": self.shared,
            "ngram_occurrences_by_source": dict(self.ngrams_by_source),
            "pool_ngram_occurrences_by_source": dict(self.shared_by_source),
            "files": self.files.to_dict()["files"] if self.files.files else [],
        }


class DistinctTexts:
    """Passes each text once (by a 128-bit digest), counting distinct texts per source."""

    def __init__(self, report: ContrastReport) -> None:
        self.report = report
        self._seen: set[bytes] = set()

    def __call__(self, texts: Iterable[str], source: str) -> Iterator[str]:
        self.report.texts.setdefault(source, 0)
        for text in texts:
            digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
            key = digest.digest()
            if key in self._seen:
                self.report.duplicates += 1
                continue
            self._seen.add(key)
            self.report.texts[source] += 1
            yield text


def _text_lines(path: Path) -> Iterator[str]:
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                number += 1
                if line.strip():
                    yield line
    except UnicodeDecodeError:
        raise SourceError(f"contrast {path}, line {number + 1}: not UTF-8 text") from None
    except OSError as err:
        raise SourceError(f"contrast {path}: cannot read ({err.strerror or err})") from None


def file_texts(
    path: str | Path, text_field: str | None, report: CorpusReport, max_line_bytes: int
) -> Iterator[str]:
    """The texts of one contrast file (checked by `check_sources`): lines, or rows' text field.

    `solutions` is the bundled file (its `solution` field)."""
    if str(path) == SOLUTIONS:
        path, text_field = solutions_path(), "solution"
    path = Path(path)
    if path.suffix.lower() in TEXT_SUFFIXES:
        yield from _text_lines(path)
        return
    spec = TraceSpec(text_field, NO_FIELD, problem_field=NO_FIELD, group_field=NO_FIELD)
    for row in iter_trace_rows([path], spec, report, max_line_bytes=max_line_bytes, extras=False):
        yield row.text


def check_sources(sources: Sequence[str]) -> None:
    """Each source is `problems`, `solutions` or an existing file, before anything is read."""
    if not sources:
        raise SourceError("--contrast: no contrast source; give 'problems', 'solutions' or a file")
    for source in sources:
        if source not in BUILTIN_SOURCES and not Path(source).is_file():
            what = "is a folder" if Path(source).is_dir() else "does not exist"
            raise SourceError(
                f"--contrast {source}: {what}; give 'problems', 'solutions' or a file"
            )
    if SOLUTIONS in sources and not solutions_path().is_file():
        raise SourceError(f"--contrast solutions: {solutions_path()} is missing from the package")
