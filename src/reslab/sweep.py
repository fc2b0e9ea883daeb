"""Hydra callback: count a multirun's jobs up front so each run can print 'run i/N'."""

from __future__ import annotations

import os

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def sweep_size(config: DictConfig) -> int:
    params = config.hydra.sweeper.get("params") or {}
    overrides = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(overrides)
    sizes = {}  # later overrides of a key replace earlier ones: the command line beats the sweeper params
    for o in parsed:
        sizes[o.get_key_element()] = len(list(o.sweep_string_iterator())) if o.is_sweep_override() else 1
    total = 1
    for n in sizes.values():
        total *= n
    return total


class SweepProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            os.environ["RESLAB_SWEEP_TOTAL"] = str(sweep_size(config))
        except Exception:  # progress is a nicety; never fail a sweep over it
            os.environ.pop("RESLAB_SWEEP_TOTAL", None)
