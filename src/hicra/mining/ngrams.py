"""Word n-grams of a reasoning trace, in the canonical form that strategic grams and the tagger use.

Words are whitespace-separated and keep their punctuation, as the paper's grams do ("hmm,",
"wait, no", "does this make sense?", "let's", "step-by-step"). Text is normalized with
`normalize_gram` (lowercase, straight apostrophes). Two rules keep formulas and sentence seams out:

- an n-gram contains only *text words*: at least one letter, no digit or math character
  (``$ \\ ^ _ { } = < > + * / | ~ [ ] @ % &``) and at most 64 characters, or a Markdown heading
  marker (``#``, ``##``); "$x$", "<<48/2=24>>24" and "2x+1" split the text, so no candidate
  mixes prose and math;
- an n-gram never crosses a line break or a sentence end: a word ending in ``.``, ``!`` or ``?``
  can only be the last word ("does this make sense?" is a gram; "is 7. so we" is not).

`sentences` gives the same runs grouped by sentence (a line up to a word ending in ``.``, ``!`` or
``?``), with what contrastive selection asks of a sentence: does it carry math (a word with a digit
or a math character other than ``*``), and does its first run open it (nothing but list or emphasis markers
before it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from hicra.grams import normalize_gram

MAX_WORDS = 65_536  # words read from one trace: bounds the memory one pathological trace can take
MAX_WORD_CHARS = 64  # a longer "word" (a URL, base64, a formula without spaces) is never text

_MATH_OR_DIGIT = re.compile(r"[\d$\\^_{}=<>+*/|~\[\]@%&]")
_LETTER = re.compile(r"[^\W\d_]")
_HEADING = re.compile(r"#+")
_MARKUP = re.compile(r"[-*#>\u2022]+")  # list bullets, emphasis, quote markers
_MATH = re.compile(r"[\d$\\^_{}=<>+/|~\[\]@%&]")  # `_MATH_OR_DIGIT` but "*": "**bold**" is no math
_SENTENCE_END = (".", "!", "?")
_CACHE_LIMIT = 500_000
_word_cache: dict[str, bool] = {}


def is_text_word(word: str) -> bool:
    """Whether `word` may be part of an n-gram: letters with punctuation, or a `#` heading marker.

    Linear-time checks (no backtracking pattern), so one pathological word cannot stall a run.
    """
    if len(word) > MAX_WORD_CHARS:
        return False
    known = _word_cache.get(word)
    if known is None:
        if len(_word_cache) > _CACHE_LIMIT:
            _word_cache.clear()
        known = _word_cache[word] = bool(
            _HEADING.fullmatch(word) or (_LETTER.search(word) and not _MATH_OR_DIGIT.search(word))
        )
    return known


def _line_words(text: str, max_words: int) -> Iterator[list[str]]:
    """The normalized words of each line, the first `max_words` words of `text` in all."""
    left = max_words
    for line in text.splitlines():
        if left <= 0:
            break
        words = normalize_gram(line).split()[:left]
        left -= len(words)
        yield words


def segments(text: str, max_words: int = MAX_WORDS) -> list[list[str]]:
    """Maximal runs of text words within one line and one sentence, normalized, in order.

    Only the first `max_words` words of `text` are read.
    """
    runs: list[list[str]] = []
    cached = _word_cache.get  # the fast path of is_text_word, without a call per word
    for words in _line_words(text, max_words):
        run: list[str] = []
        for word in words:
            known = cached(word)
            if known is None:
                known = is_text_word(word)
            if known:
                run.append(word)
                if not word.endswith(_SENTENCE_END):
                    continue
            if run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
    return runs


class Sentence(NamedTuple):
    """The runs of text words of one sentence (as `segments` cuts them) and two facts about it."""

    runs: list[list[str]]
    has_math: bool  # a word with a digit or a math character: the sentence carries a formula
    opens: bool  # runs[0] starts the sentence: its first words are the sentence's first words


def sentences(text: str, max_words: int = MAX_WORDS) -> list[Sentence]:
    """The sentences of `text` with their runs; the runs of all sentences are `segments(text)`.

    A sentence ends at a line break or after any word ending in ``.``, ``!`` or ``?``. Sentences
    without text words are left out.
    """
    found: list[Sentence] = []
    cached = _word_cache.get
    for words in _line_words(text, max_words):
        runs: list[list[str]] = []
        run: list[str] = []
        math = False
        opens = True  # no word other than markup seen yet in this sentence
        first_run_opens = False
        for word in words:
            known = cached(word)
            if known is None:
                known = is_text_word(word)
            if known:
                if not run and not runs:
                    first_run_opens = opens
                run.append(word)
                opens = False
            else:
                if run:
                    runs.append(run)
                    run = []
                if not math and _MATH.search(word):
                    math = True
                if not _MARKUP.fullmatch(word):
                    opens = False
            if word.endswith(_SENTENCE_END):
                if run:
                    runs.append(run)
                    run = []
                if runs:
                    found.append(Sentence(runs, math, first_run_opens))
                runs, math, opens, first_run_opens = [], False, True, False
        if run:
            runs.append(run)
        if runs:
            found.append(Sentence(runs, math, first_run_opens))
    return found


def run_ngrams(run: list[str], n_min: int, n_max: int) -> list[str]:
    """The n-grams (n_min <= n <= n_max) of one run, in order of n."""
    length = len(run)
    grams: list[str] = []
    for n in range(n_min, min(n_max, length) + 1):
        grams.extend(" ".join(run[i : i + n]) for i in range(length - n + 1))
    return grams


def doc_ngrams(text: str, n_min: int, n_max: int, max_words: int = MAX_WORDS) -> list[str]:
    """Every n-gram occurrence (n_min <= n <= n_max) of `text`, repeats included, in order of n."""
    grams: list[str] = []
    for run in segments(text, max_words):
        grams.extend(run_ngrams(run, n_min, n_max))
    return grams
