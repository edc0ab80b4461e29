"""Structured output: answer with one JSON object holding exactly the asked keys and values.

Rewards in TRL's form (`f(prompts, completions, **dataset_columns) -> list[float | None]`): the
dataset's `answer` column (the expected object, as JSON text) arrives as a keyword argument.
`check` is the same verifier for `hicra eval --checker` (one completion and its row).
"""

from __future__ import annotations

import json
import re

FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def completion_text(completion) -> str:
    """TRL passes chat messages ([{"role": "assistant", "content": ...}]) or plain text."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def parse_object(text: str) -> dict | None:
    """The completion's JSON object: a ```json block, else the text from the first "{" to the
    last "}"; None when that is not a JSON object."""
    fenced = FENCED.findall(text)
    candidate = fenced[-1] if fenced else text[text.find("{") : text.rfind("}") + 1]
    try:
        value = json.loads(candidate)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def score(text: str, expected: dict) -> float:
    """1.0 for exactly the expected object; else half the share of expected keys whose value is
    right (a valid object with some fields right earns something); 0.0 when it is not JSON."""
    got = parse_object(text)
    if got is None:
        return 0.0
    if got == expected:
        return 1.0
    right = sum(1 for key, value in expected.items() if got.get(key) == value)
    return 0.5 * right / len(expected)


def json_reward(prompts, completions, answer, **kwargs) -> list[float]:
    """The score of each completion against its row's expected object."""
    return [
        score(completion_text(c), json.loads(a)) for c, a in zip(completions, answer, strict=True)
    ]


def valid_json_reward(prompts, completions, **kwargs) -> list[float]:
    """1.0 for any parseable JSON object, else 0.0: the format alone."""
    return [1.0 if parse_object(completion_text(c)) is not None else 0.0 for c in completions]


def check(completion: str, row: dict) -> bool:
    """`hicra eval --checker examples/json_output/reward.py:check`: exactly the expected object."""
    return score(completion, json.loads(row["answer"])) == 1.0
