"""The report's prompt thumbnails: inlined once per image, only from the run's own folder."""

from __future__ import annotations

import base64
import io
import json

from PIL import Image

from hicra.images import thumbnail_png
from hicra.report.build import build_report
from hicra.testing.tiny_vision import digit_image


def write_run(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    metrics = [{"step": s, "reward": 0.5, "hicra/accuracy": 0.5} for s in (1, 2)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    (folder / "rollouts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def rollout(step, thumbnails, images):
    return {
        "step": step,
        "group": 0,
        "prompt": "Which digit is shown?",
        "completion": "Let me look. So \\boxed{3}",
        "answer": "3",
        "correct": True,
        "planning_spans": [[0, 6, "let me"]],
        "images": images,
        "thumbnails": thumbnails,
    }


def test_thumbnails_inlined_once_and_confined_to_the_run(tmp_path):
    run = tmp_path / "run"
    (run / "thumbnails").mkdir(parents=True)
    png = thumbnail_png(digit_image(3, "circle"))
    (run / "thumbnails" / "a.png").write_bytes(png)
    secret = tmp_path / "secret.png"
    digit_image(9).save(secret)  # outside the run folder: never read into the page
    (run / "thumbnails" / "fake.png").write_text("not a png")
    rows = [rollout(s, ["thumbnails/a.png"], ["data/3.png"]) for s in (1, 1, 2, 2)]
    rows.append(rollout(2, ["../secret.png"], ["escape.png"]))
    rows.append(rollout(2, ["thumbnails/fake.png"], ["fake.png"]))
    rows.append(rollout(2, ["thumbnails/missing.png"], ["missing.png"]))
    rows.append({**rollout(2, [], []), "images": None, "thumbnails": None})  # a text rollout
    write_run(run, rows)
    page = (build_report([run], tmp_path / "report").files["html"]).read_text()
    encoded = base64.b64encode(png).decode()
    assert page.count(encoded) == 1  # one copy for the four cards that show it
    assert page.count("aria-label='data/3.png'") == 4
    assert base64.b64encode(secret.read_bytes()).decode() not in page
    for label in ("escape.png", "fake.png", "missing.png"):
        assert f"image: {label}" in page  # the label alone
    width, height = Image.open(io.BytesIO(png)).size
    assert f"{{width:{width}px;height:{height}px;" in page
    assert page.count("<div class='images'>") == 7  # the text rollout shows none
