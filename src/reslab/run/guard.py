"""A multirun of `reslab-train` is checked whole before its first job, and one failing job does not end it.

- `SweepGuard.on_multirun_start` composes every job's config, as the launcher will, and checks each with
  reslab.run.validate: a bad value anywhere stops the sweep with one line before anything is trained or written.
  In one process (Hydra's basic launcher) the sweeper and the launcher reuse these configs (reslab.run.composed).
  It then names the jobs (reslab.run.sweep_label: the label carries the swept values the net's name does not show)
  and refuses, the same way, a sweep two of whose jobs would still share a run directory with different settings:
  there the run lock would skip one of them and each rerun would supersede the other.
- `recorded` wraps the task: inside a multirun a job that fails (an exception, not a stop request)
  leaves `<run>.next/failed.json` with its message and traceback, prints one line, and the next job starts;
  nothing finished is moved, since a run is committed only when it ends (reslab.run.runinfo).
- `SweepGuard.on_multirun_end` ends the sweep with exit code 1 and one line if any job failed.

The callbacks run in the launching process, the jobs wherever the launcher puts them (joblib's workers, Slurm nodes
through submitit): the checks and the failure records meet on the file system both see. A Slurm job's device is not
the launching node's, so there it is left to the job's own check (`runs_elsewhere`).
"""

from __future__ import annotations

import functools
import sys
import traceback

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from reslab import io
from reslab.errors import ReslabError, fail, one_line_errors
from reslab.paths import TRAIN_JOB
from reslab.run import composed, runinfo, sweep_label


def _in_multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:
        return False


def _failed_path(cfg: DictConfig):
    return runinfo.next_dir(runinfo.run_dir(cfg)) / runinfo.FAILED


def record_failure(cfg: DictConfig, err: BaseException) -> str:
    message = str(err) if isinstance(err, ReslabError) else f"{type(err).__name__}: {err}"
    path = _failed_path(cfg)
    io.write_json(
        path,
        {
            "label": runinfo.label(cfg),
            "seed": cfg.seed,
            "error": message,
            "traceback": "".join(traceback.format_exception(err)),
        },
    )
    return f"{message} (recorded in {path})"


def recorded(task):
    """One run: a ReslabError is one line and exit 2. In a multirun: a failed job is recorded and the sweep goes
    on. A stop request (SIGINT, SIGTERM: SystemExit, KeyboardInterrupt) ends a sweep as it ends one run."""
    single = one_line_errors(task)

    @functools.wraps(task)
    def wrapper(cfg: DictConfig):
        if not _in_multirun():
            return single(cfg)
        try:
            sweep_label.for_job(cfg)  # before anything reads the label, the failure record included
            return task(cfg)
        except Exception as err:
            where = f"{runinfo.label(cfg)} s{cfg.seed}"
            print(
                f"reslab: error: [{where}] failed: {record_failure(cfg, err)}; the sweep goes on",
                file=sys.stderr,
                flush=True,
            )
            return None

    return wrapper


def runs_elsewhere(config: DictConfig) -> bool:
    """Whether the launcher sends the jobs to other machines (Slurm): their GPUs are not the launching node's.
    The file system is shared, so the data source and the runs directory are checked here all the same."""
    return "SlurmLauncher" in str(config.hydra.launcher.get("_target_", ""))


def check_directories(jobs: list[tuple[list[str], DictConfig]], keys: list[str]) -> None:
    """Refuse two jobs that would train in one run directory with different settings: their labels carry the
    swept values (`keys`), but a value written short (a path by its file name, a long one cut) can lose the
    difference. Jobs with equal values are one config, so one run: the later finds it done and skips it."""
    first: dict = {}
    for i, (overrides, cfg) in enumerate(jobs):
        values = sweep_label.swept_values(cfg, overrides, cfg.hydra.runtime.choices)
        j, other, seen = first.setdefault(runinfo.run_dir(cfg), (i, overrides, values))
        differ = [k for k in values if not sweep_label.same(values[k], seen.get(k))]
        if differ:

            def named(ov: list[str]) -> str:
                return " ".join(o for o in ov if o.lstrip("+~").partition("=")[0] in differ)

            raise ReslabError(
                f"jobs {j + 1} ({named(other)}) and {i + 1} ({named(overrides)}) would both train in "
                f"{runinfo.run_dir(cfg)} with different settings: the label carries the swept values "
                f"({', '.join(keys) or 'none'}) but its short form of these is the same; give them values whose "
                f"short forms differ (a path by its file name, a value by its first {sweep_label.LONGEST} characters) "
                "or run them as separate sweeps (another study=...); nothing was run"
            )


class SweepGuard(Callback):
    def __init__(self):
        self.jobs: list[DictConfig] = []

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if config.hydra.job.name != TRAIN_JOB:
            return
        from hydra.core.global_hydra import GlobalHydra

        from reslab.run import sweep, validate

        loader = GlobalHydra.instance().config_loader()
        here = not runs_elsewhere(config)
        try:
            jobs = []
            for i, overrides in enumerate(sweep.job_overrides(config)):
                cfg = loader.load_sweep_config(config, list(overrides))
                try:
                    validate.check(cfg, here=here)
                except ReslabError as err:
                    raise ReslabError(f"{err} (job {i + 1}: {' '.join(overrides)}); nothing was run") from None
                jobs.append((overrides, cfg))
            if composed.launches_here(config):  # Hydra's sweeper and launcher get these, not two more compositions
                composed.reuse(loader, config, jobs)
            keys = sweep_label.label_sweep(jobs)
            check_directories(jobs, keys)
        except ReslabError as err:
            fail(err)
        sweep_label.export(keys)  # for the jobs: joblib's workers and Slurm's jobs read it from the environment
        self.jobs = [cfg for _, cfg in jobs]
        try:  # the manifest a report reads: which runs this sweep asked for, named as its jobs name themselves
            sweep.record(config, [runinfo.run_dir(cfg).name for cfg in self.jobs], keys)
        except Exception as err:  # without it a report cannot list the missing runs; train anyway
            print(f"reslab: warning: the sweep's manifest was not written ({type(err).__name__}: {err})", flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.global_hydra import GlobalHydra

        composed.forget(GlobalHydra.instance().config_loader())
        failed = [p for p in (_failed_path(cfg) for cfg in self.jobs) if p.is_file()]
        if failed:
            print(
                f"reslab: error: {len(failed)} of {len(self.jobs)} runs failed: " + ", ".join(str(p) for p in failed),
                file=sys.stderr,
                flush=True,
            )
            sys.exit(1)
