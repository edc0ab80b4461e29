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


def _is_word_char_at(data: bytes, pos: int) -> bool:
    """Whether the character covering byte `pos` is alphanumeric (or `_`), for any UTF-8 text."""
    byte = data[pos]
    if byte < 0x80:
        return bool(_ASCII_WORD[byte])
    lead = pos
    while lead > 0 and (data[lead] & 0xC0) == 0x80 and pos - lead < 3:
        lead -= 1
    char = data[lead : lead + 4].decode("utf-8", errors="ignore")[:1]
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


class GramMatcher:
    """Finds every occurrence of every gram in lowercased UTF-8 bytes, overlapping ones included."""

    def __init__(self, grams: StrategicGrams) -> None:
        self.grams = grams
        self._automaton = ahocorasick.Automaton()
        for index, gram in enumerate(grams):
            variants = {gram, gram.replace("'", "\u2019")}  # straight and typographic apostrophes
            for variant in variants:
                key = variant.encode("utf-8")
                # A boundary is needed only on a side where the gram itself ends in a word char:
                # "hmm," may be followed by anything, "so" may not be followed by "me".
                word_start = variant[0].isalnum() or variant[0] == "_"
                word_end = variant[-1].isalnum() or variant[-1] == "_"
                self._automaton.add_word(
                    key.decode("latin-1"),  # one char per byte: automaton offsets are byte offsets
                    (index, len(key), word_start, word_end),
                )
        self._automaton.make_automaton()

    def find(self, lowered: bytes) -> list[tuple[int, int, int]]:
        """(byte_start, byte_end, gram_index) of every match in `lowered` (see `lowercase_bytes`)."""
        flat = lowered.translate(_WHITESPACE_TO_SPACE)
        offsets = None
        if b"  " in flat:  # collapse whitespace runs, keeping a map back to the original offsets
            arr = np.frombuffer(flat, dtype=np.uint8)
            is_space = arr == 32
            keep = ~(is_space & np.concatenate(([False], is_space[:-1])))
            offsets = np.flatnonzero(keep)
            flat = arr[keep].tobytes()
        n = len(flat)
        matches = []
        for last, (index, length, word_start, word_end) in self._automaton.iter(
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


class PlanningTagger:
    """Marks planning tokens: tokens whose characters overlap an occurrence of a strategic gram."""

    def __init__(self, grams: StrategicGrams | str, tokenizer: Any = None) -> None:
        self.grams = StrategicGrams.resolve(grams)
        self.matcher = GramMatcher(self.grams)
        self.tokenizer = tokenizer
        self._table: list[bytes] | None = None
        self._lengths: np.ndarray | None = None
        if tokenizer is not None:
            self._table = token_byte_table(tokenizer)
            self._lengths = np.fromiter((len(b) for b in self._table), np.int64, len(self._table))

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
        rows = _as_rows(token_ids)
        masks = _as_rows(attention_mask) if attention_mask is not None else None
        if masks is not None and [len(m) for m in masks] != [len(r) for r in rows]:
            raise ValueError("attention_mask must have the same shape as token_ids")
        width = max((len(r) for r in rows), default=0)
        out = np.zeros((len(rows), width), dtype=bool)
        for b, row in enumerate(rows):
            keep = masks[b].astype(bool) if masks is not None else None
            out[b, : len(row)] = self._row_mask(row, keep, gram_counts, strict, counting)
        return torch.from_numpy(out)

    def _row_mask(
        self,
        row: np.ndarray,
        keep: np.ndarray | None,
        gram_counts: Counter[str] | None = None,
        strict: bool = True,
        counting: Counting = "longest",
    ) -> np.ndarray:
        table, lengths = self._table, self._lengths
        if row.size and (row.min() < 0 or row.max() >= len(table)):
            outside = (row < 0) | (row >= len(table))
            if strict:
                bad = int(row[outside][0])
                raise ValueError(
                    f"token id {bad} is outside the tokenizer's vocabulary ({len(table)})"
                )
            keep = ~outside if keep is None else keep & ~outside
        ids = row if keep is None else row[keep]
        data = b"".join(map(table.__getitem__, ids.tolist()))
        matches = self.matcher.find(lowercase_bytes(data))
        if gram_counts is not None:
            chosen = select_matches(matches, counting)
            gram_counts.update(self.grams.grams[index] for _, _, index in chosen)
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

    def segments(self, token_ids: Sequence[int]) -> list[tuple[str, bool]]:
        """One row as (text, is_planning) runs, split on whole characters: for display."""
        if self._table is None:
            raise ValueError("PlanningTagger needs a tokenizer for segments()")
        ids = np.asarray(token_ids, dtype=np.int64)
        mask = self._row_mask(ids, None)
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
