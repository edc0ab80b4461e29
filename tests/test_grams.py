import hashlib
import json
from importlib import resources

import pytest

from hicra import StrategicGrams
from hicra.grams import GramsError, normalize_gram

# SHA256 of the 249 grams of the paper's Appendix A (Listing 1), lowercase as printed, joined by
# newlines: computed from the team's transcription of the listing when the preset was checked.
PAPER_GRAMS_SHA256 = "ac552c0c31eb5bd943bde3b11231d7cabe909bed8bf6d67d40319c7e1a7ccd37"


def test_paper_preset_is_the_appendix_list():
    grams = StrategicGrams.preset("paper")
    assert len(grams) == 249
    assert hashlib.sha256("\n".join(grams.grams).encode()).hexdigest() == PAPER_GRAMS_SHA256
    stored = json.loads(resources.files("hicra").joinpath("assets/paper.json").read_text())
    assert [normalize_gram(g) for g in stored["grams"]] == list(grams.grams)
    assert grams.grams[:2] == ("## step", "a good starting point is")
    assert grams.grams[-2:] == ("will consider the", "work our way")
    assert "let's break this down" in grams and "wait, no" in grams and "## step" in grams
    assert "arXiv:2509.03646" in grams.provenance["citation"]
    assert grams.name == "paper"


def test_normalization_and_dedup_keep_first_order():
    grams = StrategicGrams(["  Let  ME\tverify ", "let me verify", "It’s better", "so"], name="x")
    assert grams.grams == ("let me verify", "it's better", "so")
    assert len(grams) == 3
    assert "LET ME   VERIFY" in grams
    assert 42 not in grams


def test_immutable_and_hashable():
    grams = StrategicGrams(["so", "but"])
    with pytest.raises(AttributeError):
        grams.name = "other"
    with pytest.raises(TypeError):
        grams.provenance["x"] = 1
    assert hash(grams) == hash(StrategicGrams(["but", "so"][::-1]))
    assert grams == StrategicGrams(["so", "but"]) and grams != StrategicGrams(["but", "so"])


def test_save_load_roundtrip_keeps_provenance_and_stats(tmp_path):
    grams = StrategicGrams(
        ["let me check", "so"],
        name="mined",
        provenance={"corpus": "math", "params": {"ngram": [3, 5]}},
        stats={"so": {"df": 10, "cluster": 0}},
    )
    path = grams.save(tmp_path / "sub" / "g.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "hicra.strategic_grams" and data["version"] == 1
    loaded = StrategicGrams.load(path)
    assert loaded == grams
    assert loaded.provenance["params"]["ngram"] == (3, 5)
    assert loaded.stats["so"]["df"] == 10


def test_load_plain_text_and_json_list(tmp_path):
    (tmp_path / "g.txt").write_text("Let me check\n\n## step\nso\n")
    assert StrategicGrams.load(tmp_path / "g.txt").grams == ("let me check", "## step", "so")
    (tmp_path / "l.json").write_text('["a b", "c"]')
    assert StrategicGrams.load(tmp_path / "l.json").grams == ("a b", "c")


def test_sample_keeps_fraction_deterministically():
    grams = StrategicGrams.preset("paper")
    kept = grams.sample(0.7, seed=3)
    assert len(kept) == round(249 * 0.7)
    assert set(kept.grams) <= set(grams.grams)
    assert kept == grams.sample(0.7, seed=3)
    assert kept.grams != grams.sample(0.7, seed=4).grams


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"grams": ["ok", 42]}', "entry 1 is int 42"),
        ('{"grams": []}', "has no grams"),
        ('{"grams": ["ok", "   "]}', "entry 1 is empty"),
        ('{"grams": "so"}', "must be a list"),
        ('{"grams": ["a"], "version": 9}', "schema version 9"),
        ('{"grams": ["a"],\n "x": }', "invalid JSON at line 2"),
        ('{"other": 1}', "object with a 'grams' list"),
        ("", "invalid JSON at line 1"),
    ],
)
def test_bad_files_name_file_and_entry(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(GramsError, match=message) as info:
        StrategicGrams.load(path)
    assert str(path) in str(info.value)


def test_missing_file_and_unknown_preset(tmp_path):
    with pytest.raises(GramsError, match="not found"):
        StrategicGrams.load(tmp_path / "nope.json")
    with pytest.raises(GramsError, match="unknown strategic-gram preset"):
        StrategicGrams.preset("nope")
    with pytest.raises(GramsError, match="neither a preset"):
        StrategicGrams.resolve("nope")
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(GramsError, match=r"blank\.txt: the set has no grams"):
        StrategicGrams.load(tmp_path / "blank.txt")
    with pytest.raises(GramsError, match="entry 0 is NoneType"):
        StrategicGrams([None])
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(GramsError, match="not UTF-8"):
        StrategicGrams.load(tmp_path / "latin1.txt")


def test_content_hash_is_the_grams_not_the_name():
    a = StrategicGrams(["Wait", "let me"], name="a")
    assert a.content_hash == StrategicGrams(["wait", "let  me"], name="b").content_hash
    assert a.content_hash != StrategicGrams(["let me", "wait"], name="a").content_hash
    assert len(a.content_hash) == 16
