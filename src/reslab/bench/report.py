"""reports/bench/<device>.json (one per device measured) and README.md built from all of them."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from reslab import io
from reslab.bench.pipeline import POINTS

SCHEMA = 2
SUMMARY_COLUMNS = (
    "net",
    "batch",
    "model-only img/s",
    "best baseline img/s",
    "reslab img/s",
    "reslab / baseline",
    "reslab / model-only",
    ">= target",
    "own-work cap",
    "MFU reslab",
    "MFU model-only",
    "reslab + probes img/s",
)
FUSION_PAYS = 1.10  # grouped / separate img/s at which fusing seeds (its code and its exactness test) is worth it
LANE_TARGET = 1.10  # issue 28: a `cpu`-profile lane's wall time <= 1.10 x its runs' training time
DETAIL_COLUMNS = ("variant", "what", "img/s median", "img/s best", "ms/step median", "MFU", "/ model-only")


def device_file(result: dict) -> str:
    return re.sub(r"[^a-z0-9]+", "-", result["device"].lower()).strip("-") + ".json"


def table(columns, rows) -> list[str]:
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def pct(x: float) -> str:
    return f"{100 * x:.0f}%" if abs(x) >= 0.1 else f"{100 * x:.1f}%"


def section(r: dict) -> list[str]:
    th, s = r["threads"], r["settings"]
    peak = "; ".join(f"{k}: {v['flops_per_s'] / 1e9:.1f} GFLOP/s ({v['method']})" for k, v in r["peak"].items())
    lines = [
        f"## {r['device']}",
        "",
        f"- torch {r['torch']}, Lightning {r['lightning']}, commit {r['git_commit']}; CPU {r['cpu']['model']} "
        f"({r['cpu']['cores']} cores; flags "
        f"{', '.join(r['cpu']['flags']) or 'none of avx2/fma/avx512f/avx512_bf16/amx_bf16'}); "
        f"reslab's precision here: {r['precision']}.",
        f"- Threads: torch {th['torch_threads']} (intra-op, set by the bench: {th['threads_set']}), inter-op "
        f"{th['interop_threads']}, backend {th['backend']}, OMP_NUM_THREADS={th['OMP_NUM_THREADS'] or 'unset'}, "
        f"MKL_NUM_THREADS={th['MKL_NUM_THREADS'] or 'unset'}; DataLoader workers: {th['dataloader_workers']}.",
        *(
            [
                "- This CPU has AMX-BF16: bf16 autocast may train faster than fp32 here; the studies train in fp32 "
                "on a CPU, so it is not measured by default (`make bench ARGS='trainer.precision=bf16-mixed'` adds "
                "the bf16 rows)."
            ]
            if "amx_bf16" in r["cpu"]["flags"] and r["precision"] == "32-true"
            else []
        ),
        f"- Peak (the MFU denominator): {peak}.",
        f"- MFU = img/s x training FLOPs per image / peak; {r['flops_convention']}.",
        f"- Data: {r['data']}.",
        f"- Method: one process; per case every variant trains the same net (same init) at the same batch, "
        f"{s['warmup_steps']} untimed warm-up step(s) then the case's timed steps (the window opens when the last "
        f"warm-up step ends and holds every fetch and step after it; on a GPU the device is synchronised only at "
        f"its edges); {s['repeats']} repeats interleaved across the variants (order rotated each repeat); "
        f"min (best) and median over the repeats; the ratios use medians. Whole bench: "
        f"{r['wall_seconds'] / 60:.1f} min.",
        "",
    ]
    rows = []
    for c in r["cases"]:
        m, pr = c["summary"], c["probes"]
        rows.append(
            [
                c["label"],
                str(c["batch"]),
                f"{m['limit_img_s']:.0f} ({m['limit_variant']})",
                f"{m['baseline_img_s']:.0f} ({m['baseline_variant']})",
                f"{m['reslab_img_s']:.0f}",
                f"{m['reslab_over_baseline']:.2f}",
                pct(m["reslab_over_limit"]),
                "yes" if m["target_met"] else "**no**",
                pct(m["own_cap"]) if m.get("own_cap") is not None else "n/a",
                pct(m["mfu_reslab"]),
                pct(m["mfu_limit"]),
                f"{pr['img_s_median']:.0f} ({100 * pr['overhead']:+.1f}%)" if pr else "n/a",
            ]
        )
    lines += [
        "### Summary (medians)",
        "",
        *table(SUMMARY_COLUMNS, rows),
        "",
        f"Target: reslab >= {pct(s['target_of_limit'])} of the model alone on a fixed batch (at reslab's "
        "precision, best memory layout, not compiled). Baseline: the better of the tutorial's loops "
        "(DataLoader with 0 or 2 workers, torch loop or default Lightning fit). 'reslab + probes': reslab's step "
        f"plus the probes and checkpoints a run of the {r['profile']} profile pays (gradient norms, flow, curves; "
        f"each point timed in the first {s.get('probe_repeats', s['repeats'])} repeat(s), spread over the run's "
        "steps), for the cases at that profile's batch; n/a elsewhere. "
        "'own-work cap': the share of the model alone that reslab can reach at most, given its own work per "
        "step at that batch (section 'reslab's own work per step').",
        "",
    ]
    plain = []
    for c in r["cases"]:
        m = c["summary"]
        name = f"{c['label']} at batch {c['batch']}"
        if m["baseline_as_fast"]:
            faster = m["baseline_img_s"] > m["reslab_img_s"]
            within = "" if faster else f", within {pct(s['as_fast_within'])}"
            plain.append(
                f"- {name}: the loop a user writes ({m['baseline_variant']}) is "
                f"{'faster than' if faster else 'as fast as'} reslab here "
                f"({m['baseline_img_s']:.0f} vs {m['reslab_img_s']:.0f} img/s{within}): on this device "
                "reslab's pipeline buys no speed over it."
            )
        if not m["target_met"]:
            plain.append(
                f"- {name}: reslab reaches {100 * m['reslab_over_limit']:.1f}% of the model alone "
                f"({m['limit_variant']}), below the {pct(s['target_of_limit'])} target. " + gap(c, m, s)
            )
    if plain:
        lines += ["### Plainly", "", *plain, ""]
    lines += (
        floor_lines(r.get("floor"))
        + lane_lines(r.get("lanes"))
        + eval_lines(r.get("evaluation"))
        + fusion_lines(r.get("fusion"))
    )
    lines += fixed_cost_lines(r.get("fixed_cost"))
    lines += sweep_lines(r.get("sweeps") or [], r.get("sweeps_commit"))
    for c in r["cases"]:
        lines += [
            f"### {c['label']}, batch {c['batch']} ({c['params']:,} parameters, {c['flops_forward'] / 1e6:.1f} "
            f"forward MFLOPs per image, {c['steps']} timed steps)",
            "",
        ]
        limit = c["summary"]["limit_img_s"]
        lines += table(
            DETAIL_COLUMNS,
            [
                [
                    v["name"],
                    v["what"],
                    f"{v['img_s_median']:.0f}",
                    f"{v['img_s_best']:.0f}",
                    f"{v['ms_per_step_median']:.1f}",
                    pct(v["mfu_median"]),
                    pct(v["img_s_median"] / limit),
                ]
                for v in c["variants"]
            ],
        )
        pr = c["probes"]
        if pr:
            n = pr["counts"]
            sec = pr["point_seconds_median"]
            pts = ", ".join(f"{k} {n[k]} x {1000 * sec[k]:.1f} ms" for k in POINTS if k in sec)
            lines += [
                "",
                f"Probes of a {r['profile']}-profile run ({n['steps']} steps; points x median seconds per "
                f"point): {pts}; reslab + probes: {pr['img_s_median']:.0f} img/s median, "
                f"{pr['img_s_best']:.0f} best ({100 * pr['overhead']:+.1f}% time per step): the training "
                f"of one such run takes {n['steps'] * pr['ms_per_step_median'] / 60_000:.1f} min here "
                "(one run alone on the device).",
            ]
        lines.append("")
    return lines


def median(v: list[float]) -> float:
    return statistics.median(v)


def eval_lines(e: dict | None) -> list[str]:
    """Forward-only evaluation img/s by batch size (reslab.bench.evaluation)."""
    if not e or not e["img_s"]:
        return []
    batches = list(next(iter(e["img_s"].values())))
    auto = str(e["auto"])
    rows, slower = [], []
    for net, rates in e["img_s"].items():
        best = max(rates, key=lambda b: median(rates[b]))
        rows.append([net, *(f"{median(rates[b]):.0f}" for b in batches), f"batch {best}"])
        if auto in rates and best != auto:
            slower.append(f"{net} (batch {best}: {median(rates[best]) / median(rates[auto]):.2f}x batch {auto}'s rate)")
    verdict = (
        f"`trainer.eval_batch_size=auto` takes batch {auto} on this device: the fastest measured for every net."
        if not slower
        else f"`trainer.eval_batch_size=auto` takes batch {auto} on this device; faster here: "
        + "; ".join(slower)
        + "."
    )
    return [
        "### Evaluation batch (the forward-only passes of every run)",
        "",
        f"Images per second (median of {e['repeats']}) of reslab's final evaluation (reslab.training.evaluate over a "
        f"DeviceLoader, eval mode) of {e['images']} random images by batch size, {e['threads']} thread(s): the "
        "final evaluation, the Fig. 7 responses pass and the curve points are such passes (src/reslab/bench/"
        "evaluation.py). In eval mode the batch changes the numbers by float rounding only.",
        "",
        *table(("net", *(f"batch {b} img/s" for b in batches), "fastest"), rows),
        "",
        verdict,
        "",
    ]


def fusion_lines(f: dict | None) -> list[str]:
    """Seed fusion (reslab.bench.fusion): S separate nets vs one grouped net, paired per repeat."""
    if not f:
        return []
    ratios = [g / p for g, p in zip(f["img_s"]["grouped"], f["img_s"]["separate"])]
    gain = median(ratios)
    spread = f"per repeat {min(ratios):.3f}-{max(ratios):.3f}x"
    verdict = (
        f"Grouped is {gain:.3f}x separate (median of the repeats' paired ratios; {spread}): under the "
        f"{FUSION_PAYS:.2f}x that would pay for fusing seeds (and for the test that a fused seed trains exactly "
        "as the seed alone), so reslab trains each seed as its own run."
        if gain < FUSION_PAYS
        else f"Grouped is {gain:.3f}x separate (median of the repeats' paired ratios; "
        f"{spread}): seed fusion would pay on this device; reslab does not fuse seeds yet."
    )
    rows = [[k, f"{median(v):.0f}", f"{max(v):.0f}"] for k, v in f["img_s"].items()]
    return [
        "### Seed fusion (S seeds of one net as one grouped network)",
        "",
        f"{f['seeds']} nets with ResNet-20's convolution stack, batch {f['batch']} each, full SGD steps, "
        f"{f['threads']} thread(s), {f['steps']} steps per repeat, {f['repeats']} repeats interleaved: trained one "
        "after another (separate) or as one net with groups="
        f"{f['seeds']} convolutions and BN over {f['seeds']}x the channels (grouped); summed img/s "
        f"(src/reslab/bench/fusion.py). Rule, fixed before the first measurement: fuse only at >= {FUSION_PAYS:.2f}x.",
        "",
        *table(("layout", "img/s median", "img/s best"), rows),
        "",
        verdict,
        "",
    ]


def floor_lines(f: dict | None) -> list[str]:
    """reslab's own work per step (reslab.bench.floor), by batch."""
    if not f:
        return []
    rows = [
        [b, f"{median(v['reslab']):.2f}", f"{median(v['model']):.2f}", f"{v['own_ms']:.2f}"]
        for b, v in sorted(f["batches"].items(), key=lambda kv: int(kv[0]))
    ]
    return [
        "### reslab's own work per step (what bounds the ratios above)",
        "",
        "A trivial net (a 1x1 convolution and a linear classifier) trained in reslab's pipeline and alone on one "
        f"fixed batch, {f['steps']} timed steps, {f['repeats']} repeats interleaved; ms per step, medians. Its own "
        "step is the same in both, so the difference (median of the paired differences) is what reslab's code "
        "adds to any model's step at that batch: the batch gathered, normalised, padded, cropped and flipped on "
        "the device, Lightning's loop and hooks, the Classifier's device-side sums. A model stepping in t ms "
        "alone reaches at most t / (t + that) of its limit in reslab: the summary's 'own-work cap' "
        "(src/reslab/bench/floor.py).",
        "",
        *table(("batch", "reslab ms/step", "alone ms/step", "reslab's own ms/step"), rows),
        "",
    ]


