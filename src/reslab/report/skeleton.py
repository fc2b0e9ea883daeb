"""What every study report shares, in one place: the header (title, CPU-study banner, provenance, plan
link), the per-run and per-contrast CSVs, and the paired verdicts of reslab.report.paired as Markdown
(Holm per family, the seeds the rule needs to decide an open contrast from reslab.report.power, and McNemar per
seed on the saved predictions as a secondary table that no verdict uses).

All three reports (depth, shortcut, block) build their header from it; the paired reports (shortcut, block)
also their verdicts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import markdown, paired, power, sweep_time
from reslab.report.stats import CHANCE

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


def header(
    title: str, results: pd.DataFrame, study: str, plan: str, banner: str = "", command: str | None = None
) -> list[str]:
    """Title, banner, provenance (profile, data, seeds, device, commits, runs) and the plan it follows."""
    return [
        f"# {title}",
        "",
        banner + markdown.provenance(results, profile_cfg(results), study, command),
        "",
        f"Plan, hypotheses and decision rule: {plan}.",
        "",
    ]


def sweep_lines(results: pd.DataFrame) -> list[str]:
    """The sweep's wall time, and where it went (reslab.report.sweep_time); none if the runs lack the files."""
    return sweep_time.lines(results)


# Per-run values and CSVs.


def values(df: pd.DataFrame, label: str, col: str) -> dict[int, float]:
    """{seed: value} of one net; a diverged run keeps its last good value, or chance if it had none."""
    d = df[df.label == label]
    return {
        int(s): (float(v) if v is not None and np.isfinite(v) else CHANCE) for s, v in zip(d.seed, d[col].astype(float))
    }


def write_csv(df: pd.DataFrame, path: Path, columns: Iterable[str] | None = None) -> Path:
    """A CSV of `df` (the listed columns that exist, in order); atomic."""
    if columns is not None:
        df = df[[c for c in columns if c in df.columns]]
    return io.save_with(Path(path), lambda f: df.to_csv(f, index=False))


def contrasts_frame(contrasts: list[paired.Paired]) -> pd.DataFrame:
    """Every statistic of every contrast, one row each (contrasts.csv); per-seed lists (McNemar) go to
    mcnemar.csv."""
    return pd.DataFrame(
        [
            {
                "family": c.family,
                "name": c.name,
                "metric": c.metric,
                "worse": c.worse,
                "better": c.better,
                "n": c.n,
                "mean": c.mean,
                "sd": c.sd,
                "ci_low": c.ci[0],
                "ci_high": c.ci[1],
                "p": c.p,
                "p_holm": c.p_adj,
                "p_equiv": c.p_equiv,
                "p_equiv_holm": c.p_equiv_adj,
                "verdict": c.verdict,
                **{k: v for k, v in c.extra.items() if not isinstance(v, (dict, list))},
            }
            for c in contrasts
        ]
    )


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
    """{"mcnemar": one exact McNemar test per seed both nets have}: the two nets of a seed on the same test images.
    Not pooled over seeds (a pooled test counts images of different seeds as independent draws of one population,
    and its p, e.g. 1e-124, says nothing about the variants over seeds); it tests these trained nets, so it is
    reported in a secondary table and no verdict uses it."""
    ca, cb = correct(df, worse), correct(df, better)
    rows = []
    for s in sorted(set(ca) & set(cb)):
        only_worse, only_better, p = paired.mcnemar(ca[s], cb[s])
        rows.append({"seed": s, "right_only_worse": only_worse, "right_only_better": only_better, "p_mcnemar": p})
    return {"mcnemar": rows} if rows else {}


def size(c: paired.Paired, m: int) -> None:
    """The seeds the rule (not the t-test alone) needs for 80% power at the family's strictest Holm level alpha/m,
    at the effects the plans state (reslab.report.power): a true DESIGN_EFFECT_PP difference called a difference,
    and a true zero difference called 'no practical difference'; with this contrast's sd. Only for an undecided
    contrast."""
    if c.verdict != "inconclusive" or not np.isfinite(c.sd):
        return
    c.extra["seeds_effect"] = power.seeds_needed(power.DESIGN_EFFECT_PP, c.sd, m)
    c.extra["seeds_equivalence"] = power.seeds_needed(power.EQUIVALENCE_EFFECT_PP, c.sd, m)


def decide(families: dict[str, list[paired.Paired]], df: pd.DataFrame | None = None) -> None:
    """The rule of reslab.report.paired (Holm within each family), McNemar per seed for test-error contrasts (when
    `df` has the runs; secondary), and for every undecided contrast the seeds the rule needs (`size`)."""
    for name, contrasts in families.items():
        paired.decide_family(contrasts, name)
        for c in contrasts:
            if df is not None and c.metric == "test_error":
                c.extra.update(mcnemar(df, c.worse, c.better))
            size(c, max(1, len(contrasts)))


