"""What every study report shares, in one place: the header (title, CPU-study banner, provenance, plan
link), the per-run and per-contrast CSVs, and the paired verdicts of reslab.report.paired as Markdown
(Holm per family, McNemar on the saved predictions, the seeds that would decide an open contrast).

All three reports (depth, shortcut, block) build their header from it; the paired reports (shortcut, block)
also their verdicts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import markdown, paired, sweep_time

CHANCE = 90.0  # a diverged run with no finite metric counts as chance-level error (ten classes)


# Header.

def profile_cfg(results: pd.DataFrame) -> dict | None:
    """The profile section of the first run's resolved config (every run of a study shares it)."""
    import yaml

    f = Path(results.run_dir.iloc[0]) / "config.yaml"
    return yaml.safe_load(f.read_text()).get("profile") if f.is_file() else None


def cpu_banner(profile: str, what: str) -> str:
    """The quote block that marks a study sized for a CPU; empty for the paper profile."""
    if profile == "paper":
        return ""
    return f"> **CPU-sized study (`{profile}` profile), not a paper reproduction.** {what}\n\n"


def header(title: str, results: pd.DataFrame, study: str, plan: str, banner: str = "") -> list[str]:
    """Title, banner, provenance (profile, data, seeds, device, commits, runs) and the plan it follows."""
    return [f"# {title}", "", banner + markdown.provenance(results, profile_cfg(results), study), "",
            f"Plan, hypotheses and decision rule: {plan}.", ""]


def sweep_lines(results: pd.DataFrame) -> list[str]:
    """The sweep's wall time, and where it went (reslab.report.sweep_time); none if the runs lack the files."""
    return sweep_time.lines(results)


# Per-run values and CSVs.

def values(df: pd.DataFrame, label: str, col: str) -> dict[int, float]:
    """{seed: value} of one net; a diverged run keeps its last good value, or chance if it had none."""
    d = df[df.label == label]
    return {int(s): (float(v) if v is not None and np.isfinite(v) else CHANCE)
            for s, v in zip(d.seed, d[col].astype(float))}


def write_csv(df: pd.DataFrame, path: Path, columns: Iterable[str] | None = None) -> Path:
    """A CSV of `df` (the listed columns that exist, in order); atomic."""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    return io.save_with(Path(path), lambda f: df.to_csv(f, index=False))


def contrasts_frame(contrasts: list[paired.Paired]) -> pd.DataFrame:
    """Every statistic of every contrast, one row each (contrasts.csv)."""
    return pd.DataFrame([{"family": c.family, "name": c.name, "metric": c.metric, "worse": c.worse, "better": c.better,
                          "n": c.n, "mean": c.mean, "sd": c.sd, "ci_low": c.ci[0], "ci_high": c.ci[1], "p": c.p,
                          "p_holm": c.p_adj, "verdict": c.verdict,
                          **{k: v for k, v in c.extra.items() if not isinstance(v, dict)}} for c in contrasts])


# Paired decisions.

def correct(df: pd.DataFrame, label: str) -> dict[int, np.ndarray]:
    """{seed: per-test-image correctness} from the runs' predictions.npz."""
    out = {}
    for _, r in df[df.label == label].iterrows():
        f = Path(r.run_dir) / "predictions.npz"
        if f.is_file():
            z = np.load(f)
            out[int(r.seed)] = z["pred"] == z["label"]
    return out


def mcnemar(df: pd.DataFrame, worse: str, better: str) -> dict:
    """Exact McNemar over the test images, discordant pairs summed over the seeds both nets have."""
    ca, cb = correct(df, worse), correct(df, better)
    seeds = sorted(set(ca) & set(cb))
    if not seeds:
        return {}
    only_worse, only_better, p = paired.mcnemar(np.concatenate([ca[s] for s in seeds]),
                                                np.concatenate([cb[s] for s in seeds]))
    return {"right_only_worse": only_worse, "right_only_better": only_better, "p_mcnemar": p,
            "mcnemar_seeds": len(seeds)}


def decide(families: dict[str, list[paired.Paired]], df: pd.DataFrame | None = None) -> None:
    """Holm within each family, the rule of reslab.report.paired, McNemar for test-error contrasts (when
    `df` has the runs), and for every contrast the seeds that would decide it: 80% power at its family's
    strictest Holm level, for the observed effect if it is practical, else for the practical threshold."""
    for name, contrasts in families.items():
        paired.decide_family(contrasts, name)
        for c in contrasts:
            if df is not None and c.metric == "test_error":
                c.extra.update(mcnemar(df, c.worse, c.better))
            effect = c.mean if np.isfinite(c.mean) and abs(c.mean) >= paired.PRACTICAL_PP else paired.PRACTICAL_PP
            level = paired.ALPHA / max(1, len(contrasts))
            c.extra["seeds_needed"] = paired.seeds_needed(effect, c.sd, level) if np.isfinite(c.sd) else None


