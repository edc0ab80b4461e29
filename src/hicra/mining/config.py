"""What a mining run is given: `MiningConfig`, the defaults of both selections, and its errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from hicra.errors import HicraError
from hicra.mining.contrastive.corpus import PROBLEMS, SOLUTIONS
from hicra.mining.contrastive.scoring import SelectionRules
from hicra.mining.counting import DEFAULT_MAX_ENTRIES
from hicra.mining.names import CONTRASTIVE, PAPER, SELECTIONS
from hicra.mining.paper.clustering import DEFAULT_THRESHOLD, MINILM, NONE

T = TypeVar("T")

# --min-df defaults, shares of the traces used (at least 2): the paper's prefilter before
# embedding; the contrastive pool (a strategic gram recurs across solutions).
AUTO_MIN_DF_FRACTION = {PAPER: 0.002, CONTRASTIVE: 0.01}
DEFAULT_NGRAM_MIN = {PAPER: 3, CONTRASTIVE: 1}
DEFAULT_CONTRAST = (PROBLEMS, SOLUTIONS)  # the traces' problems, the bundled solutions
DEFAULT_TOP_FRACTION = 0.2
DEFAULT_MAX_CANDIDATES = 2000
MAX_NGRAM = 10
# Options that only one selection reads: giving one implies that selection; mixing is an error.
PAPER_OPTIONS = {
    "top_fraction": "--top-fraction",
    "max_candidates": "--max-candidates",
    "embedder": "--embedder",
    "threshold": "--threshold",
    "sparsity": "--sparsity",
}
CONTRASTIVE_OPTIONS = {
    "contrast": "--contrast",
    "contrast_field": "--contrast-field",
    "rules": "--max-grams and the selection rules",
}


class MiningError(HicraError):
    """Mining cannot produce a gram set from this input or with these parameters."""


@dataclass(frozen=True)
class MiningConfig:
    """Parameters of `mine`; the defaults are the CLI's. None: the selection's default.

    `selection` None is contrastive, unless an option only the paper's pipeline reads is given
    (or `mine` gets a model): then it is the paper's. `resolved()` fills in every default.
    """

    selection: str | None = None
    ngram_min: int | None = None  # contrastive 1, paper 3
    ngram_max: int = 5
    min_df: int | None = None  # max(2, ceil(share of the traces used)): AUTO_MIN_DF_FRACTION
    # the paper's pipeline
    top_fraction: float | None = None  # 0.2
    max_candidates: int | None = None  # 2000
    embedder: str | None = None  # "minilm", "none" (exact duplicates only) or a model folder
    threshold: float | None = None  # DEFAULT_THRESHOLD
    sparsity: bool = False
    # contrastive selection
    contrast: tuple[str, ...] | None = None  # DEFAULT_CONTRAST: "problems", "solutions", files
    contrast_field: str | None = None  # text field of contrast files (None: detected)
    rules: SelectionRules | None = None
    # both
    max_table: int = DEFAULT_MAX_ENTRIES
    batch_size: int = 64  # embedding batch: short phrases encode fastest in small batches on CPU
    # torch threads while embedding; None: torch's default. One is robust: 2,000 short phrases
    # take seconds, while spinning workers on cores that other processes keep busy are 10x slower.
    threads: int | None = 1

    def _given(self, options: dict[str, str]) -> list[str]:
        given = [name for name in options if getattr(self, name) is not None]
        return [options[name] for name in given if getattr(self, name) is not False]

    def resolved(self, model_given: bool = False) -> MiningConfig:
        """The same parameters with the selection decided and every default filled in."""
        paper = self._given(PAPER_OPTIONS) + (["a model passed to mine()"] if model_given else [])
        contrastive = self._given(CONTRASTIVE_OPTIONS)
        selection = self.selection
        if selection is None:
            if paper and contrastive:
                raise MiningError(
                    f"{', '.join(paper)} belong to --selection paper and "
                    f"{', '.join(contrastive)} to --selection contrastive; choose one"
                )
            selection = PAPER if paper else CONTRASTIVE
        if selection not in SELECTIONS:
            raise MiningError(
                f"--selection must be one of {', '.join(SELECTIONS)}, got {selection!r}"
            )
        wrong = paper if selection == CONTRASTIVE else contrastive
        if wrong:
            other = PAPER if selection == CONTRASTIVE else CONTRASTIVE
            raise MiningError(
                f"{', '.join(wrong)}: only --selection {other} reads "
                f"{'it' if len(wrong) == 1 else 'them'}, not --selection {selection}"
            )
        if selection == PAPER:
            return replace(
                self,
                selection=PAPER,
                ngram_min=_default(self.ngram_min, DEFAULT_NGRAM_MIN[PAPER]),
                top_fraction=_default(self.top_fraction, DEFAULT_TOP_FRACTION),
                max_candidates=_default(self.max_candidates, DEFAULT_MAX_CANDIDATES),
                embedder=_default(self.embedder, MINILM),
                threshold=_default(self.threshold, DEFAULT_THRESHOLD),
            )
        return replace(
            self,
            selection=CONTRASTIVE,
            ngram_min=_default(self.ngram_min, DEFAULT_NGRAM_MIN[CONTRASTIVE]),
            contrast=tuple(self.contrast) if self.contrast else DEFAULT_CONTRAST,
            rules=self.rules or SelectionRules(),
        )

    def validate(self) -> None:
        """Check the parameters (of the `resolved()` config); every message names the option."""
        if self.selection is None or self.ngram_min is None:
            self.resolved().validate()
            return
        if not 1 <= self.ngram_min <= self.ngram_max <= MAX_NGRAM:
            raise MiningError(
                f"n-gram sizes must satisfy 1 <= --ngram-min <= --ngram-max <= {MAX_NGRAM}, "
                f"got {self.ngram_min} and {self.ngram_max}"
            )
        if self.min_df is not None and self.min_df < 1:
            raise MiningError(f"--min-df must be at least 1, got {self.min_df}")
        if self.max_table < 1000:
            raise MiningError(f"--max-table must be at least 1000, got {self.max_table}")
        if self.selection == PAPER:
            self._validate_paper()
        elif self.rules is not None:
            _validate_rules(self.rules)

    def _validate_paper(self) -> None:
        assert self.top_fraction is not None and self.max_candidates is not None
        assert self.threshold is not None and self.embedder is not None
        if not 0.0 < self.top_fraction <= 1.0:
            raise MiningError(f"--top-fraction must be in (0, 1], got {self.top_fraction}")
        if self.max_candidates < 1:
            raise MiningError(f"--max-candidates must be at least 1, got {self.max_candidates}")
        if not -1.0 <= self.threshold <= 1.0:
            raise MiningError(
                f"--threshold is a cosine similarity in [-1, 1], got {self.threshold}"
            )
        if self.embedder not in (MINILM, NONE) and not Path(self.embedder).is_dir():
            raise MiningError(
                f"--embedder {self.embedder}: not 'minilm', 'none' or a sentence-transformers folder"
            )
        if self.threads is not None and self.threads < 1:
            raise MiningError(
                f"--threads must be at least 1 (0 on the CLI: all cores), got {self.threads}"
            )


def _default(value: T | None, default: T) -> T:
    return default if value is None else value


def _validate_rules(rules: SelectionRules) -> None:
    checks = [
        (rules.max_grams >= 1, f"--max-grams must be at least 1, got {rules.max_grams}"),
        (rules.prior > 0, f"--prior must be positive, got {rules.prior}"),
        (
            0.0 < rules.fragment_share <= 1.0,
            f"fragment_share must be in (0, 1], got {rules.fragment_share}",
        ),
        (
            0.0 <= rules.min_opening_share <= 1.0,
            f"min_opening_share must be in [0, 1], got {rules.min_opening_share}",
        ),
        (
            0.0 <= rules.min_evenness <= 1.0,
            f"--min-evenness must be in [0, 1], got {rules.min_evenness}",
        ),
        (
            rules.group_pseudo_traces >= 0,
            f"group_pseudo_traces must be at least 0, got {rules.group_pseudo_traces}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise MiningError(message)


def auto_min_df(traces: int, selection: str = "paper") -> int:
    """The --min-df default: a share of the traces used (AUTO_MIN_DF_FRACTION), at least 2."""
    return max(2, math.ceil(AUTO_MIN_DF_FRACTION[selection] * traces - 1e-9))
