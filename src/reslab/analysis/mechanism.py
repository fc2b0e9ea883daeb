"""`make mechanism` (`python -m reslab.analysis.mechanism`): reports/mechanism/README.md, which ties issue 25's
measurements to the seeds' explanations of why residual nets train, one computed verdict per claim, each with the
depths it holds at and the report that holds its evidence.

The claims (the seeds' wording, shortened):
- **G1** "without the shortcut, gradients vanish in a deep net"; **G2** "... or explode": read from the per-block
  gradient scale coefficient (experiments/depth.md, amendment of 2026-12-04) of the plain and residual BN nets at
  initialisation (runs/gradflow/signal.csv) and at the depth runs' training probes (runs/depth/<profile>/*/signal.csv);
- **S** the non-size mechanism (Balduzzi et al. 2017): gradients of nearby inputs decorrelate with depth without
  shortcuts (reports/mechanism/shattered.csv, `make shattered`);
- **I** "blocks that are not needed learn to output about zero" (L6) and **D** "deleting parts of a ResNet barely
  hurts it, a plain net collapses" (L1-L3): the lesion study's files beside the budget study's runs (`make lesion`);
- **K** 1,000-layer nets: ResNet-1202 and plain-1202 at initialisation (reports/mechanism/thousand_layers_nets.csv,
  `make thousand-layers`); **K2** the same nets over their first 200 training steps (thousand_train_nets.csv and
  thousand_train.csv, `make thousand-layers-train DATA=...`; rules: experiments/thousand-layers.md).

Nothing is measured here: every verdict is computed from the files the measuring commands wrote, by their own rules
(the same functions their reports use), and a claim whose files are missing says which command measures it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from reslab import io, options
from reslab.analysis import shattered, thousand_layers, thousand_train
from reslab.errors import ReslabError, one_line_errors
from reslab.report import flow, layer_steps, lesion, markdown, skeleton
from reslab.report.results import load_csvs, load_results
from reslab.run import numerics, runinfo

NOT_MEASURED = "not measured yet"


def _depths(ds) -> str:
    return ", ".join(str(int(d)) for d in sorted(ds)) or "none"


# Compute: one function per claim, each returning {claim, verdict, evidence, where}.


def init_readings(runs: Path) -> pd.DataFrame:
    """Per net (family x norm x depth, no controls): the per-block GSC reading at initialisation, or an empty frame."""
    f = Path(runs) / "gradflow" / "signal.csv"
    if not f.is_file():
        return pd.DataFrame()
    r = flow.signal_readings(flow.signal_summary(pd.read_csv(f)), "gsc")
    return r[~r.control.astype(bool) & (r.init_scale == 1.0)]


def step_states(runs: Path, profile: str) -> pd.DataFrame:
    """Per trained net of the depth study: its layers' step states (dead, vanishing, exploding, healthy; the depth
    report's rule, reslab.report.layer_steps) and its input quarter's reading; empty without update probes."""
    try:
        results = load_results(Path(runs), "depth", profile)
    except ReslabError:
        return pd.DataFrame()
    return layer_steps.compute(load_csvs(results, "updates.csv"), results, skeleton.profile_cfg(results))[2]


def training_readings(runs: Path, profile: str) -> pd.DataFrame:
    """Per trained net and training probe step (after step 0): the median per-block GSC rate over seeds and its
    reading; empty if the depth runs recorded no backward signal."""
    try:
        results = load_results(Path(runs), "depth", profile)
    except ReslabError:
        return pd.DataFrame()
    signal = load_csvs(results, "signal.csv")
    if signal.empty:
        return pd.DataFrame()
    s = flow.training_signal(signal)
    s = s[s.step > 0].copy()
    s["reading"] = s.gsc_rate_median.map(flow.sig.gsc_reading)
    return s


def _majority(g: pd.DataFrame) -> str:
    reads = list(g.reading)
    return max(set(reads), key=reads.count)


def steps_text(steps: pd.DataFrame) -> tuple[str, dict[str, list[int]]]:
    """The plain nets' input-quarter step readings during training, as text and as {reading: depths}."""
    if steps is None or steps.empty:
        return "; the training runs recorded no update sizes", {}
    p = steps[steps.family == "plain"]
    by = {r: sorted(int(d) for d in g.depth) for r, g in p.groupby("input_reading")}
    said = ", ".join(f"{r} at {_depths(ds)}" for r, ds in sorted(by.items()))
    return f"; their input layers' steps during training (the depth report's step states) read {said}", by


