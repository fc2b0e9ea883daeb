"""A run's identity and bookkeeping: its directory, its config hash, its environment record.

A run is identified by everything that changes its numbers (model, profile, data copy and
split, seed, device type, precision, memory format, torch thread count, deterministic kernels, the
device count of a multi-device run, and the code's numerics version) and by
nothing else (paths, loggers, probes), so a rerun of a sweep can skip exactly the runs whose results
already stand.

A run trains in `<run>.next` and becomes `<run>` only when its result.json is written (`commit`): a
finished run of another config is moved aside (`<run>.stale-<key>`) at that moment, not before, so a
crash of the new run leaves the old one where it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from reslab import io
from reslab.paths import ROOT
from reslab.run import distributed, numerics


def label(cfg: DictConfig) -> str:
    """Human name of the model in a run: the variant's name if the study gives one, else family-depth; on a budget
    ladder, its budget in steps; in a multirun that sweeps a value the name does not show, that value too
    (`label_suffix`, reslab.run.sweep_label)."""
    if cfg.get("variant") and cfg.variant.get("name"):
        name = f"{cfg.variant.name}-{cfg.model.depth}"
    else:
        name = f"{family(cfg)}-{cfg.model.depth}"
    if (cfg.get("ladder") or {}).get("budgets"):  # a budget ladder's rungs of one net and seed (reslab.run.ladder)
        name = f"{name}-{rung_name(cfg.profile)}"
    return f"{name}-{cfg.label_suffix}" if cfg.get("label_suffix") else name


def rung_name(profile: DictConfig) -> str:
    """A ladder rung by its budget, and its decay where that is not the usual linear one over the last 20%:
    steps800, steps800-sqrt, steps800-decay0.25."""
    decay = profile.get("decay") or {}
    shape, fraction = decay.get("shape", "linear"), float(decay.get("fraction", 0.2))
    return (
        f"steps{profile.max_steps}"
        + ("" if shape == "linear" else f"-{shape}")
        + ("" if fraction == 0.2 else f"-decay{fraction:g}")
    )


def family(cfg: DictConfig) -> str:
    if cfg.model.get("family"):
        return str(cfg.model.family)
    return "plain" if cfg.model.get("shortcut") == "none" else str(cfg.model.name)


def identity(cfg: DictConfig, data_checksum: str, device_type: str, precision: str, threads: int) -> dict:
    # The thread count changes how a CPU splits (and so sums) a convolution, and deterministic kernels change what a
    # GPU computes: both change the numbers. So does the code itself: its numerics version (reslab.run.numerics).
    return {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "profile": OmegaConf.to_container(cfg.profile, resolve=True),
        "data": {
            k: v
            for k, v in OmegaConf.to_container(cfg.data, resolve=True).items()
            if k not in ("source", "cache_dir", "download")
        }
        | {"checksum": data_checksum},
        "seed": int(cfg.seed),
        "device_type": device_type,
        "precision": precision,
        "channels_last": bool(cfg.trainer.channels_last),
        "threads": int(threads),
        "deterministic": bool(cfg.trainer.deterministic),
        "numerics": numerics.VERSION,
    } | distributed.identity(cfg)  # nothing for one device


def key_of(ident: dict) -> str:
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunKey:
    """A run's key: the hash of its identity. A stored result is this run only if it has this key, so a run of
    another numerics version (or one written before versions existed, which has none) is not finished for this
    code: it is trained again, and the old one kept aside."""

    key: str

    @classmethod
    def of(cls, cfg: DictConfig, data_checksum: str, device_type: str, precision: str, threads: int) -> "RunKey":
        return cls(key_of(identity(cfg, data_checksum, device_type, precision, threads)))

    def matches(self, stored: dict, run: Path) -> bool:
        return stored.get("key") == self.key


def run_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.runs) / cfg.study / cfg.profile.name / f"{label(cfg)}-s{cfg.seed}"


def next_dir(run: Path) -> Path:
    return run.with_name(f"{run.name}.next")


def finished(path: Path, run_key: RunKey, probes: dict | None = None) -> dict | None:
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
    if not run_key.matches(stored, path):
        return None
    return stored if probes is None or stored.get("probes") == probes else None


ATTEMPT = "attempt.json"  # in <run>.next: the key and probes of the config being trained there
CHECKPOINT = "checkpoint.pt"  # in <run>.next: where a killed attempt resumes (reslab.run.checkpoint)
REPRODUCED = "_reproduced.json"  # beside a study's runs: reslab-reproduce's check that this code computes them
FAILED = "failed.json"  # in <run>.next: why the last attempt failed, inside a multirun (reslab.run.guard)


def begin(run: Path, key: str, probes: dict | None = None) -> Path:
    """The work directory of `run`: `<run>.next` as a killed attempt of this same config and probes left it, if
    it left a checkpoint to resume from; else emptied. The finished run at `run`, if any, is not touched."""
    work = next_dir(run)
    attempt = {"key": key, "probes": probes}
    try:
        kept = io.read_json(work / ATTEMPT) == attempt and (work / CHECKPOINT).is_file()
    except (OSError, ValueError):
        kept = False
    if not kept:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        io.write_json(work / ATTEMPT, attempt)
    (work / FAILED).unlink(missing_ok=True)
    return work


def commit(run: Path, work: Path) -> Path | None:
    """Make the finished attempt in `work` (its result.json written) the run. A finished run of another config
    at `run` is moved aside, never deleted, and its new name returned; a half-written one is cleared."""
    for leftover in (CHECKPOINT, ATTEMPT):
        (work / leftover).unlink(missing_ok=True)
    aside = None
    if (run / "result.json").is_file():
        try:
            old = io.read_json(run / "result.json").get("key", "unknown")
        except (OSError, ValueError):
            old = "unreadable"
        aside = run.with_name(f"{run.name}.stale-{old[:8]}")
        n = 1
        while aside.exists():
            aside = run.with_name(f"{run.name}.stale-{old[:8]}-{n}")
            n += 1
        run.rename(aside)
    elif run.exists():
        shutil.rmtree(run)
    work.rename(run)
    return aside


def recover(run: Path, run_key: RunKey, probes: dict | None = None) -> dict | None:
    """A run killed between writing its result and its commit: commit it now and return its result."""
    work = next_dir(run)
    done = finished(work, run_key, probes)
    if done is not None:
        commit(run, work)
    return done


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        if sha.returncode:
            return "unknown"
        # Generated reports are tracked but are outputs, not code: they do not make the code dirty.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
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
        "cpu": cpu_name(),
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


def cpu_name() -> str:
    """The CPU's model and the vector instructions torch's CPU kernels use here (e.g. 'AMD EPYC, AVX2'). Another
    CPU may compute other float sums for the same code and config (the kernels' blocking follows the vector width),
    so every run records it and a reproduction says whether it ran on the same one."""
    import torch

    model = ""
    try:
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()}, {torch.backends.cpu.get_cpu_capability()}"


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
