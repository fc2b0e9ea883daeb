"""What a run is, in one object: its config, its key on this machine, the device and precision it trains with, the
name its progress lines carry, where it lives once committed (`out`) and where it is written until then (`work`,
the `.next` directory). Built once by train.py; what trains and what writes the outputs read it, and under DDP it is
what each rank receives (it pickles)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig


@dataclass(frozen=True)
class RunContext:
    cfg: DictConfig
    key: str
    device: str
    precision: str
    name: str
    out: Path
    work: Path
