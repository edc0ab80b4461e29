import random
from collections import Counter
from importlib import resources

import numpy as np
import pytest
import torch

from hicra import PlanningTagger, StrategicGrams
from hicra.tagging import (
    COUNTINGS,
    GramMatcher,
    longest_non_overlapping,
    lowercase_bytes,
    select_matches,
    token_byte_table,
)
from tests.tagging_reference import ReferenceMatcher, reference_token_mask

GRAMS = StrategicGrams(
    ["so", "wait", "but wait", "wait, no", "hmm,", "let me", "let's", "## step", "é so"]
)
FAMILIES = ["bytelevel_tokenizer", "sentencepiece_tokenizer", "smollm2_tokenizer"]


def spans(text, grams=GRAMS):
    return [tuple(s) for s in GramMatcher(grams).spans(text)]


def test_word_boundaries():
    assert spans("also some sober so") == [(16, 18, "so")]
    assert spans("So,so.SO") == [(0, 2, "so"), (3, 5, "so"), (6, 8, "so")]
    assert spans("so_so xso so1") == []
    assert spans("awaits waiting wait") == [(15, 19, "wait")]


def test_punctuation_grams_and_nesting_all_reported():
    assert spans("Hmm, but wait, no.") == [
        (0, 4, "hmm,"),
        (5, 13, "but wait"),
        (9, 13, "wait"),
        (9, 17, "wait, no"),
    ]
    assert spans("hmm") == []  # "hmm," needs its comma
    assert spans("hmm,x") == [(0, 4, "hmm,")]  # no boundary needed after a punctuation end
    assert spans("## Step 1: ## steps") == [(0, 7, "## step")]


def test_text_start_end_case_and_whitespace_runs():
    assert spans("Wait") == [(0, 4, "wait")]
    assert spans("LET\n\t ME") == [(0, 8, "let me")]
    assert spans("x  let   me  y") == [(3, 11, "let me")]
    assert spans("Let’s go and LET'S go") == [(0, 5, "let's"), (13, 18, "let's")]


def test_unicode_offsets_are_characters():
    text = "∑ é so — naïve wait"
    got = spans(text)
    assert got == [(2, 6, "é so"), (4, 6, "so"), (15, 19, "wait")]
    assert [text[s:e] for s, e, _ in got] == ["é so", "so", "wait"]
    # a letter outside ASCII is a word character: no "so" inside "éso"
    assert spans("éso soé") == []
    # Unicode lowercasing: "É SO" matches "é so"
    assert spans("É SO") == [(0, 4, "é so"), (2, 4, "so")]


def test_lowercase_bytes_never_moves_offsets():
    for text in ["ABC", "Ünïcode ÉÀ", "K kelvin sign", "İstanbul", "日本"]:
        data = text.encode()
        assert len(lowercase_bytes(data)) == len(data)


