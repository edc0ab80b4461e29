"""Planning-token tagging: text -> strategic-gram spans -> per-token planning mask.

Matching is done on text, never on token ids: BPE ids of "so", " so" and "So" differ, and a gram can
be split into tokens in many ways. Each token row is turned into the exact bytes it decodes to (one
precomputed byte string per vocabulary id), grams are found in those bytes with one Aho-Corasick pass
(case-insensitive, whitespace runs matching a single space, word boundaries checked), and every
token whose bytes overlap a matched span is a planning token.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from itertools import chain
from typing import Any, Literal, NamedTuple

import ahocorasick
import numpy as np
import torch

from hicra.grams import StrategicGrams

# Bytes that count as part of a word for boundary checks ("so" must not fire inside "also").
_ASCII_WORD = np.zeros(256, dtype=bool)
for _c in b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_":
    _ASCII_WORD[_c] = True
_WHITESPACE_TO_SPACE = bytes.maketrans(b"\t\n\r\x0b\x0c", b"     ")
_SPECIAL_TOKEN_BYTES = b"\x00"  # a non-word byte no gram contains: special tokens break matches


class Span(NamedTuple):
    """A matched gram: character offsets [start, end) into the text, and the canonical gram."""

    start: int
    end: int
    gram: str


def _is_word_char_at(data: bytes, pos: int, lo: int = 0, hi: int | None = None) -> bool:
    """Whether the character covering byte `pos` is alphanumeric (or `_`), for any UTF-8 text.

    `lo` and `hi` bound the text `pos` belongs to (one row of a batch buffer): the character is
    read within them, as if that row were the whole text.
    """
    byte = data[pos]
    if byte < 0x80:
        return bool(_ASCII_WORD[byte])
    lead = pos
    while lead > lo and (data[lead] & 0xC0) == 0x80 and pos - lead < 3:
        lead -= 1
    stop = lead + 4 if hi is None else min(lead + 4, hi)
    char = data[lead:stop].decode("utf-8", errors="ignore")[:1]
    return char.isalnum()


def lowercase_bytes(data: bytes) -> bytes:
    """Unicode-lowercase UTF-8 bytes without moving any byte offset (ASCII-only where it would)."""
    if data.isascii():
        return data.lower()
    text = data.decode("utf-8", errors="surrogateescape")
    lowered = text.lower()
    if len(lowered) == len(text):
        encoded = lowered.encode("utf-8", errors="surrogateescape")
        if len(encoded) == len(data):
            return encoded
    return data.lower()


def _lowercase_rows(data: bytes, row_starts: np.ndarray) -> bytes:
    """`lowercase_bytes` of each row of a NUL-separated batch buffer, as if each were alone.

    When Unicode lowering keeps every character's UTF-8 length (the lead and continuation bytes
    fall where they were), lowering the whole buffer lowers each row as `lowercase_bytes` would.
    Otherwise ASCII rows are lowered in one call and each other row on its own, since
    `lowercase_bytes` falls back to ASCII lowering for a row whose lowering would move offsets.
    """
    lowered = data.lower()
    if data.isascii():
        return lowered
    whole = data.decode("utf-8", errors="surrogateescape").lower()
    encoded = whole.encode("utf-8", errors="surrogateescape")
    if len(encoded) == len(data):
        before = np.frombuffer(data, dtype=np.uint8) & 0xC0
        after = np.frombuffer(encoded, dtype=np.uint8) & 0xC0
        if np.array_equal(before == 0x80, after == 0x80):
            return encoded
    wide = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) >= 0x80)
    rows = np.unique(np.searchsorted(row_starts, wide, side="right") - 1)
    bounds = np.append(row_starts, len(data))
    out = bytearray(lowered)
    for row in rows.tolist():
        lo, hi = int(bounds[row]), int(bounds[row + 1]) - 1  # the row's NUL separator excluded
        out[lo:hi] = lowercase_bytes(data[lo:hi])
    return bytes(out)


Counting = Literal["longest", "all"]
COUNTINGS = ("longest", "all")


def select_matches(
    matches: list[tuple[int, int, int]], counting: Counting = "longest"
) -> list[tuple[int, int, int]]:
    """The matches that count as occurrences: all of them, or leftmost-longest non-overlapping.

    "longest" counts a phrase once: in "but wait, let me verify" the matches "but", "but wait",
    "wait", "let me" and "let me verify" become "but wait" and "let me verify". `matches` are
    (start, end, gram index) sorted by (start, end), as `GramMatcher.find` returns them.
    """
    if counting == "all":
        return matches
    if counting != "longest":
        raise ValueError(f"counting must be 'longest' or 'all', got {counting!r}")
    chosen: list[tuple[int, int, int]] = []
    covered = 0
    for start, end, index in sorted(matches, key=lambda m: (m[0], -m[1])):
        if start >= covered:
            chosen.append((start, end, index))
            covered = end
    return chosen


_NO_MATCHES = np.zeros((0, 3), dtype=np.int64)


def longest_non_overlapping(matches: np.ndarray) -> np.ndarray:
    """`select_matches(..., "longest")` on an (M, 3) array of sorted matches, without a loop
    over the matches: the rows chosen, in (start, -end) order.

    Only the longest match at a start can be chosen. A match that no earlier one reaches into
    starts a cluster and is always chosen; inside a cluster the greedy choice after match i is
    the first match starting at or after i's end, found for every cluster at once by
    `np.searchsorted`, one round per match chosen in the longest cluster.
    """
    if not len(matches):
        return matches
    ordered = matches[np.lexsort((-matches[:, 1], matches[:, 0]))]
    longest = ordered[np.r_[True, ordered[1:, 0] != ordered[:-1, 0]]]
    starts, ends = longest[:, 0], longest[:, 1]
    reach = np.maximum.accumulate(ends)
    opens = np.r_[True, starts[1:] >= reach[:-1]]  # no earlier match reaches this start
    cluster_end = np.append(np.flatnonzero(opens)[1:], len(longest))
    limit = cluster_end[np.cumsum(opens) - 1]  # each match's cluster ends before this index
    chosen = [np.flatnonzero(opens)]
    current = chosen[0][limit[chosen[0]] - chosen[0] > 1]  # clusters of one match are done
    while current.size:
        following = np.searchsorted(starts, ends[current], side="left")
        current = following[following < limit[current]]
        chosen.append(current)
    return longest[np.sort(np.concatenate(chosen))]


class GramMatcher:
    """Finds every occurrence of every gram in lowercased UTF-8 bytes, overlapping ones included."""

    def __init__(self, grams: StrategicGrams) -> None:
        self.grams = grams
        # key (one char per byte: automaton offsets are byte offsets) -> (gram, bytes, boundaries)
        keys: dict[str, tuple[int, int, bool, bool]] = {}
        for index, gram in enumerate(grams):
            variants = {gram, gram.replace("'", "\u2019")}  # straight and typographic apostrophes
            for variant in variants:
                key = variant.encode("utf-8")
                # A boundary is needed only on a side where the gram itself ends in a word char:
                # "hmm," may be followed by anything, "so" may not be followed by "me".
                word_start = variant[0].isalnum() or variant[0] == "_"
                word_end = variant[-1].isalnum() or variant[-1] == "_"
                keys[key.decode("latin-1")] = (index, len(key), word_start, word_end)
        # The automaton holds a key's number; what the number means lives in arrays, so that the
        # matches of a whole batch are checked and mapped with array operations, not a loop.
        info = list(keys.values())
        self._gram_of = np.array([i for i, _, _, _ in info], dtype=np.int64)
        self._length_of = np.array([n for _, n, _, _ in info], dtype=np.int64)
        self._word_start = np.array([s for _, _, s, _ in info], dtype=bool)
        self._word_end = np.array([e for _, _, _, e in info], dtype=bool)
        # Keys of ASCII (and the caseless typographic apostrophe) match the same bytes whether or
        # not the text's other characters are Unicode-lowered: a character outside ASCII lowers
        # to one outside ASCII (or changes length, and `lowercase_bytes` lowers ASCII only).
        self.ascii_keys = all(
            c.isascii() or c == "\u2019"
            for key in keys
            for c in key.encode("latin-1").decode("utf-8")
        )
        self._automaton = ahocorasick.Automaton()
        for number, key in enumerate(keys):
            self._automaton.add_word(key, number)
        self._automaton.make_automaton()

    def find(self, lowered: bytes) -> list[tuple[int, int, int]]:
        """(byte_start, byte_end, gram_index) of every match in `lowered` (see `lowercase_bytes`)."""
        return list(map(tuple, self.find_array(lowered).tolist()))

    def find_array(self, lowered: bytes, row_starts: np.ndarray | None = None) -> np.ndarray:
        """`find` as an (M, 3) int64 array, sorted; for one text or a buffer of several.

        A buffer of several texts (`row_starts`: the byte offset where each begins, the first 0)
        has a NUL byte between texts, which no gram contains: every match lies within one text,
        and its word-boundary checks read that text alone, exactly as `find` on each text would.
        """
        flat = lowered.translate(_WHITESPACE_TO_SPACE)
        offsets = None
        if b"  " in flat:  # collapse whitespace runs, keeping a map back to the original offsets
            arr = np.frombuffer(flat, dtype=np.uint8)
            is_space = arr == 32
            keep = ~(is_space & np.concatenate(([False], is_space[:-1])))
            offsets = np.flatnonzero(keep)
            flat = arr[keep].tobytes()
        # (end, key) pairs straight into an array: half the time of np.array on a list of tuples
        pairs = chain.from_iterable(self._automaton.iter(flat.decode("latin-1")))
        found = np.fromiter(pairs, dtype=np.int64).reshape(-1, 2)
        if not len(found):
            return _NO_MATCHES
        key = found[:, 1]
        end = found[:, 0] + 1
        start = end - self._length_of[key]
        data = np.frombuffer(flat, dtype=np.uint8)
        rejected = np.zeros(len(key), dtype=bool)
        for needs, at in (
            (self._word_start[key] & (start > 0), start - 1),  # the byte before the match
            (self._word_end[key] & (end < len(flat)), end),  # the byte after it
        ):
            check = np.flatnonzero(needs)
            neighbour = data[at[check]]
            word = _ASCII_WORD[neighbour]
            wide = np.flatnonzero(neighbour >= 0x80)  # a non-ASCII character: decode it
            if wide.size:
                bounds = self._row_bounds(row_starts, offsets, len(flat))
                for j in wide.tolist():
                    pos = int(at[check[j]])
                    row = int(np.searchsorted(bounds, pos, side="right")) - 1
                    word[j] = _is_word_char_at(flat, pos, int(bounds[row]), int(bounds[row + 1]))
            rejected[check[word]] = True
        start, end, key = start[~rejected], end[~rejected], key[~rejected]
        if offsets is not None:
            start, end = offsets[start], offsets[end - 1] + 1
        gram = self._gram_of[key]
        order = np.lexsort((gram, end, start))
        return np.stack([start[order], end[order], gram[order]], axis=1)

    @staticmethod
    def _row_bounds(
        row_starts: np.ndarray | None, offsets: np.ndarray | None, length: int
    ) -> np.ndarray:
        """Each text's [start, end) in the collapsed buffer: starts, then the buffer's end."""
        if row_starts is None:
            return np.array([0, length], dtype=np.int64)
        starts = np.asarray(row_starts, dtype=np.int64)
        if offsets is not None:  # a text's first byte follows a NUL: never collapsed away
            starts = np.searchsorted(offsets, starts)
        return np.append(starts, length)

    def spans(self, text: str) -> list[Span]:
        """Character spans of every gram occurrence in `text`, sorted by (start, end)."""
        data = text.encode("utf-8")
        matches = self.find(lowercase_bytes(data))
        if not matches:
            return []
        if data.isascii():
            return [Span(s, e, self.grams.grams[i]) for s, e, i in matches]
        arr = np.frombuffer(data, dtype=np.uint8)
        char_starts = np.flatnonzero((arr & 0xC0) != 0x80)  # byte offset of each character
        bounds = np.searchsorted(char_starts, [[s, e] for s, e, _ in matches])
        return [
            Span(int(b[0]), int(b[1]), self.grams.grams[i])
            for b, (_, _, i) in zip(bounds, matches, strict=True)
        ]

    def count(self, text: str, counting: Counting = "longest") -> dict[str, int]:
        """How often each gram occurs in `text`: each phrase once ("longest"), or every match."""
        counts: dict[str, int] = {}
        for _, _, index in select_matches(
            self.find(lowercase_bytes(text.encode("utf-8"))), counting
        ):
            gram = self.grams.grams[index]
            counts[gram] = counts.get(gram, 0) + 1
        return counts


# --------------------------------------------------------------------------- token bytes
def _bytes_to_unicode() -> dict[str, int]:
    """GPT-2's reversible byte <-> printable-character map, inverted (char -> byte)."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(printable, chars, strict=True)}


