"""Write data.jsonl (training) and test.jsonl (held out): sentences to turn into JSON objects.

`answer` holds the expected object as JSON text (a text column keeps every row's table type the
same, whatever keys the object has); `python examples/json_output/make_data.py` rewrites both
files identically (seeded).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
NAMES = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Karen", "Ken"]
CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Perth", "Tunis", "Riga", "Bern"]
ITEMS = ["lamp", "chair", "kettle", "bicycle", "clock", "guitar", "tent", "camera"]
ASK = 'Return only a JSON object with the keys {keys} for this sentence: "{sentence}"'


def person(rng: random.Random) -> tuple[str, dict]:
    name, age = rng.choice(NAMES), rng.randint(18, 90)
    return f"{name} is {age} years old.", {"name": name, "age": age}


def trip(rng: random.Random) -> tuple[str, dict]:
    name, city, days = rng.choice(NAMES), rng.choice(CITIES), rng.randint(2, 14)
    return f"{name} spent {days} days in {city}.", {"name": name, "city": city, "days": days}


def sale(rng: random.Random) -> tuple[str, dict]:
    item, price = rng.choice(ITEMS), rng.randint(5, 500)
    return f"The {item} costs {price} euros.", {"item": item, "price": price}


def problem(rng: random.Random) -> dict:
    sentence, expected = rng.choice((person, trip, sale))(rng)
    keys = ", ".join(f'"{k}"' for k in expected)
    return {
        "question": ASK.format(keys=keys, sentence=sentence),
        "answer": json.dumps(expected),
    }


def main() -> None:
    rng = random.Random(7)
    rows = [problem(rng) for _ in range(96)]
    for name, part in (("data.jsonl", rows[:64]), ("test.jsonl", rows[64:])):
        lines = "".join(json.dumps(r) + "\n" for r in part)
        (HERE / name).write_text(lines, encoding="utf-8")


if __name__ == "__main__":
    main()
