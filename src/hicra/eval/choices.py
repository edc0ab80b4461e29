"""Multiple-choice problems: options in the question, the gold letter, checking by letter or text.

The vision-language benchmarks mix free-form and multiple-choice questions, and store the options
and the gold answer differently: MathVista keeps a `choices` list and the gold as the option's
text, MathVision and EMMA an `options` list and the gold as a letter, MathVerse writes the options
into the question and keeps a letter. Every one becomes the same `Problem`: `choices` in letter
order and the gold as its letter. A completion's final answer (the last `\\boxed{}`, else an
anchored "answer:" line) is correct when it names the gold letter ("B", "(B)", "B.", "Option B",
"B: 145°") or, when it names no letter, when the answer checker accepts it against the gold
option's text ("145" for "145°"): checked by letter and by option text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from hicra.answers import Verdict, extract_answer

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CHOICES_HEADER = re.compile(r"^\s*(?:choices|options)\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])\s*[).:：]\s*(.*?)\s*$")
_PREFIX = r"^\s*(?:(?:option|choice)\s+)?"
_BRACKETED_LETTER = re.compile(_PREFIX + r"[\(\[]\s*([A-Z])\s*[\)\]]", re.IGNORECASE)
_BARE_LETTER = re.compile(_PREFIX + r"([A-Z])\s*(?:$|[.:：)]\s*)", re.IGNORECASE)
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")


def format_choices(choices: Sequence[str]) -> str:
    """The options as the question shows them: "Choices:" then "(A) ..." lines."""
    lines = [f"({LETTERS[i]}) {text}" for i, text in enumerate(choices)]
    return "Choices:\n" + "\n".join(lines)


def parse_choices(question: str) -> tuple[str, ...]:
    """Options written into a question after a "Choices:" line ("A:x", "A. x", "(A) x"), in
    letter order from A; () when there is no such block."""
    header = _CHOICES_HEADER.search(question)
    if header is None:
        return ()
    found: list[str] = []
    for line in question[header.end() :].splitlines():
        match = _OPTION_LINE.match(line)
        if match is None:
            if found and line.strip():
                break  # the options ended
            continue
        if match.group(1) != LETTERS[len(found)]:
            break
        found.append(match.group(2))
    return tuple(found)


def gold_letter(gold: str, choices: Sequence[str]) -> str | None:
    """The gold answer as a letter: itself when it is one of the choices' letters, else the
    letter of the option whose text it is (MathVista stores the text); None otherwise."""
    text = gold.strip()
    letter = text.strip("()").upper()
    if len(letter) == 1 and letter in LETTERS[: len(choices)]:
        return letter
    normalized = [" ".join(c.split()).lower() for c in choices]
    wanted = " ".join(text.split()).lower()
    return LETTERS[normalized.index(wanted)] if wanted in normalized else None


def answer_letter(answer: str, choices: int) -> str | None:
    """The option letter an extracted answer names ("B", "(b)", "Option B", "B: 145°",
    "(B) 145°", "\\text{B}"), or None when it names none of the first `choices` letters."""
    text = _TEXT_WRAPPER.sub(r"\1", answer.replace("$", "")).strip()
    if len(text.strip("()[]. ")) == 1:  # the letter alone, in any case
        text = text.strip("()[]. ").upper()
    match = _BRACKETED_LETTER.match(text) or _BARE_LETTER.match(text)
    if match is None:
        return None
    letter = match.group(1)
    if not letter.isupper() and len(text) > 1:
        return None  # "a + b", "x = 2": lower-case words are answers, not option letters
    return letter if letter in LETTERS[:choices] else None


def check_with_choices(
    checker: Any, completions: Sequence[str], golds: Sequence[str], choices: Sequence[Sequence[str]]
) -> list[Verdict]:
    """Verdicts for completions of mixed problems: free-form ones (no choices) go to `checker` as
    they are; multiple-choice ones are right by letter, else by the gold option's text."""
    verdicts: list[Verdict | None] = [None] * len(completions)
    pending: list[int] = []  # checked by `checker`: free-form, or a choice given as text
    targets: list[str] = []
    for i, (completion, gold, options) in enumerate(zip(completions, golds, choices, strict=True)):
        if not options:
            pending.append(i)
            targets.append(gold)
            continue
        answer = extract_answer(completion)
        if not answer:
            verdicts[i] = Verdict(False, "no_answer", None)
            continue
        letter = answer_letter(answer, len(options))
        if letter is not None:
            verdicts[i] = Verdict(letter == gold, "ok", letter)
        else:
            pending.append(i)
            targets.append(options[LETTERS.index(gold)])
    if pending:
        checked = checker.check_many([completions[i] for i in pending], targets)
        for i, verdict in zip(pending, checked, strict=True):
            verdicts[i] = verdict
    return [v for v in verdicts if v is not None]