def gap(c: dict, m: dict, s: dict) -> str:
    """What bounds a missed target: reslab's own work per step (bench.floor), the repeats' spread (variants of one
    repeat ran back to back), or an extra in the model's own step that every repeat shows."""
    rows = {v["name"]: v for v in c["variants"]}
    ratios = [a / b for a, b in zip(rows[m["limit_variant"]]["seconds"], rows["reslab"]["seconds"])]
    spread = f"{pct(min(ratios))}-{pct(max(ratios))}"
    extra = rows["reslab"]["ms_per_step_median"] - rows[m["limit_variant"]]["ms_per_step_median"]
    own, cap = m.get("own_ms"), m.get("own_cap")
    target = s["target_of_limit"]
    head = ""
    if own is not None:
        head = (
            f"reslab's own work per step measures {own:.1f} ms at this batch, which caps it at {pct(cap)} of "
            "this model alone"
            + (": the target is out of reach by reslab's own work. " if cap < target else ", above the target. ")
        )
    if max(ratios) >= target:
        return head + (
            f"The repeats' ratios span {spread}: the target lies within the spread of this bench's "
            "repeats, so the miss is not a measured gap at this precision (more steps or repeats would "
            "narrow it)."
        )
    if own is None:
        return head + (
            f"Every repeat is below it (per repeat {spread}): reslab's step costs {extra:.1f} ms more than "
            "the model's alone."
        )
    return head + (
        f"Every repeat is below it (per repeat {spread}): reslab's step costs {extra:.1f} ms more than the "
        f"model's alone, {max(own, 0.0):.1f} ms of it reslab's own work; the other {extra - max(own, 0.0):.1f} "
        "ms is the model's own forward, backward and update taking longer inside the fit than on one "
        "fixed batch (a fresh batch each step instead of one cached batch, or the machine's drift between "
        "variants run back to back: this bench does not separate the two), not reslab's per-step code."
    )


