"""A multirun's jobs, and its manifest: the list of runs a sweep asked for.

- `job_overrides` expands a multirun into its jobs' override lists, as Hydra's basic sweeper launches them; the guard
  (reslab.run.guard) composes and checks each, and `SweepProgress` counts them so each run can print 'run i/N'.
- `record` writes the manifest (runs/<study>/<profile>/_sweeps/<start>-<pid>.json): the jobs' overrides, the keys
  whose values their labels carry (reslab.run.sweep_label) and the names of the run directories they train in. The
  guard writes it, once it has composed and named every job, so a refused sweep writes nothing.
- `expected_runs` is what a report reads to tell which of the runs asked for are missing: the manifests' run names.
  Records written before manifests listed their runs (before 2026-12-04) and studies swept before manifests existed
  are read through the study's configs, here on the training side: reports never compose a config.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SWEEPS = "_sweeps"


def sweep_jobs(params: dict, task_overrides: list[str]) -> list[list[str]]:
    """The override list of every job of a sweep, as Hydra's basic sweeper launches them: the sweeper params
    first, then the command line, a later override of a key replacing an earlier one."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [f"{k}={v}" for k, v in (params or {}).items()] + list(task_overrides)
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def job_overrides(config: DictConfig) -> list[list[str]]:
    """The overrides of every job of a multirun, as Hydra's basic sweeper will launch them."""
    return sweep_jobs(dict(config.hydra.sweeper.get("params") or {}), list(config.hydra.overrides.task))


def sweep_size(config: DictConfig) -> int:
    return len(job_overrides(config))


class SweepProgress(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            os.environ["RESLAB_SWEEP_TOTAL"] = str(sweep_size(config))
        except Exception:  # progress is a nicety; never fail a sweep over it
            os.environ.pop("RESLAB_SWEEP_TOTAL", None)


def record(config: DictConfig, runs: list[str] | None = None, label_keys: list[str] | None = None) -> Path | None:
    """Write the sweep's manifest where its runs go: its jobs, the keys whose values its labels carry, and its run
    directories' names (both found by the guard); a sweep over studies or profiles has no one place (none)."""
    from reslab import io

    jobs = job_overrides(config)
    for key in ("study", "profile"):
        if len({o for job in jobs for o in job if o.startswith(f"{key}=")}) > 1:
            return None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    path = Path(config.paths.runs) / config.study / config.profile.name / SWEEPS / f"{stamp}-{os.getpid()}.json"
    out = {"started": stamp, "jobs": jobs, "label_keys": list(label_keys or [])}
    if runs is not None:
        out["runs"] = sorted(set(runs))
    return io.write_json(path, out)


def manifests(study_dir: Path) -> list[dict]:
    return [json.loads(m.read_text()) for m in sorted((Path(study_dir) / SWEEPS).glob("*.json"))]


def expected_runs(study_dir: Path, study: str, profile: str) -> tuple[set[str] | None, str]:
    """Names of the run directories the study's sweeps asked for, and where that list comes from."""
    records = manifests(study_dir)
    if records:
        # Not the number of sweeps: a rerun adds a record, and a rerun's report must read the same.
        source = f"the sweeps recorded in `{SWEEPS}/`"
        names = set().union(*(r["runs"] for r in records if "runs" in r))
        legacy = [(r["jobs"], r.get("label_keys") or []) for r in records if "runs" not in r]
        return names | _compose_names(legacy), source
    sweeps, configs = _from_experiments(study, profile)
    if not sweeps:
        return None, "no recorded sweep and no experiment config for this study"
    return _compose_names(sweeps), f"the study's config ({configs})"


# Records from before manifests listed their runs: their names are found as the guard found them then.
#
# Both lookups below compose configs with Hydra (0.1-0.4 s each): the scan of the experiment configs composes every
# one of them to learn its study, and a report of a study without records asks for it once per report (the budget
# pilot's once per candidate). What they find depends only on the files under conf/ and on the question, so each
# answer is kept for this process, keyed by those files' sizes and modification times: an edited config is read again.


def _conf_signature() -> tuple:
    from reslab.paths import CONF_DIR

    stats = [(str(f), f.stat()) for f in sorted(Path(CONF_DIR).rglob("*.yaml"))]
    return (str(CONF_DIR), tuple((f, st.st_mtime_ns, st.st_size) for f, st in stats))


_NAMES: dict[tuple, frozenset[str]] = {}
_EXPERIMENTS: dict[tuple, list[tuple[str, str, dict]]] = {}


def _compose_names(sweeps: list[tuple[list[list[str]], list[str] | None]]) -> set[str]:
    if not sweeps:
        return set()
    key = (_conf_signature(), json.dumps(sweeps))
    if key not in _NAMES:
        _NAMES[key] = frozenset(_composed_names(sweeps))
    return set(_NAMES[key])


def _composed_names(sweeps: list[tuple[list[list[str]], list[str] | None]]) -> set[str]:
    from hydra import compose, initialize_config_dir

    from reslab.paths import CONF_DIR
    from reslab.run import runinfo, sweep_label

    names = set()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for jobs, keys in sweeps:
            jobs = [[o for o in job if not o.startswith("hydra")] for job in jobs]
            composed = [(job, compose("train", overrides=job, return_hydra_config=True)) for job in jobs]
            sweep_label.label_sweep(composed, keys)  # the labels the sweep's jobs gave themselves
            names |= {runinfo.run_dir(cfg).name for _, cfg in composed}
    return names


def _experiments() -> list[tuple[str, str, dict]]:
    """(name, study, sweeper params) of every experiment config, each composed as `experiment=<name>` composes it."""
    key = _conf_signature()
    if key not in _EXPERIMENTS:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf

        from reslab.paths import CONF_DIR

        found = []
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            for f in sorted((CONF_DIR / "experiment").glob("*.yaml")):
                cfg = compose("train", overrides=[f"experiment={f.stem}"], return_hydra_config=True)
                params = OmegaConf.to_container(cfg.hydra.sweeper.params or {}, resolve=False)
                found.append((f.stem, cfg.study, params))
        _EXPERIMENTS[key] = found
    return copy.deepcopy(_EXPERIMENTS[key])


def _from_experiments(study: str, profile: str) -> tuple[list[tuple[list[list[str]], None]], str]:
    sweeps, names = [], []
    for name, its_study, params in _experiments():
        if its_study != study:
            continue
        # Each experiment is a sweep of its own: its label keys are found as the guard finds them.
        sweeps.append((sweep_jobs(params, [f"experiment={name}", f"profile={profile}"]), None))
        names.append(f"experiment={name}")
    return sweeps, ", ".join(names)
