"""reports/archive/budget-pilot/: the budget study's pilot (experiments/budget.md), every candidate side by side and the
plan's three decisions computed from its runs: (1) the schedule (lr, warm-up, decay shape), (2) whether initial loss
above chance or loss spikes remain, (3) the measured time per step of each net, which sizes the confirmatory arms,
and the seeds the rule-level power asks for.

Each candidate is a study of its own (runs/budget-pilot-<candidate>/budget/, `make pilot-budget`); this report reads
them all. Pilot data never enter the confirmatory study: the pilot evaluates on the 5k held out of the training set
(data.split=val) with seed 150, the confirmatory runs on the test set with seeds 400 and up.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import budget, consistency, markdown, power, skeleton
from reslab.report.depth import BLOWUP_LOSS, blow_up
from reslab.report.results import load_csvs, load_results, run_dirs

PREFIX = "budget-pilot-"
DECIDE_STEPS = 3200  # the plan: the schedule is chosen on the held-out error at the pilot's top rung
GUARD_PP = 1.0  # ... among options where ResNet-20 is within 1 pp of its best option
CHANCE_LOSS = math.log(10)
# The confirmatory ladder the timing sizes (experiments/budget.md): its rungs, each rung but the top trains only its
# decay (the last DECAY of it) from the trunk's checkpoint.
LADDER = (800, 1600, 3200, 6400)
DECAY = 0.2
MARGIN = 1.25  # the plan's margin on the pilot's measured time (this machine's speed varies between days)
SD_SOURCE = Path("reports/depth/runs.csv")  # per-run errors of the depth study (written from its run files)


# Compute.


def candidates(runs: Path, profile: str) -> list[str]:
    return sorted(p.name for p in Path(runs).glob(f"{PREFIX}*") if run_dirs(runs, p.name, profile))


def load(runs: Path, profile: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(results of every candidate, one row per run, the trunks' early-loss readings)."""
    results, rows, early = [], [], []
    for study in candidates(runs, profile):
        res = load_results(runs, study, profile, vary=budget.VARY)
        # The recipe as the runs' result.json states it (reslab.training.recipe: what the module trained with).
        warmed = res[res.warmup_steps.fillna(0) > 0] if "warmup_steps" in res else res.iloc[:0]
        w = warmed.iloc[0] if len(warmed) else None
        r = budget.run_rows(res)
        r.insert(0, "candidate", study[len(PREFIX) :])
        r["lr"] = res.lr.iloc[0]
        r["warmup"] = (
            f"{w.warmup_shape} from {w.warmup_lr:g} over {int(w.warmup_steps)} steps" if w is not None else "none"
        )
        r["span_seconds"] = [_span(d) for d in res.set_index("key").loc[r.key, "run_dir"]]
        rows.append(r)
        results.append(res)
        curves = load_csvs(res, "curves.csv")
        for t in r[r.started_at == 0].itertuples():
            c = curves[(curves.label == t.label) & (curves.seed == t.seed)]
            blew, peak, first = blow_up(c)
            early.append(
                {
                    "candidate": t.candidate,
                    "lr": t.lr,
                    "warm-up": t.warmup,
                    "net": t.net,
                    "first-window loss": first,
                    "peak later window loss": peak,
                    "loss spike": blew,
                }
            )
    if not rows:
        raise FileNotFoundError(f"no pilot runs under {runs}/{PREFIX}*/{profile}/: run `make pilot-budget` first")
    return pd.concat(results, ignore_index=True), pd.concat(rows, ignore_index=True), pd.DataFrame(early)


def _span(run_dir: str) -> float:
    """A run's in-run wall time: set-up done (environment.json) to its last write (result.json): training, probes and
    the final evaluation, without process start-up."""
    d = Path(run_dir)
    return (d / "result.json").stat().st_mtime - (d / "environment.json").stat().st_mtime


def options(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per schedule option (candidate x decay shape): the held-out error of each net at each rung."""
    out = []
    for (cand, shape), g in rows.groupby(["candidate", "decay_shape"], sort=True):
        row = {"candidate": cand, "decay": shape, "lr": g.lr.iloc[0], "warm-up": g.warmup.iloc[0]}
        for steps in sorted(g.steps.unique()):
            for net in sorted(g.net.unique(), key=lambda n: -int(n.split("-")[1])):
                v = g[(g.steps == steps) & (g.net == net)].test_error
                row[f"{net} @ {steps:,}"] = float(v.mean()) if len(v) else math.nan
            deep, shallow = (f"resnet-{d}" for d in (56, 20))
            row[f"gap 56-20 @ {steps:,}"] = row.get(f"{deep} @ {steps:,}", math.nan) - row.get(
                f"{shallow} @ {steps:,}", math.nan
            )
        out.append(row)
    return pd.DataFrame(out)


def choose(opts: pd.DataFrame) -> pd.Series | None:
    """The plan's rule: the lowest held-out error of ResNet-56 at DECIDE_STEPS among the options where ResNet-20 is
    within GUARD_PP of its best option."""
    deep, shallow = f"resnet-56 @ {DECIDE_STEPS:,}", f"resnet-20 @ {DECIDE_STEPS:,}"
    if deep not in opts or shallow not in opts or opts[[deep, shallow]].isna().all().any():
        return None
    ok = opts[opts[shallow] <= opts[shallow].min() + GUARD_PP]
    return ok.loc[ok[deep].idxmin()]


def seconds_per_step(rows: pd.DataFrame) -> dict[str, float]:
    """Each net's measured in-run seconds per trained step over all its pilot runs (1 thread, beside one other run:
    the lanes of JOBS=2)."""
    g = rows[rows.trained_steps > 0].groupby("net")
    return {net: float(d.span_seconds.sum() / d.trained_steps.sum()) for net, d in g}


def ladder_steps(ladder=LADDER, decay: float = DECAY) -> int:
    """Steps one net and seed trains in a ladder: its trunk (the top rung) plus each other rung's decay."""
    top = max(ladder)
    return int(top + sum(round(b * decay) for b in ladder if b != top))


