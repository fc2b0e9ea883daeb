"""A run's identity and bookkeeping: its directory, its config hash, its environment record.

A run is identified by everything that changes its numbers (model, profile, data copy and
split, seed, device type, precision) and by nothing else (paths, loggers, thread counts), so a
rerun of a sweep can skip exactly the runs whose results already stand.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from reslab import io
from reslab.paths import ROOT


def label(cfg: DictConfig) -> str:
    """Human name of the model in a run: the variant's name if the study gives one, else family-depth."""
    if cfg.get("variant") and cfg.variant.get("name"):
        return f"{cfg.variant.name}-{cfg.model.depth}"
    return f"{family(cfg)}-{cfg.model.depth}"


def family(cfg: DictConfig) -> str:
    if cfg.model.get("family"):
        return str(cfg.model.family)
    return "plain" if cfg.model.get("shortcut") == "none" else str(cfg.model.name)


def identity(cfg: DictConfig, data_checksum: str, device_type: str, precision: str) -> dict:
    return {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "profile": OmegaConf.to_container(cfg.profile, resolve=True),
        "data": {k: v for k, v in OmegaConf.to_container(cfg.data, resolve=True).items()
                 if k not in ("source", "cache_dir", "download")} | {"checksum": data_checksum},
        "seed": int(cfg.seed),
        "device_type": device_type,
        "precision": precision,
        "channels_last": bool(cfg.trainer.channels_last),
    }


def key_of(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.runs) / cfg.study / cfg.profile.name / f"{label(cfg)}-s{cfg.seed}"


def finished(path: Path, key: str, probes: dict | None = None) -> dict | None:
    """The stored result if this exact run already finished with the measurements asked for, else None.

    Probes do not change a run's numbers (a test checks that training is bit-identical with and
    without them), so they are not part of the identity; but a run that lacks a measurement the
    config now asks for is not finished: it is trained again, and the old one is kept aside."""
    result = path / "result.json"
    if not result.is_file():
        return None
    try:
        stored = io.read_json(result)
    except (OSError, ValueError):
        return None
    if stored.get("key") != key:
        return None
    return stored if probes is None or stored.get("probes") == probes else None


def prepare(path: Path, key: str) -> None:
    """Make `path` ready for a fresh run. A finished run of another config is moved aside, never
    deleted; a half-written run (no result.json) is cleared."""
    if (path / "result.json").is_file():
        try:
            old = io.read_json(path / "result.json").get("key", "unknown")
        except (OSError, ValueError):
            old = "unreadable"
        aside = path.with_name(f"{path.name}.stale-{old[:8]}")
        n = 1
        while aside.exists():
            aside = path.with_name(f"{path.name}.stale-{old[:8]}-{n}")
            n += 1
        path.rename(aside)
    elif path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        if sha.returncode:
            return "unknown"
        # Generated reports are tracked but are outputs, not code: they do not make the code dirty.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip()[:12] + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(device: str) -> dict:
    import lightning
    import torch

    env = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "git_commit": git_commit(),
        "argv": sys.argv,
    }
    if device.startswith("cuda"):
        env["cuda"] = torch.version.cuda
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
