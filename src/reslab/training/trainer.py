"""The Lightning Trainer a run trains with: one definition for train.py and for the bench that times it, and the
devices it trains on (`trainer.devices`; more than one: Lightning's DDP in processes reslab.run.distributed starts)."""

from __future__ import annotations

from omegaconf import DictConfig


def make_trainer(
    cfg: DictConfig,
    device: str,
    precision: str,
    steps: int,
    steps_per_epoch: int,
    eval_every: int,
    callbacks: list,
    logger=None,
):
    """`steps` optimizer steps on `trainer.devices` devices (reslab.run.distributed); no progress bar, summary or
    Lightning checkpoint (reslab has its own); the whole eval set every `eval_every` epochs (0: never during
    training)."""
    import lightning as L

    return L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        **trainer_args(cfg),
        precision=precision,
        max_steps=steps,
        max_epochs=-1,
        check_val_every_n_epoch=eval_every or None,
        limit_val_batches=1.0 if eval_every else 0,
        val_check_interval=None,
        num_sanity_val_steps=0,
        logger=logger if logger is not None else False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        deterministic=cfg.trainer.deterministic,
        log_every_n_steps=max(1, steps_per_epoch),
    )


def devices(cfg: DictConfig) -> int:
    return int(cfg.trainer.get("devices", 1) or 1)


def uses_ddp(cfg: DictConfig) -> bool:
    return devices(cfg) > 1 or cfg.trainer.get("strategy", "auto") == "ddp"


def trainer_args(cfg: DictConfig) -> dict:
    """The Trainer's device arguments."""
    if not uses_ddp(cfg):
        return {"devices": 1, "sync_batchnorm": bool(cfg.trainer.get("sync_batchnorm", False))}
    from lightning.fabric.plugins.environments import LightningEnvironment
    from lightning.pytorch.strategies import DDPStrategy

    # An explicit environment: under SLURM (the submitit launcher) Lightning would otherwise read the ranks from
    # SLURM's variables, which describe the job, not these processes.
    return {
        "devices": devices(cfg),
        "sync_batchnorm": bool(cfg.trainer.get("sync_batchnorm", False)),
        "strategy": DDPStrategy(cluster_environment=LightningEnvironment()),
    }
