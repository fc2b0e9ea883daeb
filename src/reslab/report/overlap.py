"""Runs a study shares with other studies: the same identity (key) is the same run, bit for bit on the same CPU.

A run's key hashes everything that changes its numbers and nothing else (not the study, not the label), so two
studies that train the same net on the same seed, data and profile hold the same run twice. Such runs are not
independent evidence: a study's confirmatory data must not be runs another study has already reported (README,
honesty rules). Every report says which of its runs it shares, from the keys, not from memory. A run trained again on
another CPU keeps its key but not its bytes (the kernels' float sums differ, docs/guarantees.md); the line says how many
shared runs hold other numbers there (their final training loss differs), so "the same run" is never read as "the same
bytes" when it is not."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def _train_loss(run: Path):
    try:
        return json.loads((Path(run) / "result.json").read_text()).get("train_loss")
    except (OSError, ValueError):
        return None


def other_keys(runs_root: Path, own: set[str], profile: str) -> dict[str, list[tuple[str, str]]]:
    """{key: [(other study, run name), ...]} over every finished run of the same profile in studies not in `own`."""
    out: dict[str, list[tuple[str, str]]] = {}
    for result in sorted(Path(runs_root).glob(f"*/{profile}/*/result.json")):
        run = result.parent
        other = run.parent.parent.name
        if other in own or ".stale-" in run.name or run.name.endswith(".next") or other.startswith("_"):
            continue
        try:
            key = json.loads(result.read_text()).get("key")
        except (OSError, ValueError):
            continue
        if key:
            out.setdefault(key, []).append((other, run.name))
    return out


def shared(results: pd.DataFrame, study: str, differ: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """{other study: [this study's run names whose key a run there has]}. A report that reads several studies (the
    budget pilot: one per candidate) counts them all as its own. `differ`, if given, is filled with the same mapping
    for the shared runs whose stored final training loss differs between the two studies (trained again elsewhere)."""
    if results.empty or "key" not in results:
        return {}
    root = Path(results.run_dir.iloc[0]).parents[2]
    own = {study} | {Path(d).parents[1].name for d in results.run_dir}
    keys = other_keys(root, own, str(results.profile.iloc[0]))
    found: dict[str, list[str]] = {}
    for key, run_dir in zip(results.key, results.run_dir):
        for other, name in keys.get(key, []):
            found.setdefault(other, []).append(Path(run_dir).name)
            if differ is not None and _train_loss(run_dir) != _train_loss(
                root / other / run_dir_profile(run_dir) / name
            ):
                differ.setdefault(other, []).append(Path(run_dir).name)
    return found


def run_dir_profile(run_dir) -> str:
    """The profile folder a run lies in (runs/<study>/<profile>/<run>)."""
    return Path(run_dir).parent.name


def line(results: pd.DataFrame, study: str) -> str:
    """One provenance line: the runs this study shares with others (the same key), or that it shares none."""
    differ: dict[str, list[str]] = {}
    found = shared(results, study, differ)
    root = Path(results.run_dir.iloc[0]).parents[2] if not results.empty else Path("runs")
    if not found:
        return (
            f"- **Shared runs:** none; no run of another study under `{root}/` has the key of a run of this one "
            "(every run here is this study's own data)"
        )
    parts = [
        f"{len(names)} with `{other}` ({', '.join(sorted(names))})"
        + (
            f", of which {len(differ[other])} hold other numbers there (trained again, e.g. on another CPU: the same "
            "recipe and key, not the same bytes)"
            if differ.get(other)
            else ""
        )
        for other, names in sorted(found.items())
    ]
    return (
        "- **Shared runs:** " + "; ".join(parts) + ": the same key, so the same runs (bit for bit on the same CPU); "
        "they are not independent of that study's results"
    )
