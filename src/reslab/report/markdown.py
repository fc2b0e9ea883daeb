"""Markdown pieces shared by the reports: the provenance header and tables."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd

from reslab.report import consistency, overlap
from reslab.run import numerics
from reslab.run.runinfo import REPRODUCED, git_commit


def provenance(results: pd.DataFrame, profile_cfg: dict | None, study: str, command: str | None = None) -> str:
    """The provenance bullets; `command` is the command that built the report (default `reslab-report <study>`)."""
    seeds = sorted(int(s) for s in results.seed.unique())
    lines = [
        f"- **Profile:** `{results.profile.iloc[0]}`"
        + (f" ({profile_summary(rung_budgets(profile_cfg, results), recorded_lr(results))})" if profile_cfg else ""),
        budget_line(results),
        f"- **Data copy:** {', '.join(sorted(results.data_copy.unique()))}; "
        f"checksum {', '.join(sorted(results.data_checksum.unique()))}",
        f"- **Training images:** {', '.join(str(v) for v in sorted(results.train_images.unique()))}; "
        f"evaluated on {', '.join(str(v) for v in sorted(results.eval_images.unique()))} images of the "
        f"{', '.join(sorted(results.eval_split.unique()))} split",
        f"- **Seeds:** {', '.join(map(str, seeds))} ({seeds_per_net(results)})",
        f"- **Device:** {', '.join(sorted(results.device.unique()))}; precision "
        f"{', '.join(sorted(results.precision.unique()))}"
        f"; {cpu_text(results)}",
        f"- **Code:** runs at commit {', '.join(sorted(results.git_commit.unique()))}; report built at {git_commit()} "
        f"on {dt.date.today().isoformat()} by `{command or f'reslab-report {study}'}` from "
        f"`runs/{study}/{results.profile.iloc[0]}/`",
        numerics_line(results),
        reproduced_line(results),
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
    return (
        f"- **Numerics:** version {', '.join(found)} ({now}; `reslab.run.numerics`: runs of another version are "
        f"retrained, never mixed)"
    )


def cpu_text(results: pd.DataFrame) -> str:
    """The CPUs the runs recorded (model and vector instructions: another CPU may compute other float sums), or
    that runs from before 2026-12-03 did not record it."""
    found = sorted({str(c) for c in results.get("cpu", pd.Series(dtype=object)).dropna()})
    missing = int(results.get("cpu", pd.Series([None] * len(results))).isna().sum())
    parts = [f"CPU {', '.join(found)}"] if found else []
    if missing:
        parts.append(
            f"{missing} run{'s' if missing > 1 else ''} without a recorded CPU (trained before runs recorded it)"
        )
    return "; ".join(parts)


def reproduced_line(results: pd.DataFrame) -> str:
    """Whether this code reproduces the study's runs: the record `reslab-reproduce` wrote beside them (one run
    retrained from its config and compared bit for bit), if it checked a run that is still in the study."""
    if results.empty or "run_dir" not in results:
        return "- **Reproduced by this code:** not checked"
    study_dir = Path(results.run_dir.iloc[0]).parent
    study = study_dir.parent.name
    record = study_dir / REPRODUCED
    rec = json.loads(record.read_text()) if record.is_file() else None
    if rec is None or rec.get("key") not in set(results.get("key", [])):
        return (
            f"- **Reproduced by this code:** not checked for these runs (`make reproduce STUDY={study}` retrains "
            "one run from its config and compares the bytes)"
        )
    verdict = (
        "identical bit for bit (" + ", ".join(rec["compared"]) + ")"
        if rec["identical"]
        else "**different** in " + ", ".join(rec["differences"])
    )
    if rec.get("not_compared"):
        verdict += f"; not compared, absent from the stored run: {', '.join(rec['not_compared'])}"
    return (
        f"- **Reproduced by this code:** `{rec['run']}` (trained at {rec['trained_at']}) retrained from its "
        f"config.yaml at commit {rec['reproduced_at']} on {rec['date']} (CPU {rec.get('reproduced_on', '?')}; "
        f"the run's: {rec.get('trained_on', 'not recorded')}) by `reslab-reproduce`: {verdict}"
    )


def seeds_per_net(results: pd.DataFrame, listed: int = 6) -> str:
    """How many seeds each net has, counted from the runs: '3 per net' when all have the same, else the most
    common count and the nets that differ, e.g. '3 per net; 5 for plain-20, identity-A-20; 4 for identity-A-56,
    preact-56' (nets named up to `listed` per count, counted beyond)."""
    key = "label" if "label" in results else None
    if key is None:
        return f"{results.seed.nunique()} in all"
    counts = results.groupby(key, sort=False).seed.nunique()
    by_count = {}
    for net, n in counts.items():
        by_count.setdefault(int(n), []).append(str(net))
    common = max(by_count, key=lambda n: (len(by_count[n]), n))
    parts = [f"{common} per net" + (f" for {len(by_count[common])} nets" if len(by_count) > 1 else "")]
    for n in sorted(by_count, reverse=True):
        if n == common:
            continue
        nets = by_count[n]
        names = ", ".join(nets[:listed]) + (f" and {len(nets) - listed} more" if len(nets) > listed else "")
        parts.append(f"{n} for {names}")
    return "; ".join(parts)


PAPER_IMAGES = 64_000 * 128  # He et al. 2016's CIFAR schedule: 64k iterations at batch 128


def budget_line(results: pd.DataFrame) -> str:
    """The training budget in iterations AND images seen, against the paper's (a budget in iterations alone reads
    four times larger than it is at batch 32)."""
    if not {"steps", "batch_size"} <= set(results):
        return "- **Budget:** not recorded by these runs"
    seen = sorted({(int(s), int(b)) for s, b in zip(results.steps, results.batch_size) if s == s and b == b})
    parts = [
        f"{s:,} iterations x batch {b} = {s * b:,} images seen ({100 * s * b / PAPER_IMAGES:.2g}% of the "
        f"paper's 64k x 128 = {PAPER_IMAGES:,})"
        for s, b in seen
    ]
    return "- **Budget:** " + "; ".join(parts)


def rung_budgets(profile_cfg: dict, results: pd.DataFrame) -> dict:
    """The profile as the runs trained it: a study of several budgets (a budget ladder) states their range, not the
    first run's max_steps."""
    steps = sorted({int(s) for s in results.steps_planned.dropna()}) if "steps_planned" in results else []
    if len(steps) < 2:
        return profile_cfg
    return {**profile_cfg, "max_steps": f"{steps[0]:,} to {steps[-1]:,}"}


def recorded_lr(results: pd.DataFrame):
    """The lr the runs trained with, as their result.json states it (the recipe the module trained with,
    reslab.training.recipe); None for runs from before it was recorded."""
    if "lr" not in results:
        return None
    lrs = results.lr.dropna().unique()
    return lrs[0] if len(lrs) == 1 else None


def profile_summary(p: dict, lr=None) -> str:
    """The profile in one phrase; the lr from the runs' results when given (the one place a report reads it), else
    from the config."""
    budget = f"{p['max_steps']} iterations" if p.get("max_steps") else f"{p['epochs']} epochs"
    subset = f"{p['train_subset']} training images" if p.get("train_subset") else "the full training set"
    if p.get("decay"):  # warmup-stable-decay (reslab.training.schedule)
        d = p["decay"]
        schedule = (
            f"constant, then a {d.get('shape', 'linear')} decay to ~0 over the last {d['fraction']:g} of training"
        )
    elif p.get("milestones"):
        schedule = f"x{p['gamma']} at {', '.join(str(m) for m in p['milestones'])} of training"
    else:
        schedule = "constant"
    return (
        f"{budget} on {subset}, batch {p['batch_size']}, SGD lr {p['lr'] if lr is None else lr} ({schedule}), "
        f"momentum {p['momentum']}, "
        f"wd {p['weight_decay']}"
    )


def relink(text: str, levels: int) -> str:
    """A report's relative links (`](../...)`) for a README `levels` folders deeper than reports/<name>/."""
    return re.sub(r"\]\((\.\./)", "](" + "../" * levels + r"\1", text)


def table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        out.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(out)
