"""What a run trains with, built once: the optimizer's settings and the lr schedule (warm-up by depth, step decay or
WSD). The LightningModule trains with it and the run's result.json records it, so the lr a run used has one writer
(`Recipe.of`, from the profile) and the result states the same object, never a second reading of the config."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from reslab.training.schedule import decay_start, lr_factor


@dataclass(frozen=True)
class Recipe:
    lr: float
    momentum: float
    weight_decay: float
    nesterov: bool
    total_steps: int
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1
    warmup_steps: int = 0
    warmup_lr: float | None = None
    warmup_shape: str = "constant"
    decay: dict | None = None  # WSD: {fraction, shape}; the milestones are then not used

    @classmethod
    def of(cls, cfg: DictConfig, total_steps: int) -> Recipe:
        """The profile's recipe for this net: the warm-up applies from `profile.warmup.min_depth` on (the paper
        warms up ResNet-110 only)."""
        p, warm = cfg.profile, cfg.profile.warmup
        warmup_steps = int(warm.steps) if warm and cfg.model.depth >= warm.min_depth else 0
        return cls(
            lr=p.lr,
            momentum=p.momentum,
            weight_decay=p.weight_decay,
            nesterov=p.nesterov,
            total_steps=total_steps,
            milestones=tuple(p.milestones),
            gamma=p.gamma,
            warmup_steps=warmup_steps,
            warmup_lr=warm.lr if warmup_steps else None,
            warmup_shape=warm.get("shape", "constant"),
            decay=OmegaConf.to_container(p.decay, resolve=True) if p.get("decay") else None,
        )

    def without_warmup(self) -> Recipe:
        return dataclasses.replace(self, warmup_steps=0, warmup_lr=None)

    def optimizer_args(self) -> dict:
        """torch.optim.SGD's arguments."""
        return dict(lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, nesterov=self.nesterov)

    def schedule_args(self) -> dict:
        """reslab.training.schedule.lr_factor's arguments (the factor on `lr` at a step)."""
        return dict(
            total=self.total_steps,
            milestones=list(self.milestones),
            gamma=self.gamma,
            warmup_steps=self.warmup_steps,
            warmup_factor=(self.warmup_lr / self.lr) if self.warmup_steps else 1.0,
            warmup_shape=self.warmup_shape,
            decay=dict(self.decay) if self.decay else None,
        )

    def factor(self, step: int) -> float:
        return lr_factor(step, **self.schedule_args())

    def record(self) -> dict:
        """The fields result.json states about the schedule (names as the reports read them)."""
        out = {
            "lr": float(self.lr),
            "warmup_steps": self.warmup_steps,
            "warmup_lr": float(self.warmup_lr) if self.warmup_steps else None,
            "warmup_shape": str(self.warmup_shape) if self.warmup_steps else None,
            "lr_drop_steps": [] if self.decay else [round(m * self.total_steps) for m in self.milestones],
            "lr_gamma": float(self.gamma),
        }
        if self.decay:  # a step schedule's runs keep the fields they had: no lr_decay
            fraction, shape = float(self.decay["fraction"]), str(self.decay.get("shape", "linear"))
            start = decay_start(self.total_steps, fraction)
            out["lr_decay"] = {"fraction": fraction, "shape": shape, "start_step": start}
        return out
