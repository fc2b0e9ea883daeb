"""Hydra callback: count a multirun's jobs up front so each run can print 'run i/N'."""

from __future__ import annotations

import os

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The overrides of every job of a multirun, as Hydra's basic sweeper will launch them: the study's sweeper
    params first, then the command line, a later override of a key replacing an earlier one."""
    params = config.hydra.sweeper.get("params") or {}
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def sweep_size(config: DictConfig) -> int:
    return len(job_overrides(config))


class SweepProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            os.environ["RESLAB_SWEEP_TOTAL"] = str(sweep_size(config))
        except Exception:  # progress is a nicety; never fail a sweep over it
            os.environ.pop("RESLAB_SWEEP_TOTAL", None)