def _decoders(tokenizer: Any) -> list[dict[str, Any]]:
    """The fast tokenizer's decoder steps as JSON dicts (empty for a slow tokenizer)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return []
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    flat = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    return [d for d in flat if d]


def token_byte_table(tokenizer: Any) -> list[bytes]:
    """The exact bytes each vocabulary id contributes to decoded text, for any HF tokenizer.

    Special tokens map to a NUL byte, so they never count as planning and no gram spans them.
    Byte-level BPE, SentencePiece (metaspace and byte fallback), WordPiece and BPE-with-suffix
    decoders are read directly; anything else falls back to decoding each id on its own.
    """
    vocab_size = max(len(tokenizer), max(tokenizer.get_vocab().values(), default=-1) + 1)
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab_size)))
    decoders = _decoders(tokenizer)
    kinds = {d.get("type") for d in decoders}
    table: list[bytes]
    if "ByteLevel" in kinds:
        byte_of = _bytes_to_unicode()
        table = [
            bytes(byte_of[c] for c in tok if c in byte_of) if tok is not None else b""
            for tok in tokens
        ]
    elif "WordPiece" in kinds:
        prefix = next(d for d in decoders if d.get("type") == "WordPiece").get("prefix", "##")
        table = [
            b""
            if tok is None
            else tok[len(prefix) :].encode()
            if tok.startswith(prefix)
            else b" " + tok.encode()
            for tok in tokens
        ]
    elif "BPEDecoder" in kinds:
        suffix = next(d for d in decoders if d.get("type") == "BPEDecoder").get("suffix", "</w>")
        table = [
            b""
            if tok is None
            else (tok[: -len(suffix)] + " ").encode()
            if tok.endswith(suffix)
            else tok.encode()
            for tok in tokens
        ]
    elif kinds & {"Metaspace", "Replace", "ByteFallback"} or any(
        tok and "\u2581" in tok for tok in tokens[:5000]
    ):
        replacement = next(
            (d.get("replacement", "\u2581") for d in decoders if d.get("type") == "Metaspace"),
            "\u2581",
        )
        table = []
        for tok in tokens:
            if tok is None:
                table.append(b"")
            elif len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
                table.append(bytes([int(tok[3:5], 16)]))
            else:
                table.append(tok.replace(replacement, " ").encode())
    else:
        table = [tokenizer.decode([i]).encode("utf-8") for i in range(vocab_size)]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    for token_id, token in added.items():
        if getattr(token, "special", False):
            special.add(int(token_id))
        elif 0 <= int(token_id) < vocab_size:
            table[int(token_id)] = str(token).encode("utf-8")
    for token_id in special:
        if 0 <= token_id < vocab_size:
            table[token_id] = _SPECIAL_TOKEN_BYTES
    return table


def _as_rows(token_ids: Any) -> list[np.ndarray]:
    if isinstance(token_ids, torch.Tensor):
        array = token_ids.detach().cpu().numpy()
        return list(array if array.ndim == 2 else array[None])
    if isinstance(token_ids, np.ndarray):
        return list(token_ids if token_ids.ndim == 2 else token_ids[None])
    rows = list(token_ids)
    if rows and not isinstance(rows[0], (Sequence, np.ndarray, torch.Tensor)):
        rows = [rows]
    return [np.asarray(r, dtype=np.int64) for r in rows]


def _as_matrix(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(B, W) array and each row's length, from a (B, T) or (T,) tensor/array or ragged lists.

    Ragged rows are right-padded with zeros (their lengths say where each row ends).
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray) and values.ndim in (1, 2):
        matrix = values if values.ndim == 2 else values[None]
        return matrix, np.full(len(matrix), matrix.shape[1], dtype=np.int64)
    rows = _as_rows(values)
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    matrix = np.zeros((len(rows), int(lengths.max(initial=0))), dtype=np.int64)
    for b, row in enumerate(rows):
        matrix[b, : len(row)] = row
    return matrix, lengths


# Rows are tagged a chunk of about this many token positions at a time: the batch buffer and its
# index arrays stay a few tens of MB however large the step (verl's can hold 16 M tokens).
_CHUNK_TOKENS = 1 << 20


class PlanningTagger:
    """Marks planning tokens: tokens whose characters overlap an occurrence of a strategic gram.

    A batch is tagged in one pass, not row by row: the kept tokens of many rows become one byte
    buffer (a NUL between rows) gathered from a flat copy of the byte table, the automaton runs
    once over it, and matches map back to tokens with `np.searchsorted`. The masks and gram
    counts are those of tagging each row on its own (tests/test_tagging.py checks this against
    the row-by-row implementation it replaced).
    """

    def __init__(self, grams: StrategicGrams | str, tokenizer: Any = None) -> None:
        self.grams = StrategicGrams.resolve(grams)
        self.matcher = GramMatcher(self.grams)
        self.tokenizer = tokenizer
        self._chunk_tokens = _CHUNK_TOKENS
        self._table: list[bytes] | None = None
        self._lengths: np.ndarray | None = None
        if tokenizer is not None:
            self._table = token_byte_table(tokenizer)
            self._lengths = np.fromiter((len(b) for b in self._table), np.int64, len(self._table))
            # id len(table) is the row separator: one NUL byte, like a special token
            self._separator = len(self._table)
            self._all_bytes = np.frombuffer(
                b"".join(self._table) + _SPECIAL_TOKEN_BYTES, dtype=np.uint8
            )
            # int32 (a chunk's ids, byte lengths and offsets fit): half the memory traffic of
            # int64 in the gathers over every token of a step
            self._all_lengths = np.append(self._lengths, len(_SPECIAL_TOKEN_BYTES)).astype(np.int32)
            self._all_offsets = (np.cumsum(self._all_lengths) - self._all_lengths).astype(np.int32)

    def spans(self, text: str) -> list[Span]:
        """Every `(start, end, gram)` character span, overlapping and nested ones included."""
        return self.matcher.spans(text)

    def token_mask(
        self,
        token_ids: Any,
        attention_mask: Any = None,
        *,
        gram_counts: Counter[str] | None = None,
        counting: Counting = "longest",
        strict: bool = True,
    ) -> torch.Tensor:
        """Bool tensor (B, T): True where a token overlaps a gram span. Padding is never planning.

        `token_ids` is a (B, T) or (T,) tensor/array, or a list of (possibly ragged) id lists;
        ragged rows are right-padded with False. `attention_mask` (same shape) marks real tokens.
        A `gram_counts` Counter, when given, is updated with the gram occurrences found, counted as
        `counting` says (`select_matches`); the mask itself always uses every match.
        An id outside the tokenizer's vocabulary is an error, or with `strict=False` a token with no
        text (models with padded embedding matrices can sample such ids).
        """
        if self._table is None or self._lengths is None:
            raise ValueError("PlanningTagger needs a tokenizer for token_mask(); pass one")
        ids, lengths = _as_matrix(token_ids)
        rectangular = bool((lengths == ids.shape[1]).all())  # a (B, T) tensor: every id is real
        real = (
            np.ones(ids.shape, dtype=bool)
            if rectangular
            else np.arange(ids.shape[1]) < lengths[:, None]
        )
        keep = real
        if attention_mask is not None:
            attention, attention_lengths = _as_matrix(attention_mask)
            if not np.array_equal(attention_lengths, lengths):
                raise ValueError("attention_mask must have the same shape as token_ids")
            attention = attention.astype(bool, copy=False)
            keep = attention if rectangular else real & attention
        # two reductions first: the elementwise check runs only when some id may be outside
        if ids.size and (ids.min() < 0 or ids.max() >= len(self._table)):
            outside = real & ((ids < 0) | (ids >= len(self._table)))
            if outside.any():
                if strict:
                    bad = int(ids[outside][0])
                    raise ValueError(
                        f"token id {bad} is outside the tokenizer's vocabulary ({len(self._table)})"
                    )
                keep = keep & ~outside
        out = np.zeros(ids.shape, dtype=bool)
        if counting not in COUNTINGS and gram_counts is not None and len(ids):
            raise ValueError(f"counting must be 'longest' or 'all', got {counting!r}")
        step = max(1, self._chunk_tokens // max(ids.shape[1], 1))
        for first in range(0, len(ids), step):
            rows = slice(first, first + step)
            out[rows] = self._chunk_mask(ids[rows], keep[rows], gram_counts, counting)
        return torch.from_numpy(out)

    def _chunk_mask(
        self,
        ids: np.ndarray,
        keep: np.ndarray,
        gram_counts: Counter[str] | None,
        counting: Counting,
    ) -> np.ndarray:
        """The planning mask of some rows, tagged as one buffer (see the class docstring)."""
        rows, width = ids.shape
        # every row's kept ids, then the separator id, row after row
        with_separator = np.empty((rows, width + 1), dtype=np.int32)  # ids beyond int32: not kept
        with_separator[:, :width] = ids
        with_separator[:, width] = self._separator
        kept = np.ones((rows, width + 1), dtype=bool)
        kept[:, :width] = keep
        kept = kept.ravel()
        flat_ids = with_separator.ravel()[kept]  # a boolean selection: no index array
        token_lengths = self._all_lengths[flat_ids]
        ends = np.cumsum(token_lengths)
        starts = ends - token_lengths
        gather = np.repeat(self._all_offsets[flat_ids] - starts, token_lengths)
        gather += np.arange(len(gather), dtype=gather.dtype)
        data = self._all_bytes[gather].tobytes()
        row_starts = np.concatenate(([0], ends[flat_ids == self._separator][:-1]))
        lowered = data.lower() if self.matcher.ascii_keys else _lowercase_rows(data, row_starts)
        matches = self.matcher.find_array(lowered, row_starts)
        out = np.zeros(rows * (width + 1), dtype=bool)
        if len(matches):
            if gram_counts is not None:
                self._count(matches, gram_counts, counting)
            bounds = matches[:, :2].astype(ends.dtype)  # one dtype: searchsorted copies none
            first = np.searchsorted(ends, bounds[:, 0], side="right")
            stop = np.searchsorted(starts, bounds[:, 1], side="left")
            size = len(flat_ids) + 1
            delta = np.bincount(first, minlength=size) - np.bincount(stop, minlength=size)
            out[kept] = (np.cumsum(delta[:-1]) > 0) & (token_lengths > 0)
        return out.reshape(rows, width + 1)[:, :width]

    def _count(self, matches: np.ndarray, gram_counts: Counter[str], counting: Counting) -> None:
        """Add the occurrences `select_matches` would choose, grams in order of first use."""
        chosen = matches if counting == "all" else longest_non_overlapping(matches)
        grams, first_use, counts = np.unique(chosen[:, 2], return_index=True, return_counts=True)
        names = self.grams.grams
        gram_counts.update(
            {
                names[g]: c
                for _, g, c in sorted(zip(first_use, grams.tolist(), counts.tolist(), strict=True))
            }
        )

    def segments(self, token_ids: Sequence[int]) -> list[tuple[str, bool]]:
        """One row as (text, is_planning) runs, split on whole characters: for display."""
        if self._table is None:
            raise ValueError("PlanningTagger needs a tokenizer for segments()")
        ids = np.asarray(token_ids, dtype=np.int64)
        mask = self.token_mask(ids[None])[0].numpy()
        pieces = [self._table[int(i)].replace(_SPECIAL_TOKEN_BYTES, b"") for i in ids]
        flags = np.repeat(mask, [len(p) for p in pieces])
        data = b"".join(pieces)
        arr = np.frombuffer(data, dtype=np.uint8)
        lead = (arr & 0xC0) != 0x80
        flags = flags[np.flatnonzero(lead)[np.cumsum(lead) - 1]] if data else flags
        runs: list[tuple[str, bool]] = []
        cuts = np.flatnonzero(np.diff(flags.astype(np.int8))) + 1 if data else []
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            runs.append((data[start:end].decode("utf-8", errors="replace"), bool(flags[start])))
        return runs

    def decode_with_spans(self, token_ids: Sequence[int]) -> tuple[str, list[Span]]:
        """Text of one row exactly as the tagger sees it, and its gram spans (for rollout logs)."""
        if self._table is None:
            raise ValueError("PlanningTagger needs a tokenizer for decode_with_spans()")
        data = b"".join(self._table[int(i)] for i in token_ids)
        text = data.replace(_SPECIAL_TOKEN_BYTES, b"").decode("utf-8", errors="replace")
        return text, self.spans(text)

    def planning_ratio(self, token_ids: Any, attention_mask: Any = None) -> float:
        """Share of real tokens that are planning tokens."""
        mask = self.token_mask(token_ids, attention_mask)
        if attention_mask is not None:
            real = torch.as_tensor(np.concatenate(_as_rows(attention_mask))).bool().sum()
        else:
            real = sum(len(r) for r in _as_rows(token_ids))
        return float(mask.sum()) / max(int(real), 1)