def ci_text(c: paired.Paired) -> str:
    return f"[{c.ci[0]:+.2f}, {c.ci[1]:+.2f}]" if np.isfinite(c.ci[0]) else "n/a"


def p_text(v: float) -> str:
    return f"{v:.3g}" if v is not None and np.isfinite(v) else "n/a"


def undecided_text(c: paired.Paired) -> str:
    if c.verdict != "inconclusive":
        return ""
    n = c.extra.get("seeds_needed")
    return (f"; to decide it, about {n} seeds per net (80% power at this family's strictest Holm level)"
            if n else "; no seed count up to 200 would decide it at the observed spread")


def mcnemar_text(c: paired.Paired) -> str:
    m = c.extra
    if m.get("p_mcnemar") is None:
        return ""
    return (f"; McNemar over {m['mcnemar_seeds']} seed(s) of test images: {m['right_only_better']} right only with "
            f"{c.better}, {m['right_only_worse']} only with {c.worse}, p = {p_text(m['p_mcnemar'])}")


def verdict_line(c: paired.Paired, title: str, reading: dict | None = None) -> str:
    """One Markdown bullet: the contrast, its statistics and verdict; `reading` maps the paired verdict
    to what it means for a claim whose prediction is not 'worse' (e.g. 'as good')."""
    said = f" (for the claim: {reading[c.verdict]})" if reading and c.verdict in reading else ""
    return (f"- {title}: {c.worse} − {c.better}, {c.metric.replace('_', ' ')}: {c.mean:+.2f} pp over {c.n} paired "
            f"seeds, 95% CI {ci_text(c)}, paired t p = {p_text(c.p)}, Holm-adjusted p = {p_text(c.p_adj)} → "
            f"**{c.verdict}**{said}{mcnemar_text(c)}{undecided_text(c)}.")


def direction(c: paired.Paired) -> str:
    """A paired verdict in words that need no sign convention."""
    return {"supported": f"{c.better} better", "contradicted": f"{c.worse} better"}.get(c.verdict, c.verdict)


def contrast_table(contrasts: list[paired.Paired]) -> pd.DataFrame:
    rows = []
    for c in contrasts:
        m = c.extra
        rows.append({"contrast": f"{c.worse} − {c.better}", "metric": c.metric.replace("_", " "), "seeds": c.n,
                     "mean diff (pp)": f"{c.mean:+.2f}", "95% CI": ci_text(c), "paired p": p_text(c.p),
                     "Holm p": p_text(c.p_adj), "verdict": direction(c),
                     "McNemar (only worse right / only better right, p)":
                         f"{m['right_only_worse']} / {m['right_only_better']}, {p_text(m['p_mcnemar'])}"
                         if m.get("p_mcnemar") is not None else "-",
                     "seeds to decide": str(m.get("seeds_needed") or "> 200") if c.verdict == "inconclusive" else ""})
    return pd.DataFrame(rows)


def design_line(families: dict[str, list[paired.Paired]]) -> str:
    """Seeds a next design needs: per family the pooled sd of the per-seed differences and the seeds for
    80% power at the practical threshold and the family's strictest Holm level (what a pilot sizes)."""
    parts = []
    for name, fam in families.items():
        ok = [c for c in fam if c.n > 1 and np.isfinite(c.sd)]
        if not ok:
            continue
        dof = sum(c.n - 1 for c in ok)
        pooled = math.sqrt(sum((c.n - 1) * c.sd ** 2 for c in ok) / dof)
        level = paired.ALPHA / len(fam)
        n = paired.seeds_needed(paired.PRACTICAL_PP, pooled, level)
        worst = max(ok, key=lambda c: c.sd)
        n_worst = paired.seeds_needed(paired.PRACTICAL_PP, worst.sd, level)
        parts.append(f"{name} family ({len(fam)} contrasts): pooled sd of the per-seed differences {pooled:.2f} pp "
                     f"({dof} df); {n or '> 200'} seeds give 80% power for a {paired.PRACTICAL_PP:g} pp effect at the "
                     f"strictest Holm level {level:.4g} (largest single sd {worst.sd:.2f} pp, {worst.name}: "
                     f"{n_worst or '> 200'} seeds)")
    return ("- **Design numbers** (for sizing the next run): " + "; ".join(parts) + ".") if parts else ""


def rule_text(primary: str) -> str:
    """The decision rule every paired report states above its verdicts."""
    return (f"Paired over seeds (a seed fixes the data order and augmentation for every net); two-sided paired "
            f"t-tests, Holm within each family at alpha = {paired.ALPHA}; a difference is called only if it is at "
            f"least {paired.PRACTICAL_PP:g} pp, and 'no practical difference' only if the whole 95% CI lies within "
            f"±{paired.PRACTICAL_PP:g} pp. {primary}")
