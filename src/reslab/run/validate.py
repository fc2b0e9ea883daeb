"""The whole training config checked in one place, before anything touches the disk.

The schema below sits beside the defaults (conf/train.yaml, conf/profile/, conf/data/): every value a
run reads, with its type and range. `check` raises a one-line ReslabError for the first value outside
it, naming the value and what is valid; `reslab-train` calls it before the run directory exists, and a
multirun calls it for every job before the first one starts (reslab.run.guard).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from reslab.data.loader import NORMALIZATIONS, SPLITS
from reslab.errors import ReslabError, bad_choice
from reslab.options import SIMPLE_NAME
from reslab.run import distributed, ladder
from reslab.run.distributed import STRATEGIES
from reslab.training.device import DEVICES, pick_device
from reslab.training.schedule import DECAY_SHAPES, WARMUP_SHAPES

WANDB_MODES = ("offline", "online", "disabled")  # logger.mode; the W&B logger (reslab.tracking.logger) reads it here

PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")
MISSING = object()


def _bad(key: str, value, valid: str) -> ReslabError:
    return ReslabError(f"{key}={value!r} is not valid; valid: {valid}")


@dataclass(frozen=True)
class Int:
    min: int = 0
    max: int | None = None
    null: bool = False  # null means "not set" (e.g. profile.max_steps: epochs decide)
    auto: bool = False  # "auto" means "the device's choice" (e.g. trainer.eval_batch_size)

    def valid(self) -> str:
        rng = f"an integer >= {self.min}" + (f" and <= {self.max}" if self.max is not None else "")
        return rng + (" (or null)" if self.null else "") + (" (or auto)" if self.auto else "")

    def check(self, key: str, value) -> None:
        if (value is None and self.null) or (value == "auto" and self.auto):
            return
        # bool is an int in Python; `seed=true` is a mistake, not seed 1.
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < self.min
            or (self.max is not None and value > self.max)
        ):
            raise _bad(key, value, self.valid())


@dataclass(frozen=True)
class Num:
    min: float = 0.0
    above: bool = False  # strictly above `min` (a learning rate of 0 trains nothing)
    max: float | None = None
    null: bool = False

    def valid(self) -> str:
        rng = f"a number {'>' if self.above else '>='} {self.min:g}" + (
            f" and <= {self.max:g}" if self.max is not None else ""
        )
        return rng + (" (or null)" if self.null else "")

    def check(self, key: str, value) -> None:
        if value is None and self.null:
            return
        ok = (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and (value > self.min if self.above else value >= self.min)
            and (self.max is None or value <= self.max)
        )
        if not ok:
            raise _bad(key, value, self.valid())


@dataclass(frozen=True)
class Bool:
    def valid(self) -> str:
        return "true or false"

    def check(self, key: str, value) -> None:
        if not isinstance(value, bool):
            raise _bad(key, value, self.valid())


@dataclass(frozen=True)
class Choice:
    options: tuple

    def valid(self) -> str:
        return "one of " + ", ".join(map(str, self.options))

    def check(self, key: str, value) -> None:
        if value not in self.options:
            raise bad_choice(key, value, self.options)


@dataclass(frozen=True)
class Name:
    """A plain name that becomes a directory (study, profile): no slashes, no spaces."""

    def valid(self) -> str:
        return "a plain name of letters, digits, '.', '_' and '-'"

    def check(self, key: str, value) -> None:
        if not isinstance(value, str) or not SIMPLE_NAME.fullmatch(value):
            raise _bad(key, value, self.valid())


@dataclass(frozen=True)
class Fractions:
    """Points in training as fractions of it, in (0, 1] (profile.milestones)."""

    def valid(self) -> str:
        return "a list of fractions of training in (0, 1], e.g. [0.5, 0.75]"

    def check(self, key: str, value) -> None:
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 1 for v in value
        ):
            raise _bad(key, value, self.valid())


@dataclass(frozen=True)
class Steps:
    """Explicit optimizer steps (probes.flow_window): a list of integers >= 0, or null for none."""

    def valid(self) -> str:
        return "a list of steps (integers >= 0), e.g. [1, 5, 10], or null"

    def check(self, key: str, value) -> None:
        if value is None:
            return
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
        ):
            raise _bad(key, value, self.valid())


SCHEMA = {
    "study": Name(),
    "seed": Int(0, 2**32 - 1),
    "device": Choice(DEVICES),
    "threads": Int(1, null=True),
    "jobs": Int(1),
    "trainer.precision": Choice(PRECISIONS),
    "trainer.channels_last": Bool(),
    "trainer.deterministic": Bool(),
    "trainer.eval_batch_size": Int(1, auto=True),
    "trainer.save_weights": Bool(),
    "trainer.checkpoint_every_n_steps": Int(0),
    "trainer.devices": Int(1),
    "trainer.strategy": Choice(STRATEGIES),
    "trainer.sync_batchnorm": Bool(),
    "profile.name": Name(),
    "profile.train_subset": Int(1, null=True),
    "profile.eval_subset": Int(1, null=True),
    "profile.batch_size": Int(1),
    "profile.max_steps": Int(1, null=True),
    "profile.epochs": Int(1, null=True),
    "profile.lr": Num(0, above=True),
    "profile.momentum": Num(0),
    "profile.weight_decay": Num(0),
    "profile.nesterov": Bool(),
    "profile.milestones": Fractions(),
    "profile.gamma": Num(0, above=True),
    "profile.eval_every_epochs": Int(0, null=True),
    "profile.train_eval_images": Int(1, null=True),
    "data.split": Choice(SPLITS),
    "data.normalize": Choice(NORMALIZATIONS),
    "data.pad": Int(0),
    "data.flip": Bool(),
    "data.subset_seed": Int(0, 2**63 - 1),
    "data.download": Bool(),
    "probes.grad_norms": Bool(),
    "probes.grad_points_per_epoch": Int(1),
    "probes.grad_every_n_steps": Int(1, null=True),
    "probes.flow_points": Int(0),
    "probes.flow_batches": Int(1),
    "probes.flow_batch_size": Int(1),
    "probes.flow_window": Steps(),  # not in conf/train.yaml: a study that needs it sets it (conf/experiment/depth.yaml)
    "probes.responses": Bool(),
    "probes.response_calib_images": Int(1),
    "logger.wandb": Bool(),
    "logger.mode": Choice(WANDB_MODES),
    "logger.project": Name(),
    "logger.log_every_n_steps": Int(1),
}
OPTIONAL = {  # sub-configs a profile may leave out; when present, their values are checked
    "profile.warmup": {"min_depth": Int(0), "steps": Int(0), "lr": Num(0, above=True), "shape": Choice(WARMUP_SHAPES)},
    "profile.curve": {"points": Int(0), "early_points": Int(0), "train_images": Int(0), "test_images": Int(0)},
    # Warmup-stable-decay instead of the milestones (reslab.training.schedule): the lr falls over the last `fraction`.
    "profile.decay": {"fraction": Num(0, above=True, max=1), "shape": Choice(DECAY_SHAPES)},
}
DEFAULTS = {
    "trainer.checkpoint_every_n_steps": 200,
    "profile.warmup.shape": "constant",
    "trainer.devices": 1,
    "profile.decay.shape": "linear",
    "profile.train_eval_images": None,
    "trainer.strategy": "auto",
    "trainer.sync_batchnorm": False,
    "probes.flow_window": None,
}


def _value(cfg: DictConfig, key: str):
    value = OmegaConf.select(cfg, key, default=MISSING, throw_on_missing=False)
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value


def check_values(cfg: DictConfig) -> None:
    for key, field in SCHEMA.items():
        value = _value(cfg, key)
        if value is MISSING:
            if key in DEFAULTS:
                continue
            raise ReslabError(f"{key} is missing from the config; valid: {field.valid()}")
        field.check(key, value)
    for group, fields in OPTIONAL.items():
        sub = _value(cfg, group)
        if sub in (MISSING, None):
            continue
        for name, field in fields.items():
            key = f"{group}.{name}"
            value = sub.get(name, DEFAULTS.get(key, MISSING)) if isinstance(sub, dict) else MISSING
            if value is MISSING:
                raise ReslabError(f"{key} is missing from the config; valid: {field.valid()}")
            field.check(key, value)
    if cfg.profile.get("max_steps") is None and cfg.profile.get("epochs") is None:
        raise ReslabError("profile.epochs and profile.max_steps are both null; valid: either an integer >= 1")
    ladder.check(cfg)


def check_writable(runs: str | Path, where: Path | None = None) -> None:
    """The folder a run will live in (`where`, under `runs`), or the nearest folder above it that exists, must be
    a folder we can write."""
    here = Path(where if where is not None else runs).expanduser().absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir() or not os.access(here, os.W_OK | os.X_OK):
        what = "is not a directory" if not here.is_dir() else "is not writable"
        raise ReslabError(
            f"paths.runs={str(runs)!r} cannot be written: {str(here)!r} {what}; valid: a directory you can write to"
        )


def check_source(cfg: DictConfig) -> None:
    source = cfg.data.get("source")
    if source not in (None, "", "null") and not Path(str(source)).expanduser().exists():
        from reslab.data.source import HOW_TO_PASS

        raise ReslabError(f"data source {str(source)!r} does not exist; {HOW_TO_PASS}")


def check(cfg: DictConfig, here: bool = True) -> None:
    """Every value of a training config, its model, device, data source and runs directory; raises the
    first problem as a one-line ReslabError. Reads nothing but the config and the file system's metadata.
    here=False: the run will go on another machine (a Slurm node), whose devices are not this one's."""
    from reslab.models import build_model

    check_values(cfg)
    build_model(cfg.model)  # the model's own options (depth 6n+2, shortcut kinds, ...)
    # The device count against the batch (everywhere) and against this machine's devices (where it runs).
    distributed.check(cfg, pick_device(cfg.device) if here else None)
    check_source(cfg)
    from reslab.run.runinfo import run_dir

    check_writable(cfg.paths.runs, run_dir(cfg).parent)
