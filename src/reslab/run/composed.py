"""Each job of a multirun composed once (issue 28).

The guard composes every job's config before the first job (reslab.run.guard). Hydra then composes each one twice
more with the same call, `load_sweep_config(master config, the job's overrides)`: its basic sweeper to check the
batch (`Sweeper.validate_batch_is_legal`) and its basic launcher to run the job. Composition reads and merges some
thirty YAML files (~0.16 s on 2 cores, the bench's 'compose'), against a few milliseconds for a copy.

`reuse` hands those two calls a copy of the config the guard composed, taken before the guard named the jobs (its
label suffixes are set on its own configs, reslab.run.sweep_label). Any other call composes as before. Only for the
basic launcher: there every call is in this process, from one config loader; other launchers compose in their
workers (joblib) or on other machines (Slurm) from a pickled loader, which is left as Hydra made it.
"""

from __future__ import annotations

import copy

from omegaconf import DictConfig

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def launches_here(config: DictConfig) -> bool:
    """Whether the multirun's jobs run in this process (Hydra's basic launcher)."""
    return str(config.hydra.launcher.get("_target_", "")) == BASIC_LAUNCHER


class Composed:
    """`load_sweep_config` of one config loader, answered from the configs composed for one master config."""

    def __init__(self, load, master: DictConfig, configs: dict[tuple[str, ...], DictConfig]):
        self.load, self.master, self.configs = load, master, configs

    def __call__(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        cfg = self.configs.get(tuple(sweep_overrides)) if master_config is self.master else None
        if cfg is None:
            return self.load(master_config, sweep_overrides)
        return copy.deepcopy(cfg)  # the caller sets the job's number on it, and the job its label suffix


def reuse(loader, master: DictConfig, jobs: list[tuple[list[str], DictConfig]]) -> None:
    """From now on `loader` answers the jobs' `load_sweep_config` with copies of `jobs`' configs, as composed (call
    before anything changes them); `forget` undoes it."""
    configs = {tuple(overrides): copy.deepcopy(cfg) for overrides, cfg in jobs}
    # The class's method bound to this loader: Hydra's composition, never an earlier sweep's Composed.
    loader.load_sweep_config = Composed(type(loader).load_sweep_config.__get__(loader), master, configs)


def forget(loader) -> None:
    vars(loader).pop("load_sweep_config", None)