def gradient_claims(init: pd.DataFrame, train: pd.DataFrame, steps: pd.DataFrame | None = None) -> list[dict]:
    """G1 (vanishing) and G2 (exploding) without the shortcut, on the BN nets that were trained: the backward
    signal's per-block rate at init and during training, and the input layers' step sizes during training (a layer
    at the weight-decay floor is dead: no loss gradient reaches it)."""
    where = "[depth](../depth/README.md#gradient-flow-do-deep-plain-nets-fail-because-gradients-vanish)"
    if init.empty:
        return [
            {"claim": c, "verdict": NOT_MEASURED, "evidence": "`make grad-flow DATA=...`", "where": where}
            for c in ("G1", "G2")
        ]
    bn = init[init.norm == "bn"]
    at = lambda fam, reading: set(bn[(bn.family == fam) & (bn.reading == reading)].depth)  # noqa: E731
    depths = set(bn[bn.family == "plain"].depth)
    during = {}
    if not train.empty:
        for (fam, d), g in train.groupby(["family", "depth"]):
            during.setdefault(fam, {})[int(d)] = _majority(g)
    plain_during = during.get("plain", {})
    train_text = (
        "; during training (majority over the training probes) plain nets read "
        + ", ".join(
            f"{r} at {_depths([d for d, x in plain_during.items() if x == r])}"
            for r in sorted(set(plain_during.values()))
        )
        if plain_during
        else "; the training runs recorded no backward signal"
    )
    van, exp = at("plain", "vanishing"), at("plain", "exploding")
    res_ok = at("resnet", "neither")
    step_said, by_step = steps_text(steps)
    train_text += step_said
    g1 = (
        "contradicted at initialisation"
        if not van and not any(x == "vanishing" for x in plain_during.values())
        else f"supported at depth {_depths(van | {d for d, x in plain_during.items() if x == 'vanishing'})}"
    )
    small = {"vanishing": "take vanishing steps", "dead": "are dead (at the weight-decay floor: no loss gradient)"}
    during_steps = [f"{small[r]} at depth {_depths(by_step[r])}" for r in ("vanishing", "dead") if by_step.get(r)]
    if during_steps:
        g1 += "; during training the plain nets' input layers " + " and ".join(during_steps)
    g2 = (
        f"supported at initialisation at depth {_depths(exp)}, with the shortcut reading neither at depth "
        f"{_depths(res_ok)}"
        if exp
        else "contradicted at initialisation"
    )
    if exp and plain_during and all(x != "exploding" for x in plain_during.values()):
        g2 += "; not during training (no plain net reads exploding at its training probes)"
    return [
        {
            "claim": "G1",
            "verdict": g1,
            "evidence": f"plain BN nets vanishing at init at depth {_depths(van)} of {_depths(depths)}{train_text}",
            "where": where,
        },
        {
            "claim": "G2",
            "verdict": g2,
            "evidence": f"plain BN nets exploding at init at depth {_depths(exp)} of {_depths(depths)}; residual BN "
            f"nets neither at depth {_depths(res_ok)}",
            "where": where,
        },
    ]


def shattered_claim(folder: Path) -> dict:
    f = Path(folder) / "shattered.csv"
    row = {"claim": "S", "where": "[shattered.md](shattered.md)"}
    if not f.is_file():
        return row | {"verdict": NOT_MEASURED, "evidence": "`make shattered`"}
    v = shattered.verdicts(shattered.summarise(pd.read_csv(f)))
    agree = {n: x["residual_higher"] and x["plain_falls"] for n, x in v.items()}
    verdict = (
        "consistent at every norm measured"
        if all(agree.values())
        else "; ".join(f"norm={n}: {'consistent' if a else 'not borne out in full'}" for n, a in agree.items())
    )
    evidence = "; ".join(
        f"norm={n}: residual more correlated at depth {_depths(x['residual_higher_at'])} of {_depths(x['depths'])}, "
        f"plain correlation {'falls' if x['plain_falls'] else 'does not fall'} with every step in depth"
        + (
            f" (white noise, |corr| < {shattered.WHITE_NOISE:g}, at depth {_depths(x['plain_white_at'])})"
            if x["plain_white_at"]
            else ""
        )
        for n, x in v.items()
    )
    return row | {"verdict": verdict, "evidence": evidence}


def lesion_claims(runs: Path, steps: int) -> list[dict]:
    where = "[lesion](../lesion/README.md)"
    try:
        _, single, _, _, ratios = lesion.load(Path(runs), "budget", "budget", steps)
    except (FileNotFoundError, ReslabError):
        return [
            {
                "claim": c,
                "verdict": NOT_MEASURED,
                "evidence": f"`make lesion` (the {steps:,}-step rung)",
                "where": where,
            }
            for c in ("I", "D")
        ]
    med = lesion.medians(single)
    v = lesion.verdicts(med, ratios)
    words = lambda names: "; ".join(f"{n} {v[n]}" for n in names if n in v) or "no rule could be read"  # noqa: E731
    return [
        {
            "claim": "I",
            "verdict": words(["L6"]),
            "evidence": " ".join(lesion.identity_section(ratios)[2:]) or "no residual net has branch ratios",
            "where": where,
        },
        {
            "claim": "D",
            "verdict": words(["L1", "L2", "L3"]),
            "evidence": " ".join(line.lstrip("- ") for line in lesion.verdict_section(med)),
            "where": where,
        },
    ]


