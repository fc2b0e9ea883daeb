"""Whole sweeps: where the wall time of every finished study sweep went (reslab.report.sweep_time), read from the runs
under runs/ on this machine and from the runs the studies archived in experiments/archive/ (their files' times kept
by tar), so that a fresh clone's bench still reports the sweeps that made the committed reports."""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import pandas as pd

from reslab import io
from reslab.paths import ROOT


def archives(folder: str | None) -> list[Path]:
    """The archived runs to read: every .tar.gz in `folder` (relative to the repository), none when it is empty."""
    if not folder:
        return []
    path = Path(folder) if Path(folder).is_absolute() else ROOT / folder
    return sorted(path.glob("*.tar.gz"))


def finished(runs: Path, study: str, profile: str) -> pd.DataFrame:
    """The result.json of every finished run of a study directory. No recipe check, unlike a report's loader: a
    sweep's time is what it is whatever its runs compare (the head study sweeps two training subsets on purpose)."""
    from reslab.report.results import run_dirs

    rows = [{**io.read_json(d / "result.json"), "run_dir": str(d)} for d in run_dirs(runs, study, profile)]
    return pd.DataFrame(rows)


def study_rows(runs: Path, source: str) -> list[dict]:
    """One row per sweep of every study/profile directory under `runs` (a study's arms on other days are others)."""
    from reslab.report import sweep_time

    rows = []
    for prof in sorted(p for p in runs.glob("*/*") if p.is_dir() and not p.parent.name.startswith("_")):
        parts = sweep_time.split(finished(runs, prof.parent.name, prof.name))
        for i, res in enumerate(parts, 1):
            t = sweep_time.measure(res)
            if t is None:
                continue
            # Runs from before trainer.eval_batch_size=auto do not record it: they evaluated at the fixed 500.
            batches = res["eval_batch_size"] if "eval_batch_size" in res else [None] * len(res)
            eval_batch = ", ".join(str(b) for b in sorted({500 if b is None or b != b else int(b) for b in batches}))
            rows.append(
                {
                    "study": prof.parent.name + (f" ({i} of {len(parts)})" if len(parts) > 1 else ""),
                    "profile": prof.name,
                    "source": source,
                    "runs": t.runs,
                    "lanes": t.lanes,
                    "span": t.span,
                    "training": t.training,
                    "evaluation": t.evaluation,
                    "other": t.other,
                    "outside": t.outside,
                    "summed_ratio": t.summed_ratio,
                    "per_lane_ratio": t.per_lane_ratio,
                    "eval_batch": eval_batch,
                    # Whether its runs computed the Fig. 7 responses (the largest work after training).
                    "responses": all((Path(d) / "responses.csv").is_file() for d in res["run_dir"]),
                }
            )
    return rows


def rows(runs: Path, archived: list[Path]) -> list[dict]:
    """The sweeps under `runs` and in each archive; a sweep found in both (same study, runs and span) once."""
    out = study_rows(runs, "runs/") if runs.is_dir() else []
    for archive in archived:
        with tempfile.TemporaryDirectory(prefix="reslab-sweeps-") as tmp:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")  # keeps each file's modification time: the runs' clocks
            out += study_rows(Path(tmp), archive.name)
    seen, unique = set(), []
    for r in out:
        key = (r["study"], r["profile"], r["runs"], round(r["span"]))
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique
