"""Reading a study's run outputs into DataFrames."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reslab.errors import ReslabError
from reslab.report import consistency
from reslab.run import numerics


def study_dir(runs: Path, study: str, profile: str) -> Path:
    return Path(runs) / study / profile


def run_dirs(runs: Path, study: str, profile: str) -> list[Path]:
    root = study_dir(runs, study, profile)
    # Not the superseded runs (.stale-*), not an attempt that has not committed yet (.next), not the sweep records.
    return sorted(
        p
        for p in root.glob("*")
        if (p / "result.json").is_file()
        and ".stale-" not in p.name
        and not p.name.endswith(".next")
        and not p.name.startswith("_")
    )


def load_results(
    runs: Path, study: str, profile: str, vary: tuple[str, ...] = (), by_label: bool = False
) -> pd.DataFrame:
    """Every finished run of runs/<study>/<profile>/, one recipe (`vary`: settings allowed to differ; `by_label`: nets
    told apart by their whole label; reslab.report.consistency.check)."""
    dirs = run_dirs(runs, study, profile)
    if not dirs:
        raise ReslabError(
            f"no finished runs under {str(study_dir(runs, study, profile))!r}; run `make sweep-{study} "
            f"PROFILE={profile}` first"
        )
    rows = []
    for d in dirs:
        r = json.loads((d / "result.json").read_text())
        r["run_dir"] = str(d)
        rows.append(r)
    df = pd.DataFrame(rows)
    df["numerics"] = [numerics.of(r) for r in rows]  # runs from before versions carry none: 'unversioned'
    consistency.check(df, str(study_dir(runs, study, profile)), vary, by_label)
    return df


def load_csvs(results: pd.DataFrame, name: str) -> pd.DataFrame:
    """Concatenate `name` (e.g. metrics.csv) over runs, tagged with each run's label/family/depth/seed."""
    frames = []
    for _, r in results.iterrows():
        f = Path(r["run_dir"]) / name
        if f.is_file():
            df = pd.read_csv(f)
            for col in ("label", "family", "depth", "seed", "status"):
                df[col] = r[col]
            frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
