"""Hydra callback: count a multirun's jobs up front so each run can print 'run i/N', and record the sweep
(runs/<study>/<profile>/_sweeps/*.json) so that a report can tell which of the runs asked for are missing."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The overrides of every job of a multirun, as Hydra's basic sweeper will launch them."""
    from reslab.report.consistency import sweep_jobs

    return sweep_jobs(dict(config.hydra.sweeper.get("params") or {}), list(config.hydra.overrides.task))


def sweep_size(config: DictConfig) -> int:
    return len(job_overrides(config))


class SweepProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            os.environ["RESLAB_SWEEP_TOTAL"] = str(sweep_size(config))
        except Exception:  # progress is a nicety; never fail a sweep over it
            os.environ.pop("RESLAB_SWEEP_TOTAL", None)
        try:
            record(config)
        except Exception as err:  # without the record a report falls back to the study's config; train anyway
            print(f"reslab: warning: the sweep's job list was not recorded ({type(err).__name__}: {err})", flush=True)


def record(config: DictConfig) -> Path | None:
    """Write the sweep's job list where its runs go, and the keys whose values its labels carry (reslab.sweep_label,
    found by the guard before); a sweep over studies or profiles has no one place (none)."""
    from reslab import io, sweep_label
    from reslab.report.consistency import SWEEPS

    jobs = job_overrides(config)
    for key in ("study", "profile"):
        if len({o for job in jobs for o in job if o.startswith(f"{key}=")}) > 1:
            return None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = Path(config.paths.runs) / config.study / config.profile.name / SWEEPS / f"{stamp}-{os.getpid()}.json"
    return io.write_json(path, {"started": stamp, "jobs": jobs, "label_keys": sweep_label.recorded_keys()})