def arm_minutes(rate: dict[str, float], seeds: int, lanes: int = 2) -> float:
    """Predicted wall minutes of a confirmatory arm of `seeds` seeds of every net, on `lanes` lanes: the summed work
    over the lanes, or the longest single run's chain if that is longer (a lane cannot split a run)."""
    per = {net: ladder_steps() * s for net, s in rate.items()}
    return max(sum(per.values()) * seeds / lanes, max(per.values())) / 60


def gap_sd(path: Path = SD_SOURCE, deep: int = 56, shallow: int = 20) -> tuple[float, int] | None:
    """(sd over seeds of the test-error gap ResNet-deep - ResNet-shallow, seeds) in the depth study (800 steps, `cpu`
    profile): the only seeds-level spread of this gap measured so far (the pilot has one seed per option)."""
    if not Path(path).is_file():
        return None
    d = pd.read_csv(path)
    d = d[d.family == "resnet"].pivot_table(index="seed", columns="depth", values="test_error")
    if deep not in d or shallow not in d:
        return None
    g = (d[deep] - d[shallow]).dropna()
    return (float(g.std(ddof=1)), len(g)) if len(g) >= 2 else None


# Sections.


def header(results: pd.DataFrame, study: str, profile: str) -> list[str]:
    """The shared header, with the two lines that are per candidate here: the profile (its lr and warm-up differ)
    and the completeness of each candidate's study."""
    lines = skeleton.header(
        "Budget study: the pilot",
        results,
        study,
        "[experiments/budget.md](../../experiments/budget.md)",
        skeleton.cpu_banner(
            profile,
            "A pilot: one seed per option, on data the confirmatory study "
            "never evaluates on. It fixes the schedule and sizes the "
            "confirmatory arms; it decides no hypothesis.",
        ),
        command=f"reslab-report budget-pilot profile={profile}",
    )
    out = []
    for block in lines:
        for line in block.split("\n"):
            if line.startswith("- **Profile:**"):
                line = (
                    f"- **Profile:** `{profile}` (batch 32, WSD: a stable lr, then a decay over the last 20%), with "
                    "each candidate's lr, warm-up and decay shape (tables below)"
                )
            if line.startswith("- **Completeness:**"):
                for study_dir in sorted({str(Path(d).parent) for d in results.run_dir}):
                    own = results[results.run_dir.map(lambda d: str(Path(d).parent)) == study_dir]
                    name = Path(study_dir).parent.name
                    out.append(
                        consistency.completeness_line(own).replace("**Completeness:**", f"**Completeness (`{name}`):**")
                    )
                continue
            out.append(line.replace(f"`runs/{study}/{profile}/`", f"`runs/{PREFIX}*/{profile}/`"))
    return out


def schedule_section(opts: pd.DataFrame, pick: pd.Series | None) -> list[str]:
    fmt = opts.copy()
    for c in fmt.columns[4:]:
        fmt[c] = fmt[c].map(lambda v: f"{v:.2f}" if np.isfinite(v) else "-")
    lines = [
        "Held-out error (%) on the 5k images held out of the training set, seed 150, one run per cell.",
        "",
        markdown.table(fmt),
        "",
    ]
    if pick is None:
        return lines + ["- Not decided: an option lacks ResNet-20 or ResNet-56 at the deciding rung."]
    return lines + [
        f"- **Rule** (experiments/budget.md): the lowest held-out error of ResNet-56 at {DECIDE_STEPS:,} steps among "
        f"the options where ResNet-20 is within {GUARD_PP:g} pp of its best option.",
        f"- **Chosen:** `{pick.candidate}` with the {pick.decay} decay: lr {pick.lr:g}, warm-up {pick['warm-up']}; "
        f"ResNet-56 {pick[f'resnet-56 @ {DECIDE_STEPS:,}']:.2f}%, ResNet-20 "
        f"{pick[f'resnet-20 @ {DECIDE_STEPS:,}']:.2f}% "
        f"at {DECIDE_STEPS:,} steps. One seed per option: the ordering of close options is not a finding.",
    ]


