"""Do 1,000-layer nets train? ResNet-1202 and plain-1202, 200 SGD steps each (issue 25 item 7; the plan and its
rules: experiments/thousand-layers.md, written before any step ran).

The recipe is the depth study's `cpu` profile (conf/profile/cpu.yaml, read here, not copied) scaled to a smaller batch:
lr and warm-up lr times batch / the profile's batch (linear scaling, as the profile scaled the paper's), the same
momentum, weight decay, warm-up length and shape, and lr drop at the same fraction of the run; its training subset of
the data copy, per-pixel mean, pad-4 crop and flip, reslab's DeviceLoader. Per step it records the loss and error on
that step's batch (before its update), the lr, and whether the loss and every gradient are finite in float32. A run
stops at the first non-finite loss or gradient: the update would write it into the weights and every later step would
read it back. At the end: the test error on a class-balanced subset of the test set (eval-mode BN, running statistics).

`python -m reslab.analysis.thousand_train --data <CIFAR-10 copy>` (`make thousand-layers-train DATA=...`) keeps one
file per finished run under runs/thousand-train/ (an interrupted job resumes at the next run) and writes
thousand_train.csv (per step), thousand_train_nets.csv (per run), thousand_train.png and thousand_train.md under
reports/mechanism/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import stats

from reslab import io
from reslab.analysis.thousand_layers import FAMILIES, parse_nets
from reslab.errors import ReslabError, fail

# The plan's rules (experiments/thousand-layers.md).
FIRST, LAST = 20, 20  # T1: mean loss over the first 20 steps minus the mean over the last 20
CHANCE = 90.0  # T2: test error of a 10-class guess, %
TESTS = 4  # two tests per net, two nets: Bonferroni
ALPHA = 0.05
DESIGN_FALL = 0.2  # nats: the true loss fall T1's power is computed at
DESIGN_ERROR = 80.0  # %: the true test error T2's power is computed at


@dataclass(frozen=True)
class Recipe:
    batch: int
    steps: int
    lr: float
    warmup_steps: int
    warmup_lr: float
    warmup_shape: str
    momentum: float
    weight_decay: float
    nesterov: bool
    milestones: tuple[float, ...]
    gamma: float
    train_subset: int
    test_images: int
    profile_batch: int  # the cpu profile's batch, which lr is scaled from

    @classmethod
    def scaled_cpu(cls, batch: int, steps: int, test_images: int) -> Recipe:
        from omegaconf import OmegaConf

        from reslab.paths import CONF_DIR

        p = OmegaConf.load(CONF_DIR / "profile" / "cpu.yaml")
        k = batch / int(p.batch_size)
        return cls(
            batch=batch,
            steps=steps,
            lr=float(p.lr) * k,
            warmup_steps=int(p.warmup.steps),
            warmup_lr=float(p.warmup.lr) * k,
            warmup_shape=str(p.warmup.get("shape", "constant")),
            momentum=float(p.momentum),
            weight_decay=float(p.weight_decay),
            nesterov=bool(p.nesterov),
            milestones=tuple(float(m) for m in p.milestones),
            gamma=float(p.gamma),
            train_subset=int(p.train_subset),
            test_images=test_images,
            profile_batch=int(p.batch_size),
        )

    def lr_at(self, step: int) -> float:
        from reslab.training.schedule import lr_factor

        f = lr_factor(
            step,
            total=self.steps,
            milestones=list(self.milestones),
            gamma=self.gamma,
            warmup_steps=self.warmup_steps,
            warmup_factor=self.warmup_lr / self.lr,
            warmup_shape=self.warmup_shape,
        )
        return self.lr * f


def _finite_grads(model) -> bool:
    return all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)


def train_run(family: str, depth: int, seed: int, r: Recipe, data: dict, device: str = "cpu", log=print):
    """One net: (per-step rows, the run's summary)."""
    from reslab.data import DeviceLoader
    from reslab.models.resnet import CifarResNet

    torch.manual_seed(seed)
    model = CifarResNet(depth=depth, shortcut=FAMILIES[family]).to(device)
    opt = torch.optim.SGD(
        model.parameters(), lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay, nesterov=r.nesterov
    )
    loader = DeviceLoader(data["tx"], data["ty"], data["norm"], r.batch, train=True, seed=seed)
    rows, state, t0, step = [], "finite", time.perf_counter(), 0
    model.train()
    while step < r.steps and state == "finite":
        for x, y in loader:
            if step >= r.steps:
                break
            lr = r.lr_at(step)
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = F.cross_entropy(out, y)
            loss_ok = bool(torch.isfinite(loss))
            if loss_ok:
                loss.backward()
            grads_ok = loss_ok and _finite_grads(model)
            rows.append(
                {
                    "family": family,
                    "depth": depth,
                    "seed": seed,
                    "step": step,
                    "lr": lr,
                    "loss": float(loss.detach()),
                    "error": 100.0 * float((out.detach().argmax(1) != y).float().mean()),
                    "loss_finite": loss_ok,
                    "grads_finite": grads_ok,
                }
            )
            if not grads_ok:  # the update would write a NaN or inf into the weights
                state = "nonfinite_loss" if not loss_ok else "nonfinite_grad"
                break
            opt.step()
            step += 1
            if step % 20 == 0 or step == r.steps:
                el = time.perf_counter() - t0
                log(
                    f"[thousand-train] {family}-{depth} seed={seed}: step {step}/{r.steps}, loss "
                    f"{rows[-1]['loss']:.3f}, {el:.0f} s, ETA {el / step * (r.steps - step):.0f} s"
                )
    trained = time.perf_counter() - t0
    err = math.nan
    if state == "finite":
        from reslab.training.evaluate import evaluate

        test = DeviceLoader(data["ex"], data["ey"], data["norm"], 50, train=False)
        err = evaluate(model, test, "32-true")["test_error"]
    summary = {
        "family": family,
        "depth": depth,
        "seed": seed,
        "params": sum(p.numel() for p in model.parameters()),
        "steps_trained": step,
        "images_seen": step * r.batch,
        "stopped": state,  # finite | nonfinite_loss | nonfinite_grad
        "stopped_at_step": None if state == "finite" else step,
        "test_error": err,
        "test_images": len(data["ey"]),
        "train_s": trained,
        "total_s": time.perf_counter() - t0,
    }
    log(f"[thousand-train] {family}-{depth} seed={seed}: {state}, test error {err:.2f}%, {summary['total_s']:.0f} s")
    return rows, summary


# The plan's rules, as functions of the tables.


def loss_falls(steps: pd.DataFrame) -> pd.Series:
    """Per seed: mean loss over the first FIRST steps minus the mean over the last LAST steps (NaN for a short run)."""
    out = {}
    for seed, g in steps.groupby("seed"):
        loss = g.sort_values("step").loss
        whole = len(loss) >= FIRST + LAST and bool(np.isfinite(loss).all())
        out[seed] = loss.iloc[:FIRST].mean() - loss.iloc[-LAST:].mean() if whole else math.nan
    return pd.Series(out, dtype=float)


def one_sided(values, null: float, greater: bool) -> dict:
    """One-sided t-test of the mean against `null` (mean > null if `greater`), its level, and the one-sided
    confidence bound at that level."""
    v = np.asarray(values, float)
    level = ALPHA / TESTS
    n = len(v)
    if n < 2 or not np.isfinite(v).all():
        return {"n": n, "mean": float(np.mean(v)) if n else math.nan, "p": math.nan, "bound": math.nan, "level": level}
    m, sd = float(v.mean()), float(v.std(ddof=1))
    se = sd / math.sqrt(n)
    tq = stats.t.ppf(1 - level, n - 1)
    if se == 0:
        p = 0.0 if (m > null if greater else m < null) else 1.0
    else:
        t = (m - null) / se
        p = float(stats.t.sf(t, n - 1) if greater else stats.t.cdf(t, n - 1))
    return {"n": n, "mean": m, "sd": sd, "p": p, "bound": m - tq * se if greater else m + tq * se, "level": level}


def power(effect: float, sd: float, n: int) -> float:
    """P(a one-sided t-test at ALPHA / TESTS rejects) when the true mean is `effect` away from the null (noncentral
    t), with the observed sd."""
    if n < 2 or not np.isfinite(sd):
        return math.nan  # nothing to test: no seeds, or a run without the number (stopped)
    if sd == 0:
        return 1.0
    tq = stats.t.ppf(1 - ALPHA / TESTS, n - 1)
    return float(stats.nct.sf(tq, n - 1, effect / (sd / math.sqrt(n))))


def reading(steps: pd.DataFrame, nets: pd.DataFrame) -> dict:
    """One net's reading by the plan: trains | does not train | not shown at this budget, with T1 and T2."""
    stopped = nets[nets.stopped != "finite"]
    t1 = one_sided(loss_falls(steps).reindex(nets.seed).to_numpy(), 0.0, greater=True)
    t2 = one_sided(nets.test_error.to_numpy(), CHANCE, greater=False)
    if len(stopped) == len(nets):
        verdict = "does not train"
    elif stopped.empty and t1["p"] < t1["level"] and t2["p"] < t2["level"]:
        verdict = "trains"
    else:
        verdict = "not shown at this budget"
    return {
        "reading": verdict,
        "seeds": len(nets),
        "stopped": int(len(stopped)),
        "stopped_at": sorted(int(s) for s in stopped.stopped_at_step.dropna()),
        "t1": t1,
        "t2": t2,
        "t1_power": power(DESIGN_FALL, t1.get("sd", math.nan), t1["n"]),
        "t2_power": power(CHANCE - DESIGN_ERROR, t2.get("sd", math.nan), t2["n"]),
    }


def readings(steps: pd.DataFrame, nets: pd.DataFrame) -> dict[str, dict]:
    return {f: reading(steps[steps.family == f], g) for f, g in nets.groupby("family")}


def verdict(read: dict[str, dict], depth: int) -> str:
    if set(read) != {"plain", "resnet"}:
        return f"_Both families are needed for the contrast; measured: {', '.join(sorted(read)) or 'none'}._"
    r, p = read["resnet"]["reading"], read["plain"]["reading"]
    if r == "trains" and p == "does not train":
        return (
            f"**Consistent with the claim**: ResNet-{depth} trains in its first steps by the plan's rule and "
            f"plain-{depth} does not. A start-of-training reading: it says nothing of convergence or final error."
        )
    if (p == "trains" and r == "does not train") or (r == "does not train" and p == "does not train"):
        return f"**Contradicted at this budget**: ResNet-{depth} {r}, plain-{depth} {p}."
    return f"**Not separated at this budget**: ResNet-{depth} {r}, plain-{depth} {p}; {what_decides(read, depth)}"


def what_decides(read: dict[str, dict], depth: int) -> str:
    """For a net not shown to train: more seeds where a failed test lacked power at its design effect, else more
    steps (the test had the power to see a net that learnt; this one had not yet)."""
    parts = []
    for f, rd in sorted(read.items()):
        if rd["reading"] != "not shown at this budget":
            continue
        for name, test, pw, design in (
            ("T1", rd["t1"], rd["t1_power"], f"a true fall of {DESIGN_FALL} nats"),
            ("T2", rd["t2"], rd["t2_power"], f"a true error of {DESIGN_ERROR:g}%"),
        ):
            if not (test["p"] < test["level"]):
                more = "more steps would decide, not more seeds" if pw >= 0.8 else "more seeds would decide"
                parts.append(f"{f}-{depth}'s {name} does not reject, with power {_f(pw, '.2f')} at {design}: {more}")
    return ("; ".join(parts) or "more steps or seeds would decide") + "."


# Figure and report.


def plot(steps: pd.DataFrame, path: Path) -> Path:
    from reslab.report import plots

    plt = plots.plt
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = {"plain": "tab:red", "resnet": "tab:blue"}
    for (family, seed), g in steps.groupby(["family", "seed"]):
        g = g.sort_values("step")
        finite = g[np.isfinite(g.loss)]
        ax.plot(finite.step, finite.loss, color=colors[family], alpha=0.25, lw=0.7)
        ax.plot(
            finite.step,
            finite.loss.rolling(FIRST, min_periods=1).mean(),
            color=colors[family],
            lw=1.6,
            ls="--" if family == "plain" else "-",
            label=f"{family}-{int(g.depth.iloc[0])} seed {seed}",
        )
        bad = g[~g.grads_finite.astype(bool)]
        if not bad.empty:
            ax.scatter(
                bad.step,
                np.where(np.isfinite(bad.loss), bad.loss, math.log(10)),
                marker="x",
                s=60,
                color=colors[family],
                zorder=3,
            )
    ax.axhline(math.log(10), color="grey", lw=0.8, ls=":")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (batch)")
    ax.set_yscale("log")
    ax.legend(fontsize=7, ncol=2)
    return plots._save(fig, path)


def _f(v, fmt=".3g") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def markdown(steps: pd.DataFrame, nets: pd.DataFrame, r: Recipe, meta: dict) -> str:
    depth = int(nets.depth.iloc[0])
    read = readings(steps, nets)
    falls = {f: loss_falls(steps[steps.family == f]) for f in read}
    lines = [
        f"# {depth} layers, trained: the first {r.steps} steps",
        "",
        f"_CPU-sized start-of-training reading, not a paper reproduction: {r.steps} steps at batch {r.batch} = "
        f"{r.steps * r.batch:,} images seen (He et al. trained ResNet-{depth} for 64k steps at batch 128, 8.2M "
        "images). Plan and rules: experiments/thousand-layers.md (written before any step ran)._",
        "",
        f"Recipe: the depth study's `cpu` profile scaled to batch {r.batch} (lr {r.lr:g}, warm-up lr {r.warmup_lr:g} "
        f"for {r.warmup_steps} steps, {r.warmup_shape}; momentum {r.momentum:g}, weight decay {r.weight_decay:g}, lr "
        f"x{r.gamma:g} at {', '.join(f'{m:.0%}' for m in r.milestones)} of the run), float32, its {r.train_subset:,}-"
        f"image training subset; test error on {r.test_images:,} class-balanced test images. Seeds "
        f"{', '.join(map(str, sorted(nets.seed.unique())))}; data copy: {meta['copy']} ({meta['checksum']}); "
        f"{meta['device']}; torch {meta['torch']}; commit {meta['commit']}, numerics version {meta['numerics']}.",
        "",
        "![training loss per step](thousand_train.png)",
        "",
        "_How to read: the training loss on each step's batch (thin) and its running mean over 20 steps (thick), log "
        "axis; dashed = plain, solid = residual; x = the step a run stopped at (non-finite loss or gradient); dotted: "
        "ln 10, a uniform guess._",
        "",
        "| net | seed | params | steps trained | stopped | loss, first 20 steps | loss, last 20 steps | test error % | "
        "time s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, n in nets.sort_values(["family", "seed"]).iterrows():
        g = steps[(steps.family == n.family) & (steps.seed == n.seed)].sort_values("step")
        first = g.loss.iloc[:FIRST].mean()
        last = g.loss.iloc[-LAST:].mean() if len(g) >= FIRST + LAST else math.nan
        where = "-" if n.stopped == "finite" else f"{n.stopped} at step {int(n.stopped_at_step)}"
        lines.append(
            f"| {n.family}-{depth} | {n.seed} | {int(n.params):,} | {int(n.steps_trained)} | {where} | "
            f"{_f(first, '.4g')} | {_f(last, '.4g')} | {_f(n.test_error, '.2f')} | {n.total_s:.0f} |"
        )
    lines += ["", "## The plan's rules, applied", ""]
    for f, rd in sorted(read.items()):
        t1, t2 = rd["t1"], rd["t2"]
        last = steps[steps.family == f].groupby("seed").apply(lambda g: g.sort_values("step").loss.iloc[-LAST:].mean())
        end = (
            f" Loss over the last {LAST} steps {_f(float(last.mean()), '.3g')} (mean over seeds) against ln 10 = "
            f"{math.log(10):.3f}, a uniform guess."
            if rd["stopped"] == 0 and len(last)
            else ""
        )
        lines.append(
            f"- **{f}-{depth}: {rd['reading']}.** "
            + (
                f"Stopped by a non-finite loss or gradient in {rd['stopped']} of {rd['seeds']} seeds (steps "
                f"{', '.join(map(str, rd['stopped_at']))}). "
                if rd["stopped"]
                else "Finite at every step of every seed. "
            )
            + f"T1 (loss falls): per-seed falls {', '.join(_f(v, '.3g') for v in falls[f])} nats, mean "
            f"{_f(t1['mean'])}, one-sided {1 - t1['level']:.2%} lower bound {_f(t1['bound'])}, p {_f(t1['p'])}, power "
            f"at a true fall of {DESIGN_FALL} nats {_f(rd['t1_power'], '.2f')}. T2 (below chance): mean test error "
            f"{_f(t2['mean'], '.2f')}%, one-sided upper bound {_f(t2['bound'], '.2f')}%, p {_f(t2['p'])}, power at a "
            f"true error of {DESIGN_ERROR:g}% {_f(rd['t2_power'], '.2f')}." + end
        )
    lines += [
        "",
        f"Each test at one-sided alpha {ALPHA}/{TESTS} (Bonferroni over the two tests of each of the two nets).",
        "",
        "## Verdict (computed)",
        "",
        verdict(read, depth),
    ]
    return "\n".join(lines) + "\n"


def load_data(source: str, r: Recipe, device: str) -> dict:
    from reslab.data import load_cifar10
    from reslab.data.loader import Normalizer, split_arrays

    arrays = load_cifar10(source, os.environ.get("RESLAB_CACHE", ".cache"), download=False)
    tx, ty, ex, ey, _ = split_arrays(arrays, "test", r.train_subset, r.test_images, 0)
    norm = Normalizer.fit(tx, "pixel_mean")
    return {
        "tx": tx.to(device),
        "ty": ty.to(device),
        "ex": ex.to(device),
        "ey": ey.to(device),
        "norm": norm,
        "meta": arrays.meta,
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m reslab.analysis.thousand_train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 copy (file or folder), as DATA= of the sweeps")
    ap.add_argument("--depth", type=int, default=1202)
    ap.add_argument("--families", default="plain,resnet")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--runs", default="runs/thousand-train", help="one file per finished run (resume)")
    ap.add_argument("--out", default="reports/mechanism")
    a = ap.parse_args(argv)
    try:
        families, seeds = parse_nets(a.depth, a.families, a.seeds)
        if a.steps < FIRST + LAST:
            raise ReslabError(
                f"--steps={a.steps}: the rules compare the first {FIRST} and last {LAST} steps; "
                f"valid: >= {FIRST + LAST}"
            )
        if a.batch < 2:
            raise ReslabError(f"--batch={a.batch}: BN in train mode needs at least 2 images; valid: >= 2")
        if not Path(a.data).exists():
            raise ReslabError(
                f"--data={a.data!r} does not exist; valid: a CIFAR-10 copy (../shared/data/, read its README)"
            )
    except ReslabError as err:
        fail(err)
    from reslab.run import numerics, runinfo

    r = Recipe.scaled_cpu(a.batch, a.steps, a.test_images)
    data = load_data(a.data, r, a.device)
    runs = Path(a.runs)
    jobs = [(f, s) for f in families for s in seeds]
    key = {"recipe": asdict(r), "checksum": data["meta"]["checksum"], "numerics": numerics.VERSION}
    steps_all, nets = [], []
    t0 = time.perf_counter()
    for i, (family, seed) in enumerate(jobs, 1):
        done = runs / f"{family}-{a.depth}-s{seed}.json"
        if done.is_file() and json.loads(done.read_text()).get("key") == json.loads(json.dumps(key)):
            blob = json.loads(done.read_text())
            print(f"[thousand-train] run {i} of {len(jobs)}: {family}-{a.depth} seed={seed} done before, read back")
        else:
            print(
                f"[thousand-train] run {i} of {len(jobs)}: {family}-{a.depth} seed={seed} "
                f"({time.perf_counter() - t0:.0f} s so far)"
            )
            rows, summary = train_run(family, a.depth, seed, r, data, a.device)
            blob = {"key": key, "summary": summary, "steps": rows}
            io.write_json(done, blob)
        steps_all += blob["steps"]
        nets.append(blob["summary"])
    steps, nets = pd.DataFrame(steps_all), pd.DataFrame(nets)
    name = runinfo.device_name(a.device) + ("" if a.device.startswith("cuda") else f", {runinfo.cpu_name()}")
    meta = {
        **data["meta"],
        "device": name,
        "torch": torch.__version__,
        "commit": runinfo.git_commit(),
        "numerics": numerics.VERSION,
    }
    out = Path(a.out)
    io.save_with(out / "thousand_train.csv", lambda p: steps.to_csv(p, index=False))
    io.save_with(
        out / "thousand_train_nets.csv",
        lambda p: nets.assign(**{k: meta[k] for k in ("commit", "numerics", "device", "checksum")}).to_csv(
            p, index=False
        ),
    )
    plot(steps, out / "thousand_train.png")
    io.write_text(out / "thousand_train.md", markdown(steps, nets, r, meta))
    print(f"wrote {out}/thousand_train.csv, thousand_train_nets.csv, thousand_train.png, thousand_train.md")


if __name__ == "__main__":
    main()
