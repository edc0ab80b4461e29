"""What `hicra train --resume` may change: every setting is compared with the run's config.yaml.

A checkpoint restores the optimizer and its learning-rate scheduler (the scheduler keeps the run's
learning rate), the random state, the data order and the model; TRL never rereads those settings.
A changed learning rate, seed, batch shape, model, credit... would be written to config.yaml while
every resumed step still trained with the old value. **Decision:** on resume, a setting that differs
from the run's config.yaml is refused, naming the key, unless it is in `CHANGEABLE`: settings that
take effect when changed and mix nothing (how long to train, how often to log and save, where to
report, how many answer-checking workers). config.yaml is therefore always what ran.

The held-out curve (`eval/<benchmark>/accuracy`) measures one fixed problem set: config.yaml records
each held-out benchmark's content hash (`hicra eval`'s `problems_hash`), and a resume whose
benchmark files hold other problems is refused. So is a resume whose strategic-grams file, under
the same name, holds other grams (`strategic_grams_hash`, compared like any setting).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hicra.errors import HicraError
from hicra.run_folder import CONFIG_FILE
from hicra.train.layers import RECORD_ONLY  # written for the record only, not settings

HELDOUT_HASH_KEY = "heldout_content_hash"  # config.yaml: {benchmark: problems_hash}
GRAMS_HASH_KEY = "strategic_grams_hash"  # config.yaml: the grams' content, compared on resume

# Settings that may differ on resume: each takes effect as given and mixes nothing.
CHANGEABLE = frozenset(
    {
        "resume",
        "print_config",
        "output_dir",  # the same folder, written another way (relative, absolute)
        "logging_dir",  # derived from output_dir
        "max_steps",  # train further (a decaying scheduler then decays over the new length)
        "num_train_epochs",
        "logging_steps",
        "logging_first_step",
        "save_steps",
        "save_strategy",
        "save_total_limit",
        "eval_steps",  # when the held-out set is scored, not what it is
        "per_device_eval_batch_size",
        "report_to",
        "run_name",
        "disable_tqdm",
        "log_level",
        "push_to_hub",
        "hub_model_id",
        "hub_strategy",
        "hub_private_repo",
        "dataloader_num_workers",
        "verify_workers",
        "verify_timeout",
        "rollouts_per_step",
    }
)


class ResumeError(HicraError):
    """A resume would silently mix two configurations; the message names the keys."""


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Values as config.yaml holds them (tuples as lists, enums as strings...)."""
    return yaml.safe_load(yaml.safe_dump(record, allow_unicode=True)) or {}


def current_record(config: Any, run_config: dict[str, Any]) -> dict[str, Any]:
    """The settings as config.yaml records them (as `HICRATrainer._config_record` writes them)."""
    record = dict(run_config)
    record.update({k: v for k, v in config.to_replayable_dict().items() if k not in record})
    return _plain(record)


def changed_settings(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`key old -> new` for each recorded setting that differs and may not change on resume.
    Keys the run did not record (a newer hicra's fields) are not compared."""
    return [
        f"{key} {saved[key]!r} -> {now[key]!r}"
        for key in saved
        if key in now
        and key not in CHANGEABLE
        and key not in RECORD_ONLY
        and saved[key] != now[key]
    ]


def check_resume_settings(
    folder: str | Path, saved: dict[str, Any], config: Any, run_config: dict[str, Any]
) -> None:
    """Refuse a resume whose settings differ from the run's config.yaml (see module docstring)."""
    changed = changed_settings(saved, current_record(config, run_config))
    if not changed:
        return
    keys = ", ".join(item.split(" ", 1)[0] for item in changed)
    verb = "differs" if len(changed) == 1 else "differ"
    raise ResumeError(
        f"--resume: {keys} {verb} from {Path(folder) / CONFIG_FILE} ({'; '.join(changed)}): the "
        "checkpoint would keep the run's values (optimizer, scheduler, random state, data and "
        "model are restored as they were) while config.yaml said otherwise; resume without "
        "changing them, or start a new run in another --output-dir (on resume only how long to "
        "train, how often to log, save and evaluate, where to report and the answer-checking "
        "workers may change: docs/train.md, Resume)"
    )


def check_heldout_hashes(folder: str | Path, saved: dict[str, Any], now: dict[str, str]) -> None:
    """Refuse a resume whose held-out benchmarks hold other problems than when the run began."""
    before = saved.get(HELDOUT_HASH_KEY)
    if not isinstance(before, dict):
        return  # a run of an older hicra, or without held-out evaluation
    changed = [
        f"{name} {before.get(name)} -> {value}"
        for name, value in now.items()
        if before.get(name) != value
    ]
    if changed:
        raise ResumeError(
            f"--resume: the held-out problems changed since the run in {folder} began (content "
            f"hash {'; '.join(changed)}): its eval/ curves measure one fixed problem set; restore "
            "the benchmark files, or start a new run in another --output-dir"
        )