def early_section(early: pd.DataFrame) -> list[str]:
    fmt = early.copy()
    for c in ("first-window loss", "peak later window loss"):
        fmt[c] = fmt[c].map(lambda v: f"{v:.2f}")
    fmt["loss spike"] = fmt["loss spike"].map({True: "yes", False: "no"})
    above = early[early["first-window loss"] > CHANCE_LOSS]
    return [
        f"The trunks (runs from step 0): the running training loss of the first probe window (chance: ln 10 = "
        f"{CHANCE_LOSS:.2f}) and a spike (a later window above {BLOWUP_LOSS:g} nats, experiments/depth.md's rule).",
        "",
        markdown.table(fmt),
        "",
        f"- First window above chance in {len(above)} of {len(early)} trunks"
        + (f" ({', '.join(sorted(set(above.candidate + ' ' + above.net)))})" if len(above) else "")
        + f"; a loss spike in {int(early['loss spike'].sum())} of {len(early)}.",
    ]


def timing_section(rows: pd.DataFrame) -> list[str]:
    rate = seconds_per_step(rows)
    lines = [
        "Measured in-run seconds per trained step (training, curve probes and final evaluation; two runs at once, "
        "one thread each, as with JOBS=2): " + ", ".join(f"{n} {s:.3f} s" for n, s in sorted(rate.items())) + ".",
        "",
        f"A confirmatory ladder (rungs {', '.join(f'{b:,}' for b in LADDER)}; each rung below the top trains "
        f"its last {DECAY:.0%} from the trunk) trains {ladder_steps():,} steps per net and seed. Predicted wall "
        f"time of an arm of ResNet-20 and ResNet-56 on two lanes, and with the plan's margin x{MARGIN:g}:",
        "",
    ]
    resnets = {n: s for n, s in rate.items() if n.startswith("resnet")}
    table = [
        {
            "seeds": n,
            "predicted (min)": f"{arm_minutes(resnets, n):.0f}",
            f"with margin x{MARGIN:g} (min)": f"{arm_minutes(resnets, n) * MARGIN:.0f}",
        }
        for n in range(1, 7)
    ]
    return lines + [markdown.table(pd.DataFrame(table))]


def power_section(m: int = len(LADDER)) -> list[str]:
    found = gap_sd()
    if found is None:
        return [f"- No seeds-level spread of the gap to size the seeds with ({SD_SOURCE} missing)."]
    sd, n = found
    rows = []
    for k in range(3, 9):
        rows.append(
            {
                "seeds": k,
                f"P(supported), true +{power.DESIGN_EFFECT_PP:g} "
                f"pp": f"{power.rule_power(power.DESIGN_EFFECT_PP, sd, k, m=m):.2f}",
                f"P(no practical difference), true {power.EQUIVALENCE_EFFECT_PP:g} "
                f"pp": f"{power.rule_power(power.EQUIVALENCE_EFFECT_PP, sd, k, m=m):.2f}",
            }
        )
    need = power.seeds_needed(power.DESIGN_EFFECT_PP, sd, m=m)
    return [
        f"The sd over seeds of the test-error gap ResNet-56 − ResNet-20 is {sd:.2f} pp in the depth study ({n} "
        f"seeds, 800 steps, `{SD_SOURCE}`): the only seeds-level spread of this gap measured so far (the pilot "
        f"has one seed per option). Power of the paired rule as applied (reslab.report.power: Holm over the "
        f"{m} budgets of a metric, judged at alpha/{m}):",
        "",
        markdown.table(pd.DataFrame(rows)),
        "",
        f"- Seeds for power {power.TARGET:g} to call a true {power.DESIGN_EFFECT_PP:g} pp difference: **{need}**.",
    ]


def build(runs: Path, reports: Path, profile: str, study: str = "budget-pilot") -> Path:
    results, rows, early = load(runs, profile)
    out = Path(reports) / study
    out.mkdir(parents=True, exist_ok=True)
    skeleton.write_csv(rows, out / "runs.csv")
    opts = options(rows)
    skeleton.write_csv(opts, out / "options.csv")
    pick = choose(opts)
    budget.error_vs_budget(
        rows.assign(net=rows.candidate + " " + rows.net),
        out / "error_vs_budget.png",
        None,
        f"{study}: held-out error after each budget per option (one seed)",
    )
    names = ", ".join(f"`{PREFIX}{c}`" for c in sorted(rows.candidate.unique()))
    lines = [
        *header(results, study, profile),
        f"Candidates (one study each): {names}.",
        "",
        "## 1. The schedule",
        "",
        *schedule_section(opts, pick),
        "",
        "![error vs budget](error_vs_budget.png)",
        "",
        "## 2. Initial loss and spikes",
        "",
        *early_section(early),
        "",
        "## 3. Time per step, and the arms it sizes",
        "",
        *skeleton.sweep_lines(results),
        "",
        *timing_section(rows),
        "",
        "## 4. Seeds",
        "",
        *power_section(),
        "",
        "Per-run values: [runs.csv](runs.csv); options: [options.csv](options.csv).",
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"
