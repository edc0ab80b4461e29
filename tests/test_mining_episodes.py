"""`hicra mine --evaluate` on a folder of sentences labelled with Schoenfeld's episodes.

The files follow the published form of Li et al. (2025), `responses_labeled/N.json` of
github.com/MingLiiii/Schoenfeld_Reasoning; the sentences here are written for the test (that
corpus has no licence, so none of it is copied into hicra).
"""

from __future__ import annotations

import json

import pytest

from hicra import StrategicGrams
from hicra.cli import main
from hicra.mining.evaluation.labels import AnnotationError, hit_rates, read_annotations

TRACES = {  # file -> (sentence, sentence-level episode, paragraph-level episode)
    "1.json": [
        ("Okay, so I need to find the height.", "Read", "General"),
        ("Let me recall the volume formula.", "Analyze", "General"),
        ("Then h = 432 / 24 = 18.", "Implement", "General"),
        ("Wait, let me check that.", "Monitor", "Verify"),
        ("24 times 18 is 432, so it checks out.", "Verify", "Verify"),
    ],
    "2.json": [
        ("First, I will compute the mean.", "Plan", "General"),
        ("Alternatively, maybe the median is asked.", "Explore", "Explore"),
        ("The mean is 90 / 10 = 9.", "Implement", "General"),
    ],
    "10.json": [("Hmm, that seems right.", "Monitor", "General"), ("Done.", None, "General")],
}


def write_folder(folder, traces=TRACES):
    folder.mkdir()
    for name, units in traces.items():
        data = [{"text": t, "gt-class-1": p, "gt-class-2": s} for t, s, p in units]
        (folder / name).write_text(json.dumps({"Question ID": name, "data": data}))
    return folder


def test_episode_folder_uses_the_episode_labels(tmp_path):
    labels = read_annotations(write_folder(tmp_path / "labelled"))
    assert labels.traces == 3
    assert labels.planning_labels == ("Plan", "Monitor", "Verify")
    assert labels.execution_labels == ("Read", "Analyze", "Implement")
    assert labels.planning == [  # file order 1, 2, 10 (by number)
        "Wait, let me check that.",
        "24 times 18 is 432, so it checks out.",
        "First, I will compute the mean.",
        "Hmm, that seems right.",
    ]
    assert len(labels.execution) == 4
    assert labels.other == 2  # Explore, and the unlabelled "Done."
    # "let me" and "wait": planning units 1 and 4 of 4 hit ("hmm," too); execution: "Let me
    # recall" -> planning 0.5, execution 0.25, gap 0.25 by hand
    rates = hit_rates(StrategicGrams(["wait", "let me", "hmm,"]), labels)
    assert (rates.planning_hits, rates.execution_hits) == (2, 1)
    assert rates.gap == pytest.approx(2 / 4 - 1 / 4)


def test_labels_can_be_chosen(tmp_path):
    folder = write_folder(tmp_path / "labelled")
    labels = read_annotations(folder, ["Explore"], ["Implement"])
    assert labels.planning == ["Alternatively, maybe the median is asked."]
    assert labels.execution == ["Then h = 432 / 24 = 18.", "The mean is 90 / 10 = 9."]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "a folder of annotations must hold JSON files"),
        ({"1.json": "{not json"}, r"1.json: not valid JSON"),
        ({"1.json": json.dumps({"id": 1})}, r"1.json: no 'data' list of labelled sentences"),
        (
            {"1.json": json.dumps({"data": [{"text": "a", "gt-class-1": "General"}]})},
            r"1.json, unit 0: no field 'gt-class-2'",
        ),
        (
            {"1.json": json.dumps({"data": [{"text": 3, "gt-class-2": "Plan"}]})},
            r"1.json, unit 0: field 'text' must be a string",
        ),
        (
            {"1.json": json.dumps({"data": [{"text": "a", "gt-class-2": "Read"}]})},
            r"no unit has a planning label \(Plan, Monitor, Verify\).*labels found: Read \(1\)",
        ),
    ],
)
def test_bad_folders_are_one_clear_error(tmp_path, files, message):
    folder = tmp_path / "labelled"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    with pytest.raises(AnnotationError, match=message):
        read_annotations(folder)


def test_cli_evaluates_a_folder(tmp_path, capsys):
    folder = write_folder(tmp_path / "labelled")
    grams = tmp_path / "g.json"
    StrategicGrams(["wait", "let me", "hmm,"], name="g").save(grams)
    assert main(["mine", "--evaluate", str(folder), "--grams", str(grams)]) == 0
    printed = capsys.readouterr().out
    assert (
        "4 planning-like (Plan, Monitor, Verify), 4 execution-like (Read, Analyze, Implement)"
        in (printed)
    )
    row = next(line.split() for line in printed.splitlines() if line.startswith(str(grams)))
    assert row[:5] == [str(grams), "3", "0.500", "0.250", "0.250"]
    (folder / "3.json").write_text("[")
    assert main(["mine", "--evaluate", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "3.json: not valid JSON" in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["folder", "dangling", "number"])
def test_odd_entries_of_an_episode_folder_are_named(tmp_path, capsys, kind):
    """Issue 29: a subfolder or a dangling symbolic link named 2.json ended in tracebacks, and a
    numeric gt-class-2 was reported as a bad 'labels' field, which the file does not have."""
    folder = write_folder(tmp_path / "labelled")
    odd = folder / "2.json"
    odd.unlink()
    if kind == "folder":
        odd.mkdir()
        message = f"{odd}: a folder, not a JSON file of one trace; move it out of {folder}"
    elif kind == "dangling":
        odd.symlink_to(tmp_path / "gone.json")
        message = f"{odd}: a symbolic link that leads nowhere; remove or fix it"
    else:
        odd.write_text(json.dumps({"data": [{"text": "a", "gt-class-2": 2}]}))
        message = f"{odd}, unit 0: field 'gt-class-2' must be a label (text) or a list of labels, got int 2"
    assert main(["mine", "--evaluate", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err == f"hicra mine: error: {message}\n"