def ci_text(c: paired.Paired) -> str:
    return f"[{c.ci[0]:+.2f}, {c.ci[1]:+.2f}]" if np.isfinite(c.ci[0]) else "n/a"


def p_text(v: float) -> str:
    return f"{v:.3g}" if v is not None and np.isfinite(v) else "n/a"


def _seeds(c: paired.Paired, key: str, effect: float) -> str:
    return power.needed_text(c.extra.get(key), effect)


def undecided_text(c: paired.Paired, unit: str = "net") -> str:
    """For an undecided contrast, the seeds per `unit` that would decide it: from the rule's simulated power at the
    plans' effects (reslab.report.power), not the t-test's at the observed effect."""
    if c.verdict != "inconclusive" or "seeds_effect" not in c.extra:
        return ""
    return (
        f"; seeds per {unit} the rule needs for {power.TARGET:.0%} power at this family's strictest Holm level: "
        f"{_seeds(c, 'seeds_effect', power.DESIGN_EFFECT_PP)} to call a true {power.DESIGN_EFFECT_PP:g} pp "
        f"difference, {_seeds(c, 'seeds_equivalence', power.EQUIVALENCE_EFFECT_PP)} to call a true "
        f"{power.EQUIVALENCE_EFFECT_PP:g} pp difference 'no practical difference' (simulated at this sd)"
    )


def seeds_cell(c: paired.Paired) -> str:
    """The 'seeds to decide' cell of a contrast table: seeds for a true DESIGN_EFFECT_PP / a true zero difference."""
    if c.verdict != "inconclusive":
        return ""
    if "seeds_effect" not in c.extra:
        return "n/a"
    short = lambda n: str(n) if n else f"> {power.CAP}"  # noqa: E731
    return f"{short(c.extra.get('seeds_effect'))} / {short(c.extra.get('seeds_equivalence'))}"


SEEDS_COLUMN = (
    f"seeds to decide (rule's {power.TARGET:.0%} power: true {power.DESIGN_EFFECT_PP:g} pp / true "
    f"{power.EQUIVALENCE_EFFECT_PP:g} pp)"
)


def verdict_line(c: paired.Paired, title: str, reading: dict | None = None) -> str:
    """One Markdown bullet: the contrast, its statistics and verdict; `reading` maps the paired verdict
    to what it means for a claim whose prediction is not 'worse' (e.g. 'as good')."""
    said = f" (for the claim: {reading[c.verdict]})" if reading and c.verdict in reading else ""
    return (
        f"- {title}: {c.worse} − {c.better}, {c.metric.replace('_', ' ')}: {c.mean:+.2f} pp over {c.n} paired "
        f"seeds, 95% CI {ci_text(c)}, paired t p = {p_text(c.p)}, Holm-adjusted p = {p_text(c.p_adj)}, "
        f"equivalence (TOST ±{paired.PRACTICAL_PP:g} pp) Holm-adjusted p = {p_text(c.p_equiv_adj)} → "
        f"**{c.verdict}**{said}{undecided_text(c)}."
    )


def direction(c: paired.Paired) -> str:
    """A paired verdict in words that need no sign convention."""
    return {"supported": f"{c.better} better", "contradicted": f"{c.worse} better"}.get(c.verdict, c.verdict)


def contrast_table(contrasts: list[paired.Paired]) -> pd.DataFrame:
    rows = []
    for c in contrasts:
        rows.append(
            {
                "contrast": f"{c.worse} − {c.better}",
                "metric": c.metric.replace("_", " "),
                "seeds": c.n,
                "mean diff (pp)": f"{c.mean:+.2f}",
                "95% CI": ci_text(c),
                "paired p": p_text(c.p),
                "Holm p": p_text(c.p_adj),
                "equivalence Holm p": p_text(c.p_equiv_adj),
                "verdict": direction(c),
                SEEDS_COLUMN: seeds_cell(c),
            }
        )
    return pd.DataFrame(rows)


# McNemar per seed: secondary, never in a verdict.

MCNEMAR_NOTE = (
    "McNemar per seed (secondary; no verdict uses it): for each seed, the test images only one of the two "
    "nets gets right, and an exact McNemar test of those two trained nets on these images. It says whether "
    "these particular nets differ, not whether the variants differ over seeds (the paired tests above "
    "answer that); the images of different seeds are not pooled."
)


