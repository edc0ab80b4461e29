"""Precision and recall of a mined gram set against a reference set such as the paper's preset.

Two definitions, both on the words of the grams with punctuation removed (`exact_key`):
- *exact*: a mined gram is a hit when it equals a reference gram;
- *overlap*: a mined gram is a hit when it equals, contains or is contained in a reference gram as
  a run of whole words, the shorter of the two having at least `min_overlap_words` words (so the
  paper's one-word grams "so", "but", "now" do not make every mined phrase that has them a hit).
Precision = mined grams that are hits / mined grams; recall = reference grams hit by some mined
gram / reference grams.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hicra.mining.paper.clustering import exact_key


@dataclass(frozen=True)
class Comparison:
    mined: int
    reference: int
    exact_precision: float
    exact_recall: float
    overlap_precision: float
    overlap_recall: float


def _words(gram: str) -> tuple[str, ...]:
    return tuple(exact_key(gram).split())


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    n = len(shorter)
    return any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def overlaps(a: tuple[str, ...], b: tuple[str, ...], min_words: int) -> bool:
    """Equal, or one a run of whole words of the other with the shorter >= min_words words."""
    if a == b:
        return True
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= min_words and _contains(long, short)


def compare_to_reference(
    mined: Iterable[str], reference: Iterable[str], min_overlap_words: int = 2
) -> Comparison:
    """Exact and overlap precision/recall of `mined` against `reference` (see the module doc)."""
    mined_w = list(dict.fromkeys(_words(g) for g in mined))
    ref_w = list(dict.fromkeys(_words(g) for g in reference))
    ref_set = set(ref_w)
    exact_hits = sum(m in ref_set for m in mined_w)
    mined_set = set(mined_w)
    exact_found = sum(r in mined_set for r in ref_w)
    overlap_hits = sum(any(overlaps(m, r, min_overlap_words) for r in ref_w) for m in mined_w)
    overlap_found = sum(any(overlaps(m, r, min_overlap_words) for m in mined_w) for r in ref_w)

    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    return Comparison(
        mined=len(mined_w),
        reference=len(ref_w),
        exact_precision=ratio(exact_hits, len(mined_w)),
        exact_recall=ratio(exact_found, len(ref_w)),
        overlap_precision=ratio(overlap_hits, len(mined_w)),
        overlap_recall=ratio(overlap_found, len(ref_w)),
    )