def lane_lines(lanes: dict | None) -> list[str]:
    if not lanes:
        return []
    rows = [[k, f"{max(v):.0f}", f"{sorted(v)[len(v) // 2]:.0f}"] for k, v in lanes["img_s"].items()]
    best = max(lanes["img_s"], key=lambda k: sorted(lanes["img_s"][k])[len(lanes["img_s"][k]) // 2])
    return [
        "### How a sweep should use the cores (JOBS)",
        "",
        f"{' '.join(lanes['overrides'])} at batch {lanes['batch']}: summed training img/s of the runs going on at "
        f"once, each its own process on one fixed batch for {lanes['seconds']:g} s, {lanes['repeats']} repeats "
        "interleaved (src/reslab/bench/lanes.py).",
        "",
        *table(("layout", "img/s best", "img/s median"), rows),
        "",
        f"Faster here: **{best}** (median). The sweeps' default on this machine follows this row: "
        f"`JOBS={lanes['cores']}` runs one thread per run.",
        "",
    ]


# Issue 28's goals for a whole smoke run (reslab-train from spawn to exit, the profile's own schedule), seconds.
SMOKE_GOALS = {"ResNet-20": 4.0, "plain-110": 8.0}
FIT = "fit (training steps and the probes' hooks)"


def fixed_cost_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Phases (the fit split into its probes' hooks and the rest) down, one column per measured run, median s."""
    rows = [r | {"phases": dict(r["phases"])} for r in rows]  # [[phase, s], ...] in the run's order
    cols = [f"{r['label']}, {r['profile']}, {r['steps']} step{'s' if r['steps'] != 1 else ''}" for r in rows]
    names = list(dict.fromkeys(n for r in rows for n in r["phases"]))
    hooks = list(dict.fromkeys(n for r in rows for n in r["hooks"]))
    body = []
    for n in names:
        if n == FIT:
            body.append(
                [
                    "fit: training steps and Lightning",
                    *(f"{r['phases'][n] - sum(r['hooks'].values()):.2f}" for r in rows),
                ]
            )
            body += [[f"fit: {h} hooks", *(f"{r['hooks'].get(h, 0.0):.2f}" for r in rows)] for h in hooks]
        else:
            body.append([n, *(f"{r['phases'].get(n, 0.0):.2f}" for r in rows)])
    body.append(["**total (spawn to exit)**", *(f"**{r['total']:.2f}**" for r in rows)])
    return ["phase (median s)", *cols], body


def biggest(r: dict, k: int = 3) -> str:
    """The run's k largest parts (the fit's hooks apart from its steps): what bounds its wall time."""
    parts = {n: v for n, v in dict(r["phases"]).items() if n != FIT}
    parts["training steps and Lightning"] = dict(r["phases"]).get(FIT, 0.0) - sum(r["hooks"].values())
    parts |= {f"{h} hooks": v for h, v in r["hooks"].items()}
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"{n} {v:.1f} s ({pct(v / r['total'])})" for n, v in top)


def import_lines(imp: dict | None) -> list[str]:
    """Who pays for a run's imports (reslab.bench.fixed_cost.import_breakdown), largest first."""
    if not imp or not imp.get("groups"):
        return []
    total = sum(v for _, v in imp["groups"])
    parts = "; ".join(f"{g} {v:.2f} s ({pct(v / total)})" for g, v in imp["groups"])
    return [
        f"**Imports of a run's process** (`python -X importtime -c 'import {imp['entry']}'`, each module's own time "
        f"summed by the package it belongs to, median of {imp['repeats']}): {total:.2f} s in all: {parts}. No run "
        "compiles, yet Lightning imports torch._dynamo; torchvision is imported only to decode a JPEG copy into the "
        "cache, and torchmetrics is pinned below 1.4, whose import adds scipy.signal.",
        "",
    ]


def fixed_cost_lines(fc: dict | None) -> list[str]:
    """The per-run fixed cost (reslab.bench.fixed_cost): the phases of whole smoke runs and one-step runs."""
    if not fc or not fc.get("rows"):
        return []
    cols, body = fixed_cost_rows(fc["rows"])
    goals = []
    for r in fc["rows"]:
        goal = SMOKE_GOALS.get(r["label"]) if r["profile"] == "smoke" and r["steps"] > 1 else None
        if goal is not None:
            met = r["total"] <= goal
            goals.append(
                f"- {r['label']} smoke run ({r['steps']} steps): {r['total']:.1f} s, goal <= {goal:.0f} s: "
                + ("**met**." if met else f"**not met**; what bounds it: {biggest(r)}.")
            )
        elif r["steps"] == 1:
            goals.append(
                f"- {r['label']}, {r['profile']} profile, one step: {r['total']:.1f} s; largest parts: {biggest(r)}."
            )
    n = fc["rows"][0]["repeats"]
    return [
        "### Per-run fixed cost (a run from spawn to exit, by phase)",
        "",
        f"`reslab-train` started as a user starts it, {n} repeat{'s' if n != 1 else ''} interleaved, medians; each "
        "phase as the run's own clock marked it (timing.json beside its result, src/reslab/run/phases.py): 'imports' "
        "runs from the process's start (interpreter start-up and imports), 'commit and exit' is what remains after "
        "the last mark (the commit, the interpreter's shutdown). The fit is split into the probes' Lightning hooks "
        f"and the rest (the steps, and Lightning's loop). Data: {fc['data']}. Code: src/reslab/bench/fixed_cost.py.",
        "",
        *table(cols, body),
        "",
        *goals,
        "",
        *import_lines(fc.get("imports")),
    ]


def lane_verdict(sweeps: list[dict], profile: str = "cpu") -> str:
    """Whether the `profile` sweeps' lanes meet LANE_TARGET, and if not what bounds them, from the measured shares."""
    cpu = [w for w in sweeps if w["profile"] == profile]
    if not cpu:
        return f"Goal: a `{profile}`-profile lane <= {LANE_TARGET:.2f} x its training time; no `{profile}` sweep here."
    share = lambda w, k: w[k] / (w["span"] * w["lanes"])  # noqa: E731
    span = lambda ws, f: f"{min(map(f, ws)):.2f}-{max(map(f, ws)):.2f}x" if ws else "none here"  # noqa: E731
    ok = [w for w in cpu if w["per_lane_ratio"] <= LANE_TARGET]
    # Training and the final evaluation alone: the ratio a lane would have if nothing else took any time.
    floor = lambda w: w["per_lane_ratio"] * (share(w, "training") + share(w, "evaluation"))  # noqa: E731
    ratio = lambda w: w["per_lane_ratio"]  # noqa: E731
    rng = lambda k: f"{pct(min(share(w, k) for w in cpu))}-{pct(max(share(w, k) for w in cpu))}"  # noqa: E731
    head = (
        f"Goal (issue 28): a `{profile}`-profile lane <= {LANE_TARGET:.2f} x its runs' training time. "
        f"{len(ok)} of {len(cpu)} `{profile}` sweeps meet it (per lane {span(cpu, ratio)})"
    )
    if len(ok) == len(cpu):
        return head + "."
    return (
        head + ". What bounds them, measured above: the final evaluation of the whole eval set, which every study "
        f"plan requires, takes {rng('evaluation')} of a lane, so that with nothing but training and it a lane would "
        f"stand at {span(cpu, floor)}; the Fig. 7 responses (over the full test set, after a BN recalibration: the "
        "depth, shortcut and block plans require them) are most of 'other in runs' "
        f"({rng('other')}): sweeps whose runs computed them stand at "
        f"{span([w for w in cpu if w.get('responses')], ratio)}, those whose runs did not at "
        f"{span([w for w in cpu if w.get('responses') is False], ratio)}. Start-up and idle time outside the runs "
        f"take {rng('outside')}; the rest of 'other in runs' (model set-up, the probes' tables, saving) is what "
        "separates a sweep without responses from its floor. Meeting the goal with the responses would take fewer "
        "evaluated or response images, which changes what the plans measure (a dated amendment each)."
    )


def sweep_lines(sweeps: list[dict], read_at: str | None = None) -> list[str]:
    """The whole-sweeps table; `read_at`: the commit that re-read the runs' files after the bench (else the bench's)."""
    if not sweeps:
        return []
    m = lambda s: f"{s / 60:.1f}"  # noqa: E731
    rows = [
        [
            f"{w['study']}/{w['profile']}",
            str(w["runs"]),
            str(w["lanes"]),
            m(w["span"]),
            m(w["training"]),
            f"{w['summed_ratio']:.2f}",
            f"{w['per_lane_ratio']:.2f}",
            *(pct(w[k] / (w["span"] * w["lanes"])) for k in ("training", "evaluation", "other", "outside")),
            w.get("eval_batch", "?"),
            {True: "yes", False: "no"}.get(w.get("responses"), "?"),
            w.get("source", "runs/"),
        ]
        for w in sweeps
    ]
    verdict = [lane_verdict(sweeps)]
    return [
        "### Whole sweeps (the runs under `runs/` and the runs archived in `experiments/archive/`)",
        "",
        "Wall time from the first run's start to the last run's end against the runs' summed pure training time, "
        "and where the lane time (lanes x wall) went: training, the final evaluation of the eval set, other work "
        "inside the runs (Fig. 7 responses, saving, set-up), outside the runs (start-up, data loading, idle tail). "
        "Read from the runs' files (src/reslab/report/sweep_time.py; an archive keeps its files' times"
        + (f", re-read at commit {read_at} after the bench" if read_at else "")
        + "); a study's runs trained on "
        "different days are separate sweeps (split where no run was in flight for 10+ min); a sweep that shared "
        "the machine with other work is slower than its own cost.",
        "",
        *table(
            (
                "sweep",
                "runs",
                "lanes",
                "wall min",
                "summed training min",
                "wall / summed training",
                "wall / training per lane",
                "training",
                "evaluation",
                "other in runs",
                "outside runs",
                "eval batch",
                "Fig. 7 responses",
                "read from",
            ),
            rows,
        ),
        "",
        *verdict,
        "",
    ]


def write(result: dict, out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    io.write_json(out_dir / device_file(result), result)
    results = [io.read_json(f) for f in sorted(out_dir.glob("*.json"))]
    results = [r for r in results if isinstance(r, dict) and r.get("schema") == SCHEMA]
    lines = [
        "# Benchmarks (generated by `make bench`)",
        "",
        "Images per second of training, per net and batch: the loop a user writes from the PyTorch CIFAR-10 "
        "tutorial (the baseline), the model alone stepping on one fixed batch (the machine's limit for that "
        "model), and reslab's pipeline as `reslab-train` runs it, with each of its optimisations toggled. "
        "Code: `src/reslab/bench/`; settings: `conf/bench.yaml`.",
        "",
    ]
    for r in sorted(results, key=lambda r: r["device_type"]):
        lines += section(r)
    if not any(r["device_type"] == "cuda" for r in results):
        lines += [
            "## GPU",
            "",
            "Not measured: no GPU on the machines this bench ran on. The code paths exist "
            "(`make bench DEVICE=cuda`): bf16 autocast (trainer.precision auto), channels_last, the uint8 data "
            "resident on the GPU with the crop and flip done there (DeviceLoader), no host sync per step "
            "(Classifier's device-side sums), plus fp32 rows and a torch.compile'd model-only row.",
            "",
        ]
    return io.write_text(out_dir / "README.md", "\n".join(lines))
