"""What a report may put side by side, and whether its study is complete.

A comparison is fair only between runs of one recipe: the same profile (every number of it), the same data
copy, split and augmentation, the same precision and device type. Runs of a study directory that differ in
any of these are refused with one line naming the setting and the runs on each side, rather than averaged
under the first run's profile (a user once saw lr 0.01 and lr 0.1 runs tabled together as "lr 0.1"). Two runs of
one net and seed (a multirun over a value outside the recipe and the net's name, e.g. a model or trainer option, puts
each in its own directory: reslab.run.sweep_label) are refused too: a report would count them as two seeds.

Completeness compares the runs found with the runs expected: those of the sweeps started for this study and
profile (runs/<study>/<profile>/_sweeps/*.json, written by reslab.run.sweep when a multirun starts), or, for
studies swept before those records existed, the study's experiment configs (conf/experiment/*.yaml whose
`study` is this one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from reslab.errors import ReslabError
from reslab.flat import flatten
from reslab.run import numerics, sweep

DATA_PATH_KEYS = ("source", "cache_dir", "download")  # where the data are, not what they are (the checksum is)


def _config(run_dir: Path) -> dict:
    f = Path(run_dir) / "config.yaml"
    return (yaml.safe_load(f.read_text()) or {}) if f.is_file() else {}


def recipe(run_dir: Path, result: dict) -> dict:
    """The settings of one run that must be equal across a comparison, flattened to dotted keys."""
    cfg = _config(run_dir)
    data = {k: v for k, v in (cfg.get("data") or {}).items() if k not in DATA_PATH_KEYS}
    return {
        **flatten(cfg.get("profile") or {}, "profile", keep_empty=False),
        **flatten(data, "data", keep_empty=False),
        "data checksum": result.get("data_checksum"),
        "precision": result.get("precision"),
        "device type": str(result.get("device", "")).split(" ")[0],
        # Runs of two numerics versions differ by the code that trained them, not only by what they compare.
        "numerics version": numerics.of(result),
    }


def _names(runs: list[str], most: int = 4) -> str:
    return ", ".join(runs[:most]) + (f" and {len(runs) - most} more" if len(runs) > most else "")


def check(results: pd.DataFrame, where: str, vary: tuple[str, ...] = (), by_label: bool = False) -> None:
    """Refuse (one line) a set of runs that mixes recipes; name the first differing setting's groups. `vary`: the
    settings (dotted prefixes) a study compares on purpose, e.g. a budget study's profile.max_steps. `by_label`: the
    study's report tells nets apart by their whole label, swept values included (the head study sweeps the head and
    the training arm on purpose), so two runs of one seed are two nets when their labels differ."""
    recipes = [
        {k: v for k, v in recipe(Path(d), r).items() if not k.startswith(vary)}
        for d, r in zip(results.run_dir, results.to_dict("records"))
    ]
    keys = sorted(set().union(*recipes))
    for key in keys:
        groups: dict[str, list[str]] = {}
        for rec, d in zip(recipes, results.run_dir):
            groups.setdefault(json.dumps(rec.get(key, "<missing>"), sort_keys=True), []).append(Path(d).name)
        if len(groups) > 1:
            sides = "; ".join(f"{key} = {v} in {len(r)} run(s) ({_names(r)})" for v, r in groups.items())
            others = [
                k for k in keys if k != key and len({json.dumps(rec.get(k), sort_keys=True) for rec in recipes}) > 1
            ]
            more = f" (also differing: {', '.join(others)})" if others else ""
            raise ReslabError(
                f"{where} mixes training recipes, which one comparison must not: {sides}{more}; "
                "move the odd runs away or rerun them with the study's config"
            )
    check_one_run_per_net(results, where, by_label)


def net_of(run_dir: Path, result: dict) -> str:
    """The net a run trained, as a report names it: its label without the swept values a multirun added to it
    (the config's label_suffix, reslab.run.sweep_label)."""
    label, suffix = str(result.get("label")), _config(run_dir).get("label_suffix")
    return label.removesuffix(f"-{suffix}") if suffix else label


def check_one_run_per_net(results: pd.DataFrame, where: str, by_label: bool = False) -> None:
    """Refuse two runs of one net and seed (a sweep over a value the net's name does not show, e.g. a model or
    trainer option, put both in this study): a report would take them for two seeds of one net."""
    runs: dict[tuple, list[str]] = {}
    for d, r in zip(results.run_dir, results.to_dict("records")):
        net = str(r.get("label")) if by_label else net_of(Path(d), r)
        runs.setdefault((net, r.get("seed")), []).append(Path(d).name)
    for (net, seed), names in runs.items():
        if len(names) > 1:
            raise ReslabError(
                f"{where} holds {len(names)} runs of {net} seed {seed} ({_names(names)}), which "
                "differ in a swept value their labels carry; a comparison takes one run per net and "
                "seed: move all but one away, or sweep that value into separate studies (study=...)"
            )


# Completeness.


def expected(study_dir: Path, study: str, profile: str) -> tuple[set[str] | None, str]:
    """Names of the run directories the study's sweeps asked for (their manifests), and where that list comes from."""
    return sweep.expected_runs(study_dir, study, profile)


def completeness(results: pd.DataFrame) -> dict:
    """Expected vs found, finished (ok / diverged), failed, missing, and superseded runs kept aside."""
    study_dir = Path(results.run_dir.iloc[0]).parent
    study, profile = str(results.study.iloc[0]), str(results.profile.iloc[0])
    found = {Path(d).name: s for d, s in zip(results.run_dir, results.status)}
    try:
        exp, source = expected(study_dir, study, profile)
    except Exception as err:  # an expected list is a check, never a reason to lose the report
        exp, source = None, f"the expected runs could not be listed ({type(err).__name__}: {err})"
    # A job that failed inside a multirun leaves <run>.next/failed.json (reslab.run.guard); a killed one, <run>.next
    # alone.
    failed = sorted(
        p.name.removesuffix(".next")
        for p in study_dir.iterdir()
        if p.is_dir() and (p / "failed.json").is_file() and p.name.removesuffix(".next") not in found
    )
    stale = sorted(p.name for p in study_dir.iterdir() if p.is_dir() and ".stale-" in p.name)
    out = {
        "source": source,
        "found": len(found),
        "ok": sum(s == "ok" for s in found.values()),
        "diverged": sum(s == "diverged" for s in found.values()),
        "failed": failed,
        "superseded": stale,
    }
    if exp is not None:
        out |= {
            "expected": len(exp),
            "missing": sorted(exp - set(found) - set(failed)),
            "unexpected": sorted(set(found) - exp),
        }
    return out


def completeness_line(results: pd.DataFrame) -> str:
    c = completeness(results)
    parts = [f"{c['found']} finished ({c['ok']} ok, {c['diverged']} diverged)"]
    if "expected" in c:
        head = f"expected {c['expected']} (from {c['source']}); "
    else:
        head = f"expected: not known ({c['source']}); "
    parts.append(f"{len(c['failed'])} failed" + (f" ({_names(c['failed'])})" if c["failed"] else ""))
    if "missing" in c:
        parts.append(f"{len(c['missing'])} missing" + (f" ({_names(c['missing'])})" if c["missing"] else ""))
        if c["unexpected"]:
            parts.append(f"{len(c['unexpected'])} not in those sweeps ({_names(c['unexpected'])})")
    if c["superseded"]:
        parts.append(f"{len(c['superseded'])} superseded run(s) kept aside, not used ({_names(c['superseded'])})")
    complete = "expected" in c and not c["missing"] and not c["failed"]
    return f"- **Completeness:** {head}{'; '.join(parts)}" + (" — complete." if complete else ".")
