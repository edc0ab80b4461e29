"""Countdown: reach the target number with each given number used exactly once, and + - * /.

Rewards in TRL's form (`f(prompts, completions, **dataset_columns) -> list[float | None]`): the
dataset's `numbers` and `target` columns arrive as keyword arguments, one value a completion.
`check` is the same verifier for `hicra eval --checker` (one completion and its row).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction

ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def completion_text(completion) -> str:
    """TRL passes chat messages ([{"role": "assistant", "content": ...}]) or plain text."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


def equation(text: str) -> str | None:
    """The last <answer>...</answer> of a completion."""
    found = ANSWER.findall(text)
    return found[-1].strip() if found else None


def evaluate(expression: str) -> tuple[Fraction, list[int]] | None:
    """The exact value of an arithmetic expression and the numbers it uses; None when it is not
    one (names, calls, powers, a division by zero...)."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    used: list[int] = []

    def value(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            used.append(node.value)
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
            return left / right  # ZeroDivisionError: not an answer
        raise ValueError("not + - * / on whole numbers")

    try:
        return value(tree), used
    except (ValueError, ZeroDivisionError, RecursionError):
        return None


def is_correct(text: str, numbers: list[int], target: int) -> bool:
    expression = equation(text)
    result = evaluate(expression) if expression else None
    if result is None:
        return False
    total, used = result
    return Counter(used) == Counter(numbers) and total == target


def countdown_reward(prompts, completions, numbers, target, **kwargs) -> list[float]:
    """1.0 when the answer's expression uses each number once and equals the target, else 0.0."""
    return [
        1.0 if is_correct(completion_text(c), n, t) else 0.0
        for c, n, t in zip(completions, numbers, target, strict=True)
    ]


def format_reward(prompts, completions, **kwargs) -> list[float]:
    """1.0 when the completion gives an <answer>...</answer>, else 0.0."""
    return [1.0 if equation(completion_text(c)) is not None else 0.0 for c in completions]


def check(completion: str, row: dict) -> bool:
    """`hicra eval --checker examples/countdown/reward.py:check`: the training reward's verdict."""
    return is_correct(completion, row["numbers"], row["target"])
