"""reports/head/: global average pooling vs flatten + linear (experiments/head.md; issue 26 item 2), from
runs/<study>/<profile>/: ResNet-20 and ResNet-56, each head, in two training arms of the same 800 iterations (6,400
images x 4 epochs and 1,600 images x 16 epochs, where memorising can show).

The seeds' three claims, each with a verdict:
- (a) **fewer parameters**: counted from the built nets (a fact, no statistics);
- (b) **less overfitting**: the gap g = test error - training error (eval mode, on 1,600 of the run's own training
  images); per depth and arm the paired difference g(flatten) - g(GAP) over seeds, Holm over the four contrasts,
  2 pp threshold (reslab.report.paired). Read with the training errors beside it: a head that does not fit its
  training images cannot overfit them, so a small g there is a budget reading, not the claim;
- (c) **the input size can vary**: every trained net evaluated at 24x24 (centre crop), 32x32 and 40x40 (zero pad)
  (`python -m reslab.analysis.input_sizes --write <study dir>` writes each run's input_sizes.json): supported if
  every GAP net runs at every size and every flatten net refuses the other sizes in one line (shown verbatim).

Each flatten head present (`flatten`, `flatten-scaled`) is a Holm family of its own; the confirmatory run has the one
the plan names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reslab import io
from reslab.report import markdown, paired, plots, skeleton
from reslab.report.results import load_results
from reslab.report.stats import mean_std, pm

PLAN = "[experiments/head.md](../../experiments/head.md)"
GAP = "gap"
SIZES_FILE = "input_sizes.json"  # reslab.analysis.input_sizes.SIZES_FILE (analysis sits above report: not imported)


def _config(run_dir: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(Path(run_dir) / "config.yaml"), resolve=True)


def load(runs: Path, study: str, profile: str) -> pd.DataFrame:
    """Finished runs with their head, training arm (images) and overfitting gap g."""
    df = load_results(runs, study, profile, vary=("profile.train_subset",), by_label=True)
    cfgs = [_config(d) for d in df.run_dir]
    df["head"] = [c["model"].get("head", GAP) for c in cfgs]
    df["arm"] = [int(c["profile"]["train_subset"]) for c in cfgs]
    df["g"] = df.test_error - df.train_eval_error
    df["net"] = [f"resnet-{d} {h}" for d, h in zip(df.depth, df["head"])]
    return df.sort_values(["arm", "depth", "head", "seed"], ascending=[False, True, True, True]).reset_index(drop=True)


def size_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run and size (error or refusal), from each run's input_sizes.json (written by
    `python -m reslab.analysis.input_sizes --write <study dir>`); runs without one are left out and counted."""
    rows = []
    for _, r in df.iterrows():
        f = Path(r.run_dir) / SIZES_FILE
        if f.is_file():
            for s in json.loads(f.read_text()):
                rows.append({"net": r.net, "arm": r.arm, "seed": r.seed, "head": r["head"], **s})
    return pd.DataFrame(rows)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (arm, depth, head), g in df.groupby(["arm", "depth", "head"], sort=False):
        stats = {c: mean_std(list(g[c])) for c in ("train_eval_error", "test_error", "g")}
        rows.append(
            {
                "arm": arm,
                "depth": depth,
                "head": head,
                "label": g.label.iloc[0],
                "params": int(g.params.iloc[0]),
                "n_seeds": len(g),
                **{f"{c}_mean": v[0] for c, v in stats.items()},
                **{f"{c}_std": v[1] for c, v in stats.items()},
            }
        )
    return pd.DataFrame(rows)


def contrasts(df: pd.DataFrame) -> dict[str, list[paired.Paired]]:
    """Claim (b): per flatten head, arm and depth, g(flatten) - g(GAP) paired over seeds; one Holm family per flatten
    head (the confirmatory run has one: the plan's)."""
    fams = {}
    for head in sorted(h for h in df["head"].unique() if h != GAP):
        out = []
        for arm in sorted(df.arm.unique(), reverse=True):
            for depth in sorted(df.depth.unique()):
                d = df[(df.arm == arm) & (df.depth == depth)]
                flat, gap = d[d["head"] == head], d[d["head"] == GAP]
                if flat.empty or gap.empty:
                    continue
                out.append(
                    paired.paired(
                        f"(b) ResNet-{depth}, {arm:,} images, {head}",
                        "g",
                        flat.label.iloc[0],
                        gap.label.iloc[0],
                        dict(zip(flat.seed, flat.g)),
                        dict(zip(gap.seed, gap.g)),
                    )
                )
        fams[f"overfitting ({head})"] = out
    skeleton.decide(fams)
    return fams