def mcnemar_frame(contrasts: list[paired.Paired]) -> pd.DataFrame:
    """One row per contrast and seed (mcnemar.csv)."""
    return pd.DataFrame(
        [
            {"family": c.family, "name": c.name, "worse": c.worse, "better": c.better, **r}
            for c in contrasts
            for r in c.extra.get("mcnemar", [])
        ],
        columns=["family", "name", "worse", "better", "seed", "right_only_worse", "right_only_better", "p_mcnemar"],
    )


def mcnemar_table(contrasts: list[paired.Paired], name: Callable | None = None) -> pd.DataFrame:
    """One row per test-error contrast: per seed, images right only with the worse / only with the better net, and
    the exact McNemar p of that seed's two nets."""
    rows = []
    for c in contrasts:
        per_seed = c.extra.get("mcnemar")
        if not per_seed:
            continue
        rows.append(
            {
                "contrast": name(c) if name else f"{c.worse} − {c.better}",
                "seeds": len(per_seed),
                "per seed: right only with worse / only with better, exact p": "; ".join(
                    f"seed {r['seed']}: {r['right_only_worse']} / {r['right_only_better']}, "
                    f"p = {p_text(r['p_mcnemar'])}"
                    for r in per_seed
                ),
            }
        )
    return pd.DataFrame(rows)


def mcnemar_lines(contrasts: list[paired.Paired], name: Callable | None = None) -> list[str]:
    """The secondary McNemar section's body: the note and the table (nothing when no run saved predictions)."""
    t = mcnemar_table(contrasts, name)
    return [MCNEMAR_NOTE, "", markdown.table(t)] if len(t) else []


def design_line(families: dict[str, list[paired.Paired]]) -> str:
    """Seeds a next design needs, per family: the pooled sd of the per-seed differences and the seeds the rule
    needs for 80% power at the family's strictest Holm level, at the plans' effects (a true DESIGN_EFFECT_PP
    difference; a true zero difference called 'no practical difference'); beside it what a true difference at
    the threshold itself allows, and the largest single sd's numbers."""
    parts = []
    e1, e0 = power.DESIGN_EFFECT_PP, power.EQUIVALENCE_EFFECT_PP
    for name, fam in families.items():
        ok = [c for c in fam if c.n > 1 and np.isfinite(c.sd) and c.sd > 0]
        if not ok:
            continue
        dof = sum(c.n - 1 for c in ok)
        pooled = math.sqrt(sum((c.n - 1) * c.sd**2 for c in ok) / dof)
        m = len(fam)
        n1, n0 = power.seeds_needed(e1, pooled, m), power.seeds_needed(e0, pooled, m)
        at = paired.PRACTICAL_PP
        worst = max(ok, key=lambda c: c.sd)
        w1, w0 = power.seeds_needed(e1, worst.sd, m), power.seeds_needed(e0, worst.sd, m)
        short = lambda n: str(n) if n else f"more than {power.CAP}"  # noqa: E731
        parts.append(
            f"{name} family ({m} contrasts): pooled sd of the per-seed differences {pooled:.2f} pp ({dof} df); "
            f"the rule at the strictest Holm level {paired.ALPHA / m:.4g} has {power.TARGET:.0%} power with "
            f"{short(n1)} seeds "
            f"for a true {e1:g} pp difference and {short(n0)} seeds to call a true {e0:g} pp difference 'no "
            f"practical difference' (largest single sd {worst.sd:.2f} pp, {worst.name}: {short(w1)} / "
            f"{short(w0)} seeds); for a true difference equal to the {at:g} pp threshold no number of seeds "
            f"suffices: the rule's power stays at or below 0.5, as the observed mean falls below the threshold "
            f"half the time"
        )
    return (
        (
            "- **Design numbers** (for sizing the next run; experiments/*.md, amendment of 2026-12-03): "
            + "; ".join(parts)
            + "."
        )
        if parts
        else ""
    )


def rule_text(primary: str) -> str:
    """The decision rule every paired report states above its verdicts."""
    return (
        f"Paired over seeds (a seed fixes the data order and augmentation for every net); two-sided paired "
        f"t-tests, Holm within each family at alpha = {paired.ALPHA}; a difference is called only if its "
        f"Holm-adjusted p is below alpha and it is at least {paired.PRACTICAL_PP:g} pp; 'no practical difference' "
        f"only if the equivalence test (TOST against ±{paired.PRACTICAL_PP:g} pp) passes at the same Holm-adjusted "
        f"level over the family (for a family of one, the whole 95% CI inside ±{paired.PRACTICAL_PP:g} pp); "
        f"amended 2026-12-03, when 'no practical difference' read the unadjusted CI. {primary}"
    )
