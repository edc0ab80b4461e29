"""What each part of hicra needs: the core and the verl plugin without TRL, `hicra train` with it.

verl's fsdp and megatron extras pin trl==0.27.0 and hicra's trainer needs trl 1.16, so the split
must hold in the metadata (pyproject.toml) and in the code (no core module may import trl).
`make test` runs this file in `.venv` (trl 1.16) and `make test-verl` again in `.venv-verl`
(trl 0.27.0 beside verl[verl-core] 0.9.1, resolved with the plugin by pip), where the last tests
check `hicra train`'s refusal for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib's origin, in the dev extra there
    import tomli as tomllib

from hicra.errors import HicraError
from hicra.extras import EXTRAS, installed_version, require_extra, unmet_requirements

ROOT = Path(__file__).resolve().parents[1]
# The only modules that may import trl: the train wing's TRL code and its public re-export.
NEEDS_TRL = {"hicra.train.config", "hicra.train.hicra_trainer", "hicra.trainer"}
NEEDS_VERL = {
    "hicra.integrations.verl.estimator",
    "hicra.integrations.verl.plugin",
    "hicra.integrations.verl.trainers",
    "hicra.integrations.verl.workers",
}


HIDE_TRL = """
import importlib.abc, sys

class HideTrl(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "trl" or name.startswith("trl."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, HideTrl())
"""


def run_without_trl(code: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Python `code` (dedented) in a fresh process where `import trl` fails, as without TRL."""
    run = subprocess.run(
        [sys.executable, "-c", HIDE_TRL + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(line).name.lower() for line in requirements}


def test_train_extra_in_pyproject_is_the_one_the_commands_check():
    train = [Requirement(line) for line in _project()["optional-dependencies"]["train"]]
    assert {r.name: str(r.specifier) for r in train} == {
        name: str(Requirement(f"{name}{spec}").specifier) for name, spec in EXTRAS["train"].items()
    }


def test_neither_the_core_nor_the_verl_and_dev_extras_pull_trl():
    project = _project()
    extras = project["optional-dependencies"]
    for part, requirements in [
        ("core", project["dependencies"]),
        ("verl", extras["verl"]),
        ("dev", extras["dev"]),  # `make setup-verl` installs dev,verl beside verl's trl pin
    ]:
        names = _names(requirements)
        assert "trl" not in names, part
        assert "hicra" not in names, f"{part} pulls another hicra extra"
    assert "trl" in _names(extras["train"])


def test_the_vllm_extra_is_trls_own_with_the_train_extras_trl():
    """`hicra[vllm]` asks TRL for its vLLM range (trl 1.16: vllm 0.22-0.31) rather than guessing one."""
    (line,) = _project()["optional-dependencies"]["vllm"]
    vllm = Requirement(line)
    (trl,) = [
        r for r in map(Requirement, _project()["optional-dependencies"]["train"]) if r.name == "trl"
    ]
    assert (vllm.name, vllm.extras) == ("trl", {"vllm"}) and vllm.specifier == trl.specifier


def test_the_licence_file_is_apache_2_as_pyproject_says():
    project = _project()
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "http://www.apache.org/licenses/" in text and "END OF TERMS AND CONDITIONS" in text
    sections = [f"{n}. " for n in range(1, 10)]  # the nine numbered terms, in order
    places = [text.index(f"\n   {s}") for s in sections]
    assert places == sorted(places)


def test_citation_names_the_paper_and_this_version():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["version"] == _project()["version"] and citation["license"] == "Apache-2.0"
    paper = citation["preferred-citation"]
    assert (
        paper["title"] == "Emergent Hierarchical Reasoning in LLMs through Reinforcement Learning"
    )
    assert [a["family-names"] for a in paper["authors"]] == [
        "Wang",
        "Xu",
        "Liu",
        "Wu",
        "Lin",
        "Chen",
    ]
    assert "2509.03646" in paper["url"] and paper["year"] == 2025


def test_math_verify_leaves_antlr_to_the_environment():
    # verl's hydra-core and omegaconf need antlr4 4.9; math-verify's own range is 4.9.3 to 4.13.2.
    # Its antlr4_13_2 extra made pip fall back to hydra-core 0.11 beside verl.
    (line,) = [r for r in _project()["dependencies"] if Requirement(r).name == "math-verify"]
    assert not Requirement(line).extras


def test_every_core_module_imports_with_trl_hidden():
    """Import each hicra module with `import trl` failing; only NEEDS_TRL may fail (and the verl
    modules where verl is absent). In `.venv-verl` this includes the plugin itself."""
    code = f"""
        import importlib, importlib.util, pkgutil
        import hicra

        skip = {sorted(NEEDS_TRL)!r}
        if importlib.util.find_spec("verl") is None:
            skip += {sorted(NEEDS_VERL)!r}
        names = [m.name for m in pkgutil.walk_packages(hicra.__path__, "hicra.")]
        for name in names:
            if name in skip:
                continue
            try:
                importlib.import_module(name)
            except Exception as err:
                print("FAILED", name, repr(err))
        for name in {sorted(NEEDS_TRL)!r}:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as err:
                print("needs trl", name, err.name)
        print("imported", len(names), "trl loaded:", "trl" in sys.modules)
    """
    run = run_without_trl(code)
    lines = run.stdout.strip().splitlines()
    assert not [line for line in lines if line.startswith("FAILED")], lines
    # The hidden trl really is what stops the train wing (the check itself works).
    assert sorted(line for line in lines if line.startswith("needs trl")) == [
        f"needs trl {name} trl" for name in sorted(NEEDS_TRL)
    ]
    assert lines[-1].endswith("trl loaded: False")
    assert int(lines[-1].split()[1]) > 60  # the walk saw the whole package


def test_unmet_requirements_say_what_is_installed_and_what_is_needed():
    needs = {"trl": ">=1.16,<1.17", "peft": ">=0.17", "reasoning-gym": ">=0.1.20"}
    found = {"trl": "0.27.0", "peft": "0.17.0"}
    assert unmet_requirements(needs, found.get) == [
        "trl 0.27.0 is installed, >=1.16,<1.17 is needed",
        "reasoning-gym is not installed",
    ]
    found = {"trl": "1.16.0", "peft": "0.21.2", "reasoning-gym": "0.1.25"}
    assert unmet_requirements(needs, found.get) == []
    assert unmet_requirements({"trl": ">=1.16,<1.17"}, {"trl": "1.17.0"}.get) == [
        "trl 1.17.0 is installed, >=1.16,<1.17 is needed"
    ]


def test_require_extra_is_one_line_naming_the_extra():
    with pytest.raises(HicraError) as caught:
        require_extra("train", "hicra train", {"trl": "0.27.0"}.get)
    assert str(caught.value) == (
        "hicra train needs hicra's 'train' extra: pip install 'hicra[train]' "
        "(trl 0.27.0 is installed, >=1.16,<1.17 is needed; accelerate is not installed; "
        "peft is not installed; reasoning-gym is not installed)"
    )


def test_require_extra_to_import_is_an_import_error_naming_the_extra():
    from hicra.extras import MissingExtra, require_extra_to_import

    with pytest.raises(ModuleNotFoundError) as caught:  # what `try: import ...` code catches
        require_extra_to_import("train", "hicra.trainer", {"trl": "0.27.0"}.get)
    assert isinstance(caught.value, MissingExtra) and caught.value.name == "trl"
    assert str(caught.value) == (
        "hicra.trainer needs hicra's 'train' extra: pip install 'hicra[train]' "
        "(trl 0.27.0 is installed, >=1.16,<1.17 is needed; accelerate is not installed; "
        "peft is not installed; reasoning-gym is not installed)"
    )
    met = {"trl": "1.16.0", "accelerate": "1.10.0", "peft": "0.17.0"}
    with pytest.raises(MissingExtra) as caught:
        require_extra_to_import("train", "hicra.trainer", met.get)
    assert caught.value.name == "reasoning_gym"  # the module's name, not the distribution's
    require_extra_to_import("train", "hicra.trainer", {**met, "reasoning-gym": "0.1.25"}.get)


def test_importing_the_trainer_without_trl_names_the_extra():
    """`from hicra.trainer import HICRATrainer` with trl hidden (or, in .venv-verl, trl 0.27.0):
    a ModuleNotFoundError for trl whose text is the pip command."""
    code = """
        try:
            from hicra.trainer import HICRATrainer
        except ModuleNotFoundError as err:
            print(type(err).__name__, err.name, err, sep="|")
    """
    run = run_without_trl(code, timeout=300)
    unmet = unmet_requirements(EXTRAS["train"], installed_version)
    reasons = "; ".join(unmet) if unmet else "trl cannot be imported"
    assert run.stdout.strip() == (
        f"MissingExtra|trl|hicra.trainer needs hicra's 'train' extra: pip install 'hicra[train]' "
        f"({reasons})"
    )


def test_hicra_train_in_this_environment_runs_or_names_the_extra():
    """`.venv`: the train extra is met and `hicra train --help` lists TRL's fields. `.venv-verl`
    (trl 0.27.0): one line naming the extra, exit status 2, before TRL is imported."""
    unmet = unmet_requirements(EXTRAS["train"], installed_version)
    if os.environ.get("HICRA_REQUIRE_VERL") == "1":
        assert version("trl") == "0.27.0"  # the pin of verl's fsdp and megatron extras
        assert unmet
    run = subprocess.run(
        [sys.executable, "-m", "hicra.cli", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    if unmet:
        assert run.returncode == 2
        assert run.stderr.splitlines() == [
            "hicra train: error: hicra train needs hicra's 'train' extra: "
            f"pip install 'hicra[train]' ({'; '.join(unmet)})"
        ]
    else:
        assert run.returncode == 0, run.stderr[-2000:]
        assert "--hicra_alpha" in run.stdout


def test_math_verify_parses_latex_with_this_environments_antlr():
    from hicra.answers import MathVerifier

    verifier = MathVerifier(workers=1, timeout=30.0)
    try:
        verdicts = verifier.check_many(
            [r"\boxed{\frac{1}{2}}", r"\boxed{\sqrt{4}}", r"\boxed{\frac{1}{3}}"],
            ["0.5", "2", "0.5"],
        )
    finally:
        verifier.close()
    assert [v.correct for v in verdicts] == [True, True, False]
    assert [v.status for v in verdicts] == ["ok", "ok", "ok"]