def params_verdict(agg: pd.DataFrame) -> tuple[str, list[str]]:
    lines, fewer = [], []
    for depth in sorted(agg.depth.unique()):
        p = agg[agg.depth == depth].drop_duplicates("head").set_index("head").params
        for head in [h for h in p.index if h != GAP]:
            lines.append(
                f"- ResNet-{depth}: GAP {p[GAP]:,} parameters, {head} {p[head]:,}: the flatten head has "
                f"{p[head] - p[GAP]:,} more (its linear layer reads every position of the final map)."
            )
            fewer.append(p[GAP] < p[head])
    return ("supported" if fewer and all(fewer) else "not supported" if fewer else "not tested"), lines


def sizes_verdict(sizes: pd.DataFrame) -> str:
    if sizes.empty:
        return "not tested (no run evaluated at other sizes)"
    gap, flat = sizes[sizes["head"] == GAP], sizes[sizes["head"] != GAP]
    gap_runs = gap.empty or ("test_error" in gap and gap.test_error.notna().all())
    other = flat[flat["size"] != 32]
    refused = other.empty or ("refused" in other and other.refused.notna().all())
    if gap_runs and refused and not gap.empty and not flat.empty:
        return "supported"
    return "not supported" if not gap.empty and not flat.empty else "not tested (both heads needed)"


@dataclass
class Study:
    study: str
    profile: str
    df: pd.DataFrame
    agg: pd.DataFrame
    fams: dict
    sizes: pd.DataFrame


def build(runs: Path, reports: Path, profile: str, study: str = "head") -> Path:
    out = Path(reports) / study
    s = compute(runs, profile, study, out)
    figures(s, out)
    lines = [*header_section(s), *params_section(s), *overfitting_section(s), *sizes_section(s), *files_section(s)]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    return out / "README.md"


def compute(runs: Path, profile: str, study: str, out: Path) -> Study:
    df = load(runs, study, profile)
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(df)
    fams = contrasts(df)
    sizes = size_table(df)
    cols = ["label", "head", "arm", "depth", "seed", "status", "train_eval_error", "test_error", "g", "train_error"]
    skeleton.write_csv(df, out / "runs.csv", cols + ["params", "steps", "wall_seconds", "git_commit", "key"])
    skeleton.write_csv(agg, out / "results.csv")
    skeleton.write_csv(skeleton.contrasts_frame([c for f in fams.values() for c in f]), out / "contrasts.csv")
    if not sizes.empty:
        skeleton.write_csv(sizes, out / "input_sizes.csv")
    return Study(study, profile, df, agg, fams, sizes)


def figures(s: Study, out: Path) -> None:
    plots.paired_differences(
        s.fams, out / "paired_differences.png", paired.PRACTICAL_PP, f"profile {s.profile}: g(flatten) − g(GAP)"
    )


def header_section(s: Study) -> list[str]:
    steps, batch = int(s.df.steps_planned.max()), int(s.df.batch_size.iloc[0])  # from the runs, not typed
    banner = skeleton.cpu_banner(
        s.profile,
        f"Every net trains for {steps} iterations of {batch} images ({steps * batch:,} images) in each arm; the "
        "verdicts are readings at "
        "this budget, not Lin et al.'s converged comparison.",
    )
    return skeleton.header("Global average pooling vs flatten + linear", s.df, s.study, PLAN, banner)


def params_section(s: Study) -> list[str]:
    verdict, lines = params_verdict(s.agg)
    return ['## (a) "Fewer parameters"', "", f"**Verdict: {verdict}** (counted from the built nets).", "", *lines, ""]


def _table(agg: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "training images": agg.arm.map("{:,}".format),
            "net": [f"ResNet-{d}" for d in agg.depth],
            "head": agg["head"],
            "params": agg.params.map("{:,}".format),
            "train err % (eval mode)": [
                pm(m, sd, n) for m, sd, n in zip(agg.train_eval_error_mean, agg.train_eval_error_std, agg.n_seeds)
            ],
            "test err %": [pm(m, sd, n) for m, sd, n in zip(agg.test_error_mean, agg.test_error_std, agg.n_seeds)],
            "g = test − train (pp)": [pm(m, sd, n) for m, sd, n in zip(agg.g_mean, agg.g_std, agg.n_seeds)],
            "seeds": agg.n_seeds,
        }
    )


