"""The planning tagger as it was before the batched rewrite (hicra 2df082d), frozen as a reference.

One row at a time: the row's bytes joined in Python, one Aho-Corasick pass per row, a Python loop
over the matches for the word-boundary checks. tests/test_tagging.py checks that the batched
`PlanningTagger.token_mask` gives exactly these masks and gram counts.
"""

from __future__ import annotations

from collections import Counter

import ahocorasick
import numpy as np

from hicra.grams import StrategicGrams
from hicra.tagging import lowercase_bytes, select_matches

_ASCII_WORD = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _ASCII_WORD[_c] = True
_WHITESPACE_TO_SPACE = bytes.maketrans(b"\t\n\r\x0b\x0c", b"     ")


def _is_word_char_at(data: bytes, pos: int) -> bool:
    byte = data[pos]
    if byte < 0x80:
        return bool(_ASCII_WORD[byte])
    lead = pos
    while lead > 0 and (data[lead] & 0xC0) == 0x80 and pos - lead < 3:
        lead -= 1
    char = data[lead : lead + 4].decode("utf-8", errors="ignore")[:1]
    return char.isalnum()


class ReferenceMatcher:
    """`GramMatcher` as it was: the automaton's values are (gram index, length, boundaries)."""

    def __init__(self, grams: StrategicGrams) -> None:
        self.grams = grams
        self._automaton = ahocorasick.Automaton()
        for index, gram in enumerate(grams):
            for variant in {gram, gram.replace("'", "\u2019")}:
                key = variant.encode("utf-8")
                word_start = variant[0].isalnum() or variant[0] == "_"
                word_end = variant[-1].isalnum() or variant[-1] == "_"
                self._automaton.add_word(
                    key.decode("latin-1"), (index, len(key), word_start, word_end)
                )
        self._automaton.make_automaton()


def reference_find(matcher: ReferenceMatcher, lowered: bytes) -> list[tuple[int, int, int]]:
    """`GramMatcher.find` as it was: a Python loop over the automaton's matches."""
    flat = lowered.translate(_WHITESPACE_TO_SPACE)
    offsets = None
    if b"  " in flat:
        arr = np.frombuffer(flat, dtype=np.uint8)
        is_space = arr == 32
        keep = ~(is_space & np.concatenate(([False], is_space[:-1])))
        offsets = np.flatnonzero(keep)
        flat = arr[keep].tobytes()
    n = len(flat)
    matches = []
    for last, (index, length, word_start, word_end) in matcher._automaton.iter(
        flat.decode("latin-1")
    ):
        start, end = last + 1 - length, last + 1
        if word_start and start > 0 and _is_word_char_at(flat, start - 1):
            continue
        if word_end and end < n and _is_word_char_at(flat, end):
            continue
        if offsets is not None:
            start, end = int(offsets[start]), int(offsets[end - 1]) + 1
        matches.append((start, end, index))
    matches.sort()
    return matches


def reference_token_mask(
    table: list[bytes],
    matcher: ReferenceMatcher,
    rows: list[np.ndarray],
    keeps: list[np.ndarray] | None = None,
    gram_counts: Counter[str] | None = None,
    strict: bool = True,
    counting: str = "longest",
) -> list[np.ndarray]:
    """`PlanningTagger.token_mask` as it was: one row after another, each tagged on its own."""
    lengths = np.array([len(b) for b in table], dtype=np.int64)
    return [
        reference_row_mask(
            table,
            lengths,
            matcher,
            row,
            None if keeps is None else keeps[b],
            gram_counts,
            strict,
            counting,
        )
        for b, row in enumerate(rows)
    ]


def reference_row_mask(
    table: list[bytes],
    lengths: np.ndarray,
    matcher: ReferenceMatcher,
    row: np.ndarray,
    keep: np.ndarray | None,
    gram_counts: Counter[str] | None = None,
    strict: bool = True,
    counting: str = "longest",
) -> np.ndarray:
    """`PlanningTagger._row_mask` as it was: one row's planning mask."""
    if row.size and (row.min() < 0 or row.max() >= len(table)):
        outside = (row < 0) | (row >= len(table))
        if strict:
            raise ValueError(f"token id {int(row[outside][0])} is outside the vocabulary")
        keep = ~outside if keep is None else keep & ~outside
    ids = row if keep is None else row[keep]
    data = b"".join(map(table.__getitem__, ids.tolist()))
    matches = reference_find(matcher, lowercase_bytes(data))
    if gram_counts is not None:
        chosen = select_matches(matches, counting)
        gram_counts.update(matcher.grams.grams[index] for _, _, index in chosen)
    token_mask = np.zeros(len(ids), dtype=bool)
    if matches:
        token_lengths = lengths[ids]
        ends = np.cumsum(token_lengths)
        starts = ends - token_lengths
        spans = np.asarray(matches, dtype=np.int64)
        first = np.searchsorted(ends, spans[:, 0], side="right")
        stop = np.searchsorted(starts, spans[:, 1], side="left")
        delta = np.zeros(len(ids) + 1, dtype=np.int64)
        np.add.at(delta, first, 1)
        np.add.at(delta, stop, -1)
        token_mask = (np.cumsum(delta[:-1]) > 0) & (token_lengths > 0)
    if keep is None:
        return token_mask
    full = np.zeros(len(row), dtype=bool)
    full[keep] = token_mask
    return full
