"""Hydra callback: count a multirun's jobs up front so each run can print 'run i/N'."""

from __future__ import annotations

import os

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def sweep_size(config: DictConfig) -> int:
    params = config.hydra.sweeper.get("params") or {}
    overrides = list(config.hydra.overrides.task) + [f"{k}={v}" for k, v in params.items()]
    parsed = OverridesParser.create().parse_overrides(overrides)
    total = 1
    for o in parsed:
        if o.is_sweep_override():
            total *= len(list(o.sweep_string_iterator()))
    return total


class SweepProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            os.environ["RESLAB_SWEEP_TOTAL"] = str(sweep_size(config))
        except Exception:  # progress is a nicety; never fail a sweep over it
            os.environ.pop("RESLAB_SWEEP_TOTAL", None)