def _reference_mask(tokenizer, text, grams):
    """Ground truth from the tokenizer's own offsets: a token is planning iff it overlaps a span."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    found = GramMatcher(grams).spans(text)
    offsets = []
    for piece, (s_tok, e_tok) in zip(
        tokenizer.convert_ids_to_tokens(enc["input_ids"]), enc["offset_mapping"], strict=True
    ):
        if piece == "\u2581" and text[s_tok : s_tok + 1] != " ":
            # the prepended metaspace of a word is reported at the word's first char: it is a space
            s_tok, e_tok = (s_tok - 1, s_tok) if s_tok > 0 and text[s_tok - 1] == " " else (0, 0)
        offsets.append((s_tok, e_tok))
    mask = [any(s < e_tok and s_tok < e for s, e, _ in found) for s_tok, e_tok in offsets]
    return enc["input_ids"], mask


def _random_text(rng):
    words = [
        "so",
        "also",
        "Wait",
        "wait, no",
        "but wait",
        "Hmm,",
        "let me",
        "LET'S",
        "some",
        "x²",
        "日本語",
        "café",
        "=",
        "42",
        "é so",
        "🙂",
        "## step",
        "sober",
        "steps",
    ]
    return " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))


@pytest.mark.parametrize("family", FAMILIES)
def test_mask_matches_offset_ground_truth(family, request):
    tokenizer = request.getfixturevalue(family)
    tagger = PlanningTagger(GRAMS, tokenizer)
    rng = random.Random(0)
    for _ in range(150):
        text = _random_text(rng)
        ids, expected = _reference_mask(tokenizer, text, GRAMS)
        got = tagger.token_mask([ids])[0].tolist()
        assert got == expected, (text, tokenizer.convert_ids_to_tokens(ids))


@pytest.mark.parametrize("family", FAMILIES)
def test_byte_table_reproduces_decoded_text(family, request):
    tokenizer = request.getfixturevalue(family)
    table = token_byte_table(tokenizer)
    text = "Wait, no — naïve café 日本語 🙂 so\n\nlet me  check x² ≈ 4"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert b"".join(table[i] for i in ids).decode().strip() == tokenizer.decode(ids).strip()


@pytest.mark.parametrize("family", FAMILIES)
def test_padding_left_right_and_attention_mask(family, request):
    tokenizer = request.getfixturevalue(family)
    tagger = PlanningTagger(GRAMS, tokenizer)
    texts = ["Hmm, so we wait. Also fine.", "Let me see, but wait, no!", "plain text here"]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    unpadded = [tagger.token_mask([r])[0] for r in rows]
    assert any(m.any() for m in unpadded) and not unpadded[2].any()
    width = max(map(len, rows)) + 2
    pad = tokenizer.pad_token_id
    for side in ("left", "right"):
        ids = torch.full((len(rows), width), pad)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            sl = slice(width - len(r), width) if side == "left" else slice(0, len(r))
            ids[b, sl] = torch.tensor(r)
            attn[b, sl] = 1
        for mask in (tagger.token_mask(ids, attn), tagger.token_mask(ids)):
            assert mask.shape == ids.shape and mask.dtype == torch.bool
            for b, r in enumerate(rows):
                sl = slice(width - len(r), width) if side == "left" else slice(0, len(r))
                assert torch.equal(mask[b, sl], unpadded[b])
                assert not mask[b][attn[b] == 0].any()
    ragged = tagger.token_mask(rows)
    assert ragged.shape == (3, max(map(len, rows)))
    assert torch.equal(ragged[1, : len(rows[1])], unpadded[1])


def test_mask_independent_of_how_grams_are_split(bytelevel_tokenizer):
    """The same text tokenized canonically and byte by byte marks the same bytes as planning."""
    tok = bytelevel_tokenizer
    tagger = PlanningTagger(GRAMS, tok)
    table = token_byte_table(tok)
    single = {table[i]: i for i in range(len(table)) if len(table[i]) == 1}
    text = "Hmm, but wait, no: also so. Let me see — é so 日本"
    canonical = tok(text, add_special_tokens=False)["input_ids"]
    per_byte = [single[bytes([b])] for b in text.encode()]

    def planning_bytes(ids):
        mask = tagger.token_mask([ids])[0].tolist()
        return [flag for i, flag in zip(ids, mask, strict=True) for _ in table[i]]

    a, b = planning_bytes(canonical), planning_bytes(per_byte)
    span_bytes = [False] * len(text.encode())
    for s, e, _ in GramMatcher(GRAMS).spans(text):
        start = len(text[:s].encode())
        for k in range(start, len(text[:e].encode())):
            span_bytes[k] = True
    assert b == span_bytes  # byte tokens: exactly the span bytes
    assert all(x for x, y in zip(a, b, strict=True) if y)  # canonical covers every span byte


def test_special_tokens_are_never_planning_and_break_grams(smollm2_tokenizer):
    tok = smollm2_tokenizer
    tagger = PlanningTagger(StrategicGrams(["so", "let me"]), tok)
    ids = (
        tok("let", add_special_tokens=False)["input_ids"]
        + [tok.eos_token_id]
        + tok(" me so", add_special_tokens=False)["input_ids"]
    )
    mask = tagger.token_mask([ids])[0].tolist()
    assert mask == [False, False, False, True]


def test_wordpiece_family_is_supported(wordpiece_tokenizer):
    tagger = PlanningTagger(GRAMS, wordpiece_tokenizer)
    ids = wordpiece_tokenizer("Also, let me think. So yes.", add_special_tokens=False)["input_ids"]
    tokens = wordpiece_tokenizer.convert_ids_to_tokens(ids)
    mask = tagger.token_mask([ids])[0].tolist()
    assert [t for t, m in zip(tokens, mask, strict=True) if m] == ["let", "me", "so"]


def test_errors(smollm2_tokenizer):
    with pytest.raises(ValueError, match="needs a tokenizer"):
        PlanningTagger(GRAMS).token_mask([[1, 2]])
    tagger = PlanningTagger(GRAMS, smollm2_tokenizer)
    with pytest.raises(ValueError, match="outside the tokenizer's vocabulary"):
        tagger.token_mask([[1, 10**7]])
    with pytest.raises(ValueError, match="same shape"):
        tagger.token_mask([[1, 2]], [[1]])


def test_segments_and_decode_with_spans(smollm2_tokenizer):
    tok = smollm2_tokenizer
    tagger = PlanningTagger(GRAMS, tok)
    text = "Hmm, 日本 so also."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    segments = tagger.segments(ids)
    assert "".join(s for s, _ in segments) == text
    assert [s for s, flag in segments if flag] == ["Hmm,", " so"]
    decoded, found = tagger.decode_with_spans(ids)
    assert decoded == text and [s.gram for s in found] == ["hmm,", "so"]
    assert tagger.planning_ratio([ids]) == pytest.approx(
        sum(tagger.token_mask([ids])[0]).item() / len(ids)
    )


# --------------------------------------------------------------------------- the batched tagger
def _real_texts() -> list[str]:
    """Real reasoning text: MATH solutions, the bundled trace, and text outside ASCII (including
    characters whose lowercase form has another UTF-8 length: Kelvin sign, dotted capital I)."""
    from hicra.eval.registry import bundled_file, get_benchmark
    from hicra.jsonl import read_jsonl

    solutions = [row["solution"] for _, row in read_jsonl(bundled_file(get_benchmark("math")))]
    trace = resources.files("hicra").joinpath("assets/sample_trace.txt").read_text(encoding="utf-8")
    odd = [
        "İstanbul: WAIT, so the 5 \u212a limit… Let me check: naïve café 日本語 🙂 so",
        "É SO: ÉSO é so",  # "é so" only by Unicode lowering, which the İ row above cannot have
        "ALSO—so\u00a0so,\tlet\n\nme   see; BUT WAIT, no. Hmm,Hmm, LET’S go ## Step 2",
        "Ⱥ so wait Ⱥ",
    ]
    return [*solutions[:60], trace[:3000], trace[3000:6000], *odd]


@pytest.mark.parametrize(
    "family", ["bytelevel_tokenizer", "sentencepiece_tokenizer", "smollm2_tokenizer"]
)
def test_batched_masks_and_counts_equal_the_row_by_row_tagger(family, request, paper_grams):
    """The batched tagger marks exactly the tokens, and counts exactly the grams, that the
    row-by-row implementation it replaced did (tests/tagging_reference.py), on real text."""
    tokenizer = request.getfixturevalue(family)
    rng = np.random.default_rng(0)
    for grams in (paper_grams, GRAMS):
        tagger = PlanningTagger(grams, tokenizer)
        matcher = ReferenceMatcher(grams)
        rows = [
            np.array(tokenizer(text, add_special_tokens=False)["input_ids"][:700], dtype=np.int64)
            for text in _real_texts()
        ]
        rows.append(np.array([tokenizer.eos_token_id] * 3, dtype=np.int64))  # special tokens only
        # rows cut inside a character: a row that starts with a continuation byte ("é" is C3 A9)
        # reads that byte, not the row before it, when it checks the word boundary of "so"
        byte_id = {b: i for i, b in enumerate(tagger._table) if len(b) == 1}
        so_wait = tokenizer(" so wait, no", add_special_tokens=False)["input_ids"]
        so = [byte_id[b"s"], byte_id[b"o"]]
        rows.append(np.array([byte_id[b"\xa9"], *so, *so_wait, byte_id[b"\xc3"]]))
        rows.append(np.array([byte_id[b"\xc3"], byte_id[b"\xa9"], *so, *so_wait]))
        rows.append(np.zeros(0, dtype=np.int64))  # an empty row
        keeps = [rng.random(len(r)) > 0.05 for r in rows]  # tool tokens cut out of the rows
        vocabulary = len(tagger._table)
        noisy = [np.where(rng.random(len(r)) < 0.01, vocabulary + 7, r) for r in rows]
        for counting in COUNTINGS:
            for ids, keep, strict in ((rows, None, True), (noisy, keeps, False)):
                ours: Counter[str] = Counter()
                theirs: Counter[str] = Counter()
                got = tagger.token_mask(
                    ids, keep, gram_counts=ours, counting=counting, strict=strict
                )
                expected = reference_token_mask(
                    tagger._table, matcher, ids, keep, theirs, strict, counting
                )
                for b, row_mask in enumerate(expected):
                    assert got[b, : len(row_mask)].tolist() == row_mask.tolist(), (family, b)
                    assert not got[b, len(row_mask) :].any()
                assert ours == theirs and list(ours) == list(theirs)
                assert sum(theirs.values()) > 50  # the text really holds grams
        # the same rows padded into one tensor, and tagged a few rows at a time
        width = max(len(r) for r in rows)
        padded = torch.zeros((len(rows), width), dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for b, row in enumerate(rows):
            padded[b, : len(row)] = torch.from_numpy(row)
            attention[b, : len(row)] = 1
        whole = tagger.token_mask(padded, attention)
        assert torch.equal(whole, tagger.token_mask(rows))
        small_chunks = PlanningTagger(grams, tokenizer)
        small_chunks._chunk_tokens = 3 * width
        assert torch.equal(small_chunks.token_mask(padded, attention), whole)


def test_batched_tagger_strict_error_names_the_first_bad_id(smollm2_tokenizer):
    tagger = PlanningTagger(GRAMS, smollm2_tokenizer)
    with pytest.raises(ValueError, match=r"token id -5 is outside"):
        tagger.token_mask([[1, 2, 3], [4, -5, 10**7]])
    masked = tagger.token_mask([[1, 2, 3], [4, -5, 10**7]], [[1, 1, 1], [1, 0, 0]], strict=False)
    assert masked[1].tolist() == [False, False, False]


def test_longest_non_overlapping_is_the_greedy_choice():
    """The array version picks what `select_matches` picks, on dense random overlapping spans."""
    rng = np.random.default_rng(1)
    for size in (0, 1, 2, 5, 40, 400):
        starts = rng.integers(0, max(size, 1) * 2, size)
        spans = sorted(
            {(int(s), int(s + rng.integers(1, 12)), int(rng.integers(0, 3))) for s in starts}
        )
        got = longest_non_overlapping(np.array(spans, dtype=np.int64).reshape(-1, 3))
        assert [tuple(m) for m in got.tolist()] == select_matches(spans, "longest")
    # by hand: "but wait, let me verify" -> "but wait" and "let me verify"
    spans = [(0, 3, 0), (0, 8, 1), (4, 8, 2), (10, 16, 3), (10, 23, 4)]
    assert longest_non_overlapping(np.array(spans)).tolist() == [[0, 8, 1], [10, 23, 4]]
