"""The run's W&B logger (conf/logger/): one W&B run per reslab run, offline by default, none at all when the logger
group turns W&B off (logger=none, logger=csv) or the environment does (WANDB_MODE=disabled): wandb is then not even
imported.

The run is created here, not by Lightning's WandbLogger, which would pass wandb 0.31 an `anonymous` setting that
only prints a deprecation warning; the WandbLogger wraps the run (`experiment=`). The run is finished when the
reslab run ends, however it ends, so a later job of the same multirun never logs into a failed job's run.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig, OmegaConf

from reslab.flat import flatten
from reslab.run import distributed, runinfo
from reslab.tracking.wandb_keys import STEP


def wandb_mode(cfg: DictConfig) -> str | None:
    """The W&B mode of this run, or None for no W&B. WANDB_MODE in the environment overrides logger.mode."""
    if not cfg.logger.get("wandb"):
        return None
    mode = os.environ.get("WANDB_MODE") or str(cfg.logger.mode)
    return None if mode == "disabled" else mode


def flat_config(cfg: DictConfig) -> dict:
    """The resolved config with dotted keys ("model.depth", "profile.lr"): W&B filters and group-bys name a value
    by its key, and a nested config would offer only its top-level keys."""
    return flatten(OmegaConf.to_container(cfg, resolve=True))


def block_name(cfg: DictConfig) -> str | None:
    """The net of the block study (a conf/block/ entry: a variant with a parameter budget), else None."""
    variant = cfg.get("variant")
    return str(variant.name) if variant and variant.get("budget") and variant.get("name") else None


def job_type(cfg: DictConfig) -> str:
    """The variant a study names (shortcut and block studies), else the model family."""
    variant = cfg.get("variant")
    return str(variant.name) if variant and variant.get("name") else runinfo.family(cfg)


def tags(cfg: DictConfig) -> list[str]:
    out = [f"depth:{cfg.model.depth}"]
    if cfg.model.get("shortcut") is not None:
        out.append(f"shortcut:{cfg.model.shortcut}")
    if block_name(cfg):
        out.append(f"block:{block_name(cfg)}")
    return out + [f"profile:{cfg.profile.name}", f"seed:{cfg.seed}"]


@contextlib.contextmanager
def wandb_run(cfg: DictConfig, name: str) -> Iterator:
    """A Lightning WandbLogger on a new W&B run named `name` (None if W&B is off), finished on the way out: exit
    code 0 if the block ended normally, 1 if it raised."""
    # Under DDP (reslab.run.distributed) only rank 0 logs: one W&B run per reslab run, the other ranks have no logger.
    mode = wandb_mode(cfg) if distributed.is_rank_zero() else None
    if mode is None:
        yield None
        return
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    # Info lines (version banner, where the offline run lies, the end-of-run table) are not asked for: only W&B's
    # warnings and errors reach the terminal. The terminal settings are wandb.setup's, not the run's.
    wandb.setup(wandb.Settings(show_info=False))
    Path(cfg.logger.dir).mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=str(cfg.logger.project),
        group=f"{cfg.study}/{cfg.profile.name}",
        job_type=job_type(cfg),
        name=name,
        tags=tags(cfg),
        config=flat_config(cfg),
        dir=str(cfg.logger.dir),
        mode=mode,
        reinit="finish_previous",
        settings=wandb.Settings(quiet=True),
    )
    # What WandbLogger does for a run it creates itself: every series against Lightning's step.
    run.define_metric(STEP)
    run.define_metric("*", step_metric=STEP, step_sync=True)
    ok = False
    try:
        yield WandbLogger(experiment=run, log_model=False)
        ok = True
    finally:
        run.finish(exit_code=0 if ok else 1)


def log_result(logger, result: dict) -> None:
    """The result's scalar fields into the run's summary: a W&B table of runs reads as the reports' tables."""
    if logger is not None:
        logger.experiment.summary.update({k: v for k, v in result.items() if isinstance(v, (int, float, str))})
