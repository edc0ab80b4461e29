"""Write data.jsonl (training) and test.jsonl (held out): countdown problems with 3 numbers.

Each target is made from the numbers with + - * (so every problem has a solution, kept as
`answer`); `python examples/countdown/make_data.py` rewrites both files identically (seeded).
"""

from __future__ import annotations

import itertools
import json
import operator
import random
from pathlib import Path

HERE = Path(__file__).parent
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
QUESTION = (
    "Using the numbers {numbers}, each exactly once, and + - * / (with parentheses if needed), "
    "write an expression that equals {target}. Put the expression in <answer></answer>."
)


def problem(rng: random.Random) -> dict:
    numbers = [rng.randint(1, 9) for _ in range(3)]
    a, b, c = rng.sample(numbers, 3)
    op1, op2 = rng.choice("+-*"), rng.choice("+-*")
    answer = f"({a} {op1} {b}) {op2} {c}"
    target = OPS[op2](OPS[op1](a, b), c)
    if target <= 0:
        return problem(rng)
    return {
        "question": QUESTION.format(numbers=", ".join(map(str, numbers)), target=target),
        "numbers": numbers,
        "target": target,
        "answer": answer,
    }


def main() -> None:
    rng = random.Random(24)
    rows = [problem(rng) for _ in itertools.repeat(None, 96)]
    for name, part in (("data.jsonl", rows[:64]), ("test.jsonl", rows[64:])):
        lines = "".join(json.dumps(r) + "\n" for r in part)
        (HERE / name).write_text(lines, encoding="utf-8")


if __name__ == "__main__":
    main()