def _first_bold(text: str) -> str:
    parts = text.split("**")
    return parts[1] if len(parts) > 2 else text


def thousand_claim(folder: Path) -> dict:
    f = Path(folder) / "thousand_layers_nets.csv"
    row = {"claim": "K", "where": "[thousand_layers.md](thousand_layers.md)"}
    if not f.is_file():
        return row | {"verdict": NOT_MEASURED, "evidence": "`make thousand-layers`"}
    nets = pd.read_csv(f)
    v = thousand_layers.verdict(nets)
    return row | {"verdict": _first_bold(v), "evidence": v}


def thousand_train_claim(folder: Path) -> dict:
    nets_file, steps_file = Path(folder) / "thousand_train_nets.csv", Path(folder) / "thousand_train.csv"
    row = {"claim": "K2", "where": "[thousand_train.md](thousand_train.md)"}
    if not (nets_file.is_file() and steps_file.is_file()):
        return row | {"verdict": NOT_MEASURED, "evidence": "`make thousand-layers-train DATA=...`"}
    nets, steps = pd.read_csv(nets_file), pd.read_csv(steps_file)
    v = thousand_train.verdict(thousand_train.readings(steps, nets), int(nets.depth.iloc[0]))
    images = int(nets.images_seen.max())
    return row | {"verdict": _first_bold(v), "evidence": f"{v} ({images:,} images seen per run at most.)"}


CLAIMS = {
    "G1": "Without the shortcut, gradients vanish in a deep net",
    "G2": "Without the shortcut, gradients explode in a deep net",
    "S": "Without the shortcut, gradients shatter (nearby inputs' gradients decorrelate with depth)",
    "I": "Blocks that are not needed learn to output about zero (become identities)",
    "D": "Deleting parts of a ResNet barely hurts it; a plain net collapses",
    "K": "Residual nets of 1,000+ layers still have a usable backward signal; plain ones do not",
    "K2": "Residual nets of 1,000+ layers can be optimised; plain ones cannot (first 200 steps)",
}


def compute(runs: Path, folder: Path, profile: str, steps: int) -> pd.DataFrame:
    rows = [
        *gradient_claims(init_readings(runs), training_readings(runs, profile), step_states(runs, profile)),
        shattered_claim(folder),
        *lesion_claims(runs, steps),
        thousand_claim(folder),
        thousand_train_claim(folder),
    ]
    return pd.DataFrame([{"seed claim": CLAIMS[r["claim"]], **r} for r in rows])


# Sections.


def verdict_section(claims: pd.DataFrame) -> list[str]:
    t = claims.rename(columns={"claim": "id"})[["id", "seed claim", "verdict", "where"]]
    return [markdown.table(t)]


def evidence_section(claims: pd.DataFrame) -> list[str]:
    return [f"- **{r.claim}** ({r['seed claim']}): {r.evidence}" for _, r in claims.iterrows()]


def build(runs: Path, out: Path, profile: str, steps: int) -> Path:
    claims = compute(runs, out, profile, steps)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Why residual nets train: the seeds' explanations, tested",
        "",
        "_CPU-sized readings: the trained nets behind G1/G2 (the depth study, `cpu` profile) and I/D (the budget "
        f"study's {steps:,}-step rung) are far from the paper's budget; S and K are measured at initialisation, "
        "K2 over 200 steps. "
        "Each row's report states its profile, images seen, seeds, data copy and device._",
        "",
        "## Verdicts (computed)",
        "",
        *verdict_section(claims),
        "",
        "## The evidence behind each verdict",
        "",
        *evidence_section(claims),
        "",
        f"Built by `make mechanism` at commit {runinfo.git_commit()} (numerics version {numerics.VERSION}) from "
        f"{runs}/gradflow, {runs}/depth/{profile}, the lesion files of {runs}/budget/budget and this folder's CSVs; "
        "it measures nothing itself. Rules: experiments/depth.md (G1, G2), experiments/lesion.md (I, D), the "
        "measuring modules' docstrings (S: reslab.analysis.shattered, K: reslab.analysis.thousand_layers), "
        "experiments/thousand-layers.md (K2).",
    ]
    io.write_text(out / "README.md", "\n".join(lines) + "\n")
    claims.to_csv(out / "claims.csv", index=False)
    return out / "README.md"


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m reslab.analysis.mechanism", description=__doc__.split("\n\n")[0])
    ap.add_argument("overrides", nargs="*", help="runs=runs reports=reports profile=cpu steps=3200")
    a = ap.parse_args(argv)
    opts = options.parse(a.overrides, {"runs": "runs", "reports": "reports", "profile": "cpu", "steps": "3200"})
    try:
        steps = int(opts["steps"])
    except ValueError:
        raise ReslabError(
            f"steps={opts['steps']!r} is not an integer (a rung of the budget study, e.g. 3200)"
        ) from None
    path = build(Path(opts["runs"]), Path(opts["reports"]) / "mechanism", opts["profile"], steps)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
