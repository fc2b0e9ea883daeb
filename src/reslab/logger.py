"""The run's W&B logger (conf/logger/): offline by default, none when the logger group turns it off."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf


def make_logger(cfg: DictConfig, name: str, out: Path):
    if not cfg.logger.get("wandb"):
        return None
    os.environ.setdefault("WANDB_MODE", cfg.logger.mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(project=cfg.logger.project, group=f"{cfg.study}/{cfg.profile.name}", name=name,
                       save_dir=cfg.logger.dir, mode=cfg.logger.mode,
                       config=OmegaConf.to_container(cfg, resolve=True), log_model=False)
