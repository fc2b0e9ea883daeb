"""Markdown pieces shared by the reports: the provenance header and tables."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from reslab import numerics
from reslab.report import consistency, overlap
from reslab.runinfo import git_commit


def provenance(results: pd.DataFrame, profile_cfg: dict | None, study: str) -> str:
    seeds = sorted(int(s) for s in results.seed.unique())
    lines = [
        f"- **Profile:** `{results.profile.iloc[0]}`" + (f" ({profile_summary(profile_cfg)})" if profile_cfg else ""),
        f"- **Data copy:** {', '.join(sorted(results.data_copy.unique()))}; "
        f"checksum {', '.join(sorted(results.data_checksum.unique()))}",
        f"- **Training images:** {', '.join(str(v) for v in sorted(results.train_images.unique()))}; "
        f"evaluated on {', '.join(str(v) for v in sorted(results.eval_images.unique()))} images of the "
        f"{', '.join(sorted(results.eval_split.unique()))} split",
        f"- **Seeds:** {', '.join(map(str, seeds))} ({len(seeds)} per configuration)",
        f"- **Device:** {', '.join(sorted(results.device.unique()))}; precision {', '.join(sorted(results.precision.unique()))}",
        f"- **Code:** runs at commit {', '.join(sorted(results.git_commit.unique()))}; report built at {git_commit()} "
        f"on {dt.date.today().isoformat()} by `reslab-report {study}` from `runs/{study}/{results.profile.iloc[0]}/`",
        numerics_line(results),
        f"- **Runs:** {len(results)} ({(results.status == 'ok').sum()} ok, {(results.status != 'ok').sum()} diverged); "
        f"training wall time {results.wall_seconds.sum() / 60:.1f} min in all (sum over runs, without process "
        f"start-up and evaluation)",
        consistency.completeness_line(results),
        overlap.line(results, study),
    ]
    return "\n".join(lines)


def numerics_line(results: pd.DataFrame) -> str:
    """The numerics version of the runs (one per study: reslab.report.consistency refuses a mix), and main's."""
    found = sorted({str(numerics.of(r)) for r in results.to_dict("records")})
    now = "this code's" if found == [str(numerics.VERSION)] else f"this code computes version {numerics.VERSION}"
    return (f"- **Numerics:** version {', '.join(found)} ({now}; `reslab.numerics`: runs of another version are "
            f"retrained, never mixed)")


def profile_summary(p: dict) -> str:
    budget = f"{p['max_steps']} iterations" if p.get("max_steps") else f"{p['epochs']} epochs"
    subset = f"{p['train_subset']} training images" if p.get("train_subset") else "the full training set"
    return (f"{budget} on {subset}, batch {p['batch_size']}, SGD lr {p['lr']} (x{p['gamma']} at "
            f"{', '.join(str(m) for m in p['milestones'])} of training), momentum {p['momentum']}, wd {p['weight_decay']}")


def table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        out.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(out)
