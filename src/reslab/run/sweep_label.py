"""The swept values a multirun's labels carry, so that the jobs of one sweep do not share a run directory.

A run's directory is runs/<study>/<profile>/<label>-s<seed> (reslab.run.runinfo), and the label names only the net
(variant or family, and depth). A sweep over anything else (a profile, trainer or probe value, the data) would send
several jobs to one directory: the run lock skips all but one, and each rerun supersedes the one before. So in a
multirun the label also carries the value of every swept key that differs between jobs whose plain directories are
the same: `model.depth=8,14 profile.max_steps=2,4 seed=0` trains resnet-8-max_steps2-s0, resnet-8-max_steps4-s0,
resnet-14-max_steps2-s0 and resnet-14-max_steps4-s0. A sweep that varies only what the plain label shows (model,
variant, block, depth, seed: every study of conf/experiment/) keeps its plain labels, and so does a single run.

The keys are found once per sweep, in the launching process, by reslab.run.guard (which composes every job anyway);
the jobs read them from the environment, as they read the sweep's size, and name themselves from their own values
by the same `suffix`; the sweep's record keeps them for the reports (reslab.run.sweep, reslab.report.consistency).
A value is written readably, not hashed (a path by its file name, a list item by item): where that loses the
difference between two jobs, the guard refuses the sweep rather than let them share a directory.
"""

from __future__ import annotations

import json
import os
import re

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from reslab.run import runinfo

ENV = "RESLAB_LABEL_KEYS"  # the sweep's label keys (JSON list), from the launching process to its jobs
UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")  # what a directory name should not hold, in a value
LONGEST = 32  # characters of one value in a label; a longer one is cut (the guard refuses what that merges)


def swept_values(cfg: DictConfig, overrides: list[str], choices) -> dict:
    """Each overridden key of a job with the value it has in the job's config: a config group's choice
    (`variant=preact`: preact), else the composed value, so `seed=1` and `seed=01` are one value."""
    out = {}
    for o in overrides:
        key = o.lstrip("+~").partition("=")[0]
        if not key or key.startswith("hydra"):
            continue
        if key in choices:
            out[key] = choices[key]
        else:
            value = OmegaConf.select(cfg, key, default=None)
            out[key] = (
                OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
            )
    return out


def same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def label_keys(values: list[dict], places: list) -> list[str]:
    """The keys whose values differ between two jobs of one place (their plain run directory), in the order of
    the jobs' overrides."""
    groups: dict = {}
    for v, place in zip(values, places):
        groups.setdefault(place, []).append(v)
    order = dict.fromkeys(k for v in values for k in v)
    return [k for k in order if any(not same(g[0].get(k), v.get(k)) for g in groups.values() for v in g[1:])]


def short_names(keys: list[str]) -> dict[str, str]:
    """Each key by its shortest dotted tail that no other key ends with: profile.max_steps as max_steps, but
    profile.lr and profile.warmup.lr as profile.lr and warmup.lr."""
    parts = {k: k.replace("/", ".").split(".") for k in keys}
    out = {}
    for k, p in parts.items():
        for n in range(1, len(p) + 1):
            tail = p[-n:]
            if n == len(p) or all(q[-n:] != tail for other, q in parts.items() if other != k):
                out[k] = ".".join(tail)
                break
    return out


def render(value) -> str:
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, (list, tuple)):
        text = "_".join(render(v) for v in value)
    elif isinstance(value, dict):
        text = "_".join(f"{k}{render(v)}" for k, v in value.items())
    elif isinstance(value, str) and "/" in value:
        text = value.rstrip("/").rsplit("/", 1)[-1]  # a path: its file name
    else:
        text = str(value)
    return UNSAFE.sub("_", text).strip("_")[:LONGEST]


def suffix(values: dict, keys: list[str]) -> str:
    """What a job's label carries after the net's name: `max_steps6400`, `max_steps6400-lr0.01`, ..."""
    names = short_names(keys)
    return "-".join(f"{names[k]}{render(values.get(k))}" for k in keys)


def set_suffix(cfg: DictConfig, text: str) -> DictConfig:
    """The label suffix as a key of the run's config (read by reslab.run.runinfo.label, kept in its config.yaml)."""
    if text:
        with open_dict(cfg):
            cfg.label_suffix = text
    return cfg


def label_sweep(jobs: list[tuple[list[str], DictConfig]], keys: list[str] | None = None) -> list[str]:
    """Give every job's config (composed with its `hydra` node) the suffix its label carries in this sweep, and
    return the sweep's label keys: found from the jobs (keys=None), or as a sweep's record kept them."""
    values = [swept_values(cfg, overrides, cfg.hydra.runtime.choices) for overrides, cfg in jobs]
    if keys is None:
        keys = label_keys(values, [runinfo.run_dir(cfg) for _, cfg in jobs])
    if keys:
        for (_, cfg), v in zip(jobs, values):
            set_suffix(cfg, suffix(v, keys))
    return keys


def export(keys: list[str]) -> None:
    """Hand the sweep's label keys to its jobs: joblib's workers and Slurm's jobs inherit the launcher's environment."""
    os.environ[ENV] = json.dumps(keys)


def recorded_keys() -> list[str]:
    return json.loads(os.environ.get(ENV) or "[]")


def for_job(cfg: DictConfig) -> DictConfig:
    """A job of a multirun names itself: the sweep's label keys (from the launcher), its own values."""
    keys = recorded_keys()
    if not keys:
        return cfg
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    return set_suffix(cfg, suffix(swept_values(cfg, list(hc.overrides.task), hc.runtime.choices), keys))
