"""Run an experiment's arm x seed trainings and evaluations as `hicra` subprocesses, N at a time.

Each run is a normal `hicra train` into `DIR/ARM/seed-S/` with its config in `DIR/ARM/seed-S.yaml`
and its output in `DIR/ARM/seed-S.log`, so every guarantee of a run folder holds (one writer, exact
resume). Re-running skips finished runs, resumes killed ones, and starts again the ones that died
before their first checkpoint (their folder is kept aside, renamed). CPU threads are split between
the processes that run at once; `gpus` assigns runs to devices round-robin.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hicra.experiment import HELDOUT_FILE, SEED_PREFIX
from hicra.experiment.preregistration import preregister
from hicra.experiment.spec import ExperimentSpec
from hicra.experiment.status import RunStatus, State, run_status
from hicra.output_folder import set_aside


@dataclass
class Job:
    """One `hicra` command of an experiment."""

    label: str
    argv: list[str]
    log: Path
    returncode: int | None = None
    seconds: float = 0.0
    stamp: tuple[Path, str] | None = None  # (file, text) written when the job succeeds


@dataclass
class Plan:
    """What a `hicra experiment run` will do, and what it leaves alone."""

    statuses: list[RunStatus]
    jobs: list[Job] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "arm/seed-S: finished" etc.


def training_plan(spec: ExperimentSpec, folder: Path) -> Plan:
    """A training job for every run that is not finished (fresh, or resumed from a checkpoint).
    Before the first run starts, the plan the analysis will be judged on is recorded
    (`preregistration`)."""
    preregister(spec, folder)
    plan = Plan(statuses=[])
    for arm in spec.arms:
        for seed in spec.seeds:
            run = spec.run_dir(folder, arm, seed)
            config = spec.run_config(folder, arm, seed)
            status = run_status(arm, seed, run, config.get("max_steps"))
            plan.statuses.append(status)
            if status.state is State.FINISHED:
                plan.skipped.append(f"{status.label}: finished (step {status.last_step})")
                continue
            if status.state is State.RUNNING:
                plan.skipped.append(f"{status.label}: running in another process")
                continue
            if status.state is State.BROKEN:  # nothing to resume: keep it aside, start again
                set_aside(run, f"{run.name}.broken-")
            config_file = run.with_suffix(".yaml")
            run.parent.mkdir(parents=True, exist_ok=True)
            config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
            argv = ["train", "--config", str(config_file), "--output-dir", str(run)]
            if status.state is State.KILLED:
                argv.append("--resume")
            plan.jobs.append(Job(status.label, argv, run.with_suffix(".log")))
    return plan


EVAL_STAMP = "experiment-eval.txt"  # RUN/eval/: the eval fingerprint its results were made under


def eval_plan(spec: ExperimentSpec, folder: Path, previous: str | None = None) -> list[Job]:
    """`hicra eval` on the final model of every finished run not evaluated under the current eval
    settings, asked as it was trained (`--prompt-of RUN`), into RUN/eval. An evaluation made under
    other settings (its stamp, or `previous`, the folder's last eval fingerprint, when it has no
    stamp) is kept aside as RUN/eval.stale-DATE and made again: no run is trained again."""
    if not spec.eval:
        return []
    options = spec.eval
    current = spec.eval_fingerprint()
    if options.get("heldout"):
        benchmarks = str(folder / HELDOUT_FILE)
    elif options.get("file"):
        benchmarks = str(options["file"])
    else:
        benchmarks = ",".join(options["benchmarks"])
    jobs = []
    for arm in spec.arms:
        for seed in spec.seeds:
            run = spec.run_dir(folder, arm, seed)
            config = spec.run_config(folder, arm, seed)
            if run_status(arm, seed, run, config.get("max_steps")).state is not State.FINISHED:
                continue
            out = run / "eval"
            stamp = out / EVAL_STAMP
            made_under = stamp.read_text().strip() if stamp.is_file() else previous
            stale = out.exists() and made_under not in (current, None)
            if (out / "results.json").is_file() and not stale:
                continue
            if stale:  # an interrupted evaluation under the same settings is resumed instead
                set_aside(out, "eval.stale-")
            argv = ["eval", "--model", str(run), "--benchmarks", benchmarks]
            argv += ["--output-dir", str(out), "--prompt-of", str(run), "--no-progress"]
            for key in ("samples", "max_new_tokens", "temperature", "limit"):
                if options.get(key) is not None:
                    argv += [f"--{key.replace('_', '-')}", str(options[key])]
            label = f"{arm}/{SEED_PREFIX}{seed} eval"
            jobs.append(Job(label, argv, run / "eval.log", stamp=(stamp, current)))
    return jobs


def execute(
    jobs: list[Job],
    parallel: int = 1,
    gpus: list[str] | None = None,
    echo: bool = True,
) -> list[Job]:
    """Run the jobs, `parallel` at a time; each job's output goes to its log (appended)."""
    threads = max(1, (os.cpu_count() or 1) // max(1, parallel))
    pending = list(enumerate(jobs))
    running: list[tuple[Job, subprocess.Popen, float]] = []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                index, job = pending.pop(0)
                env = dict(os.environ)
                env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
                env.setdefault("PYTHONUNBUFFERED", "1")
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
                job.log.parent.mkdir(parents=True, exist_ok=True)
                with open(job.log, "ab") as log:
                    process = subprocess.Popen(
                        [sys.executable, "-m", "hicra.cli", *job.argv],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                running.append((job, process, time.monotonic()))
                if echo:
                    device = f" on GPU {env['CUDA_VISIBLE_DEVICES']}" if gpus else ""
                    print(f"hicra experiment: started {job.label}{device} (log {job.log})")
            time.sleep(0.2)
            for item in list(running):
                job, process, started = item
                if process.poll() is None:
                    continue
                running.remove(item)
                job.returncode, job.seconds = process.returncode, time.monotonic() - started
                if job.returncode == 0 and job.stamp is not None:
                    job.stamp[0].write_text(job.stamp[1] + "\n", encoding="utf-8")
                if echo:
                    outcome = "done" if job.returncode == 0 else f"FAILED ({job.returncode})"
                    print(f"hicra experiment: {outcome}: {job.label} in {job.seconds:.0f} s")
    except KeyboardInterrupt:
        for _, process, _ in running:  # the runs resume where they stopped on the next call
            process.terminate()
        for _, process, _ in running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        raise
    return jobs