def fit_reading(s: Study, c: paired.Paired) -> str:
    """The budget reading of one contrast: whether the flatten net fitted its training images as well as GAP."""
    a = s.agg.set_index("label")
    tf, tg = a.loc[c.worse, "train_eval_error_mean"], a.loc[c.better, "train_eval_error_mean"]
    fits = "fitted its training images worse" if tf > tg + paired.PRACTICAL_PP else "fitted them about as well"
    return f"  Training error (eval mode): {c.worse} {tf:.2f}%, {c.better} {tg:.2f}%: the flatten net {fits}" + (
        " (a smaller gap there is a budget reading: it has not fitted what it could memorise)." if tf > tg else "."
    )


def overall(fam: list[paired.Paired]) -> str:
    verdicts = [c.verdict for c in fam]
    if not fam:
        return "not tested"
    if all(v == "supported" for v in verdicts):
        return "supported"
    if any(v == "contradicted" for v in verdicts):
        return "contradicted"
    if any(v == "supported" for v in verdicts):
        return "partly supported"
    if all(v == "no practical difference" for v in verdicts):
        return "not supported: no practical difference"
    return "inconclusive"


def overfitting_section(s: Study) -> list[str]:
    lines = []
    for name, fam in s.fams.items():
        lines += [
            f"**Verdict, {name}: {overall(fam)}** ({', '.join(c.verdict for c in fam) or 'no contrasts'}).",
            "",
        ]
        for c in fam:
            lines += [skeleton.verdict_line(c, c.name), fit_reading(s, c)]
        lines.append("")
    return [
        '## (b) "Less overfitting"',
        "",
        skeleton.rule_text(
            "One Holm family per flatten head, of the contrasts below (per depth and training arm); metric g = test "
            f"error − training error (eval mode, {int(s.df.train_eval_images.max()):,} of the run's training "
            "images), 'worse' = the flatten net (the "
            "claim: it overfits more)."
        ),
        "",
        *lines,
        skeleton.design_line(s.fams),
        "",
        markdown.table(_table(s.agg)),
        "",
        "![paired differences](paired_differences.png)",
        "",
        plots.paired_caption(paired.PRACTICAL_PP, "the claim"),
        "",
    ]


def sizes_section(s: Study) -> list[str]:
    sz = s.sizes
    out = ['## (c) "The input size can vary"', "", f"**Verdict: {sizes_verdict(sz)}.**", ""]
    missing = sum(not (Path(d) / SIZES_FILE).is_file() for d in s.df.run_dir)
    todo = (
        [
            f"_{missing} of {len(s.df)} runs not evaluated at other sizes yet: `python -m reslab.analysis.input_sizes "
            f"--write runs/{s.study}/{s.profile}` (part of `make sweep-head`; needs the runs' model.pt)._",
            "",
        ]
        if missing
        else []
    )
    if sz.empty:
        return [*out, *todo]
    rows = []
    for (net, arm, size), g in sz.groupby(["net", "arm", "size"], sort=False):
        errs = g.test_error.dropna() if "test_error" in g else pd.Series(dtype=float)
        m, sd, n = mean_std(list(errs))
        rows.append(
            {
                "training images": f"{arm:,}",
                "net": net,
                "size": f"{size}x{size} ({g['transform'].iloc[0]})",
                "test err % (mean ± sd)": pm(m, sd, n) if n else "refused",
                "runs": len(g),
            }
        )
    refusals = sz.refused.dropna().unique() if "refused" in sz else np.array([])
    return [
        *out,
        *todo,
        "Every trained net at 24x24 (centre crop), 32x32 (as trained) and 40x40 (zero pad), normalised as in "
        "training (reslab.analysis.input_sizes). The errors say what another size costs; the claim is only that the "
        "net runs."
        + (
            " The 32x32 errors are each run's own final evaluation (the same net, images and normalisation)."
            if "from" in sz and sz["from"].notna().any()
            else ""
        ),
        "",
        markdown.table(pd.DataFrame(rows)),
        "",
        *(["The flatten nets' refusals, verbatim:", "", *[f"    {r}" for r in refusals], ""] if len(refusals) else []),
    ]


def files_section(s: Study) -> list[str]:
    return [
        "Per-seed results: [runs.csv](runs.csv); per net: [results.csv](results.csv); contrasts with every "
        "statistic: [contrasts.csv](contrasts.csv)"
        + ("; every size of every run: [input_sizes.csv](input_sizes.csv)" if not s.sizes.empty else "")
        + f". Per-run outputs are under `runs/{s.study}/{s.profile}/`.",
    ]
