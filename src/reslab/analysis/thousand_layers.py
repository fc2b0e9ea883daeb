"""1,000 layers at initialisation: ResNet-1202 (He et al. 2016, section 4.2 and Table 6: 19.4M parameters) and its
plain twin, probed once, forward and backward, as they start training.

What it reports, per net: the parameter count (from the builder, beside `basic_resnet_params`, the count by formula),
the backward statistics of reslab.probes.signal from the same hooks (the RMS ratio and the gradient scale coefficient,
whole net and per-block rate, with their readings), and what float32 does: whether every block output, every
gradient and the loss are finite, or where the first overflow (inf) or NaN appears, and how many block outputs get a
gradient that is exactly zero (underflow). The RMS values are taken in float64 from the float32 tensors, so that a
large but finite tensor is not reported as an overflow of the probe's own arithmetic.

`python -m reslab.analysis.thousand_layers` (`make thousand-layers`) writes thousand_layers.csv (one row per block and
net), thousand_layers_nets.csv (one row per net and seed) and thousand_layers.md under reports/mechanism/. Inputs are
standard-normal images (the scale of per-pixel-normalised data) with random labels: no data needed.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from reslab import io
from reslab.errors import ReslabError, fail
from reslab.probes import signal as sig

FAMILIES = {"plain": "none", "resnet": "A"}  # family -> shortcut of reslab.models.resnet.CifarResNet


def basic_resnet_params(depth: int, widths=(16, 32, 64), num_classes: int = 10) -> int:
    """Parameters of He et al.'s CIFAR net with basic blocks and BN, option A or plain (both have the same): the stem
    conv (3 -> w0, 3x3, no bias) and its BN, n = (depth - 2) / 6 blocks per stage of two 3x3 convs (no bias) and two
    BNs (scale and shift: 2 per channel), the first conv of each later stage reading the previous stage's width, and
    the linear classifier with its bias."""
    from reslab.models.resnet import blocks_per_stage

    n = blocks_per_stage(depth)
    total, cin = 9 * 3 * widths[0] + 2 * widths[0], widths[0]
    for w in widths:
        total += 9 * cin * w + 9 * w * w + 4 * w  # the stage's first block
        total += (n - 1) * (18 * w * w + 4 * w)
        cin = w
    return total + cin * num_classes + num_classes


# A tensor's state in float32. Not "nan"/"inf": pandas reads "nan" back from a CSV as a missing value.
FINITE, HAS_INF, HAS_NAN = "finite", "has_inf", "has_nan"


def _state(t: torch.Tensor) -> str:
    if torch.isnan(t).any():
        return HAS_NAN
    if torch.isinf(t).any():
        return HAS_INF
    return FINITE


def probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[list[dict], dict]:
    """One forward and backward pass in train mode (BN on the batch's statistics, as the first training step).
    Returns one row per block output (RMS and max |.| of h and of dL/dh, their float32 state) and the loss's."""
    points = sig.block_outputs(model)
    fwd: dict[int, dict] = {}
    bwd: dict[int, dict] = {}

    def keep(i):
        def hook(_m, _inp, out):
            o = out.detach()
            fwd[i] = {
                "act_rms": float(o.double().pow(2).mean().sqrt()),
                "act_max": float(o.abs().amax()),
                "act_state": _state(o),
                "elements": o[0].numel(),
            }

            def grad(gr):
                g = gr.detach()
                bwd[i] = {
                    "grad_rms": float(g.double().pow(2).mean().sqrt()),
                    "grad_max": float(g.abs().amax()),
                    "grad_state": _state(g),
                }

            out.register_hook(grad)

        return hook

    handles = [m.register_forward_hook(keep(i)) for i, (_, m) in enumerate(points)]
    model.train()
    try:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    k = len(points)
    rows = [
        {
            "block": i,
            "name": name,
            "rel_depth": i / max(1, k - 1),
            **fwd.get(i, {}),
            **bwd.get(i, {"grad_rms": math.nan, "grad_max": math.nan, "grad_state": "missing"}),
        }
        for i, (name, _) in enumerate(points)
    ]
    return rows, {"loss": float(loss.detach()), "loss_state": _state(loss.detach())}


def float32_outcome(rows: list[dict], loss_state: str) -> dict:
    """ "finite", "overflow" (an inf, no NaN) or "nan", and the first block output where each pass lost finiteness
    (forward: from the input side; backward: from the output side, the way the gradient travels)."""
    states = [r["act_state"] for r in rows] + [r["grad_state"] for r in rows] + [loss_state]
    outcome = "NaN" if HAS_NAN in states else "overflow" if HAS_INF in states else "finite"
    first_fwd = next((r["block"] for r in rows if r["act_state"] != FINITE), None)
    first_bwd = next((r["block"] for r in reversed(rows) if r["grad_state"] != FINITE), None)
    zero = sum(1 for r in rows if r["grad_state"] == FINITE and r["grad_rms"] == 0)
    return {
        "float32": outcome,
        "first_nonfinite_forward": first_fwd,
        "first_nonfinite_backward": first_bwd,
        "zero_gradient_points": zero,
    }


def finite_part_gsc(rows: list[dict]) -> dict:
    """The GSC over the output-side run of block outputs whose activations and gradients are finite and non-zero
    (the part of the net the backward pass crossed before float32 gave out): its per-block rate and first block."""
    start = len(rows)
    while (
        start > 0
        and rows[start - 1]["grad_state"] == FINITE == rows[start - 1]["act_state"]
        and rows[start - 1]["grad_rms"] > 0
    ):
        start -= 1
    part = rows[start:]
    s = sig.summarise_gsc(*([r[c] for r in part] for c in ("grad_rms", "act_rms", "elements")))
    return {
        "finite_from_block": rows[start]["block"] if part else None,
        "finite_gsc_rate": s["gsc_rate"],
        "finite_blocks": s["blocks"],
    }


def measure(
    families, depth: int, batch: int, seeds, device: str = "cpu", log=print
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per block output per net and seed, one summary row per net and seed)."""
    from reslab.models.resnet import CifarResNet

    blocks, nets = [], []
    for family in families:
        for seed in seeds:
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            model = CifarResNet(depth=depth, shortcut=FAMILIES[family]).to(device)
            built = time.perf_counter() - t0
            g = torch.Generator().manual_seed(seed)
            x, y = torch.randn(batch, 3, 32, 32, generator=g), torch.randint(0, 10, (batch,), generator=g)
            rows, loss = probe(model, x.to(device), y.to(device))
            tag = {"family": family, "depth": depth, "init_seed": seed}
            blocks += [{**tag, **r} for r in rows]
            col = lambda c: [r[c] for r in rows]  # noqa: E731
            gsc = sig.summarise_gsc(col("grad_rms"), col("act_rms"), col("elements"))
            ratio = sig.summarise(col("grad_rms"))["ratio"]
            nets.append(
                {
                    **tag,
                    "params": sum(p.numel() for p in model.parameters()),
                    "params_by_formula": basic_resnet_params(depth),
                    "batch": batch,
                    **loss,
                    **float32_outcome(rows, loss["loss_state"]),
                    **finite_part_gsc(rows),
                    "ratio": ratio,
                    "ratio_reading": sig.reading(ratio),
                    "gsc": gsc["gsc"],
                    "log10_gsc": math.log10(gsc["gsc"]) if gsc["gsc"] > 0 else math.nan,
                    "gsc_rate": gsc["gsc_rate"],
                    "blocks": gsc["blocks"],
                    "gsc_reading": sig.gsc_reading(gsc["gsc_rate"]),
                    "build_s": built,
                    "probe_s": time.perf_counter() - t0 - built,
                    "device": device,
                    "torch": torch.__version__,
                }
            )
            log(
                f"[thousand-layers] {family}-{depth} seed={seed}: float32 {nets[-1]['float32']}, "
                f"{time.perf_counter() - t0:.0f} s"
            )
    return pd.DataFrame(blocks), pd.DataFrame(nets)


def markdown(nets: pd.DataFrame) -> str:
    depth = int(nets.depth.iloc[0])
    lines = [
        f"# {depth} layers at initialisation",
        "",
        "He et al. (CVPR 2016, section 4.2, Table 6) trained a 1202-layer CIFAR ResNet (19.4M parameters). Here "
        f"ResNet-{depth} (option A) and its plain twin are built by reslab's builder and probed once at "
        "initialisation (`reslab.analysis.thousand_layers`, which states the method): one forward and backward pass in "
        "float32, train-mode BN, standard-normal images with random labels. GSC = Philipp et al.'s gradient scale "
        "coefficient (reslab.probes.signal): whole net = input side over output side, per block = its geometric "
        "mean; its reading uses the depth study's band (experiments/depth.md, amendment of 2026-12-04) "
        f"[1/{sig.GSC_RATE_BAND:.3g}, {sig.GSC_RATE_BAND:.3g}] on the per-block "
        f"rate, the ratio's the band [1/{sig.BAND:g}, {sig.BAND:g}].",
        "",
        "| net | seed | params (builder / formula) | float32 | first non-finite (fwd / bwd block) | zero-gradient "
        "blocks | loss | RMS ratio | whole-net GSC (log10) | GSC per block | GSC reading | GSC per block over the "
        "finite output-side part |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    opt = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else str(int(v))  # noqa: E731
    for _, r in nets.iterrows():
        lines.append(
            f"| {r.family}-{depth} | {r.init_seed} | {r.params:,} / {r.params_by_formula:,} | {r.float32} | "
            f"{opt(r.first_nonfinite_forward)} / {opt(r.first_nonfinite_backward)} | {r.zero_gradient_points} "
            f"| {r.loss:.4g} | {r.ratio:.3g} | {r.log10_gsc:.3g} | {r.gsc_rate:.4g} | {r.gsc_reading} | "
            f"{r.finite_gsc_rate:.4g} ({sig.gsc_reading(r.finite_gsc_rate)}; blocks {opt(r.finite_from_block)}"
            f"..{int(r.blocks)}) |"
        )
    lines += [
        "",
        "Per block: [thousand_layers.csv](thousand_layers.csv) (RMS and max |.| of every block output and of "
        "its gradient, and their float32 state: finite, has_inf or has_nan).",
    ]
    for family, g in nets.groupby("family"):
        states = sorted(set(g.float32))
        lines.append(
            f"- {family}-{depth}: float32 "
            + (
                f"stays finite in every pass measured ({len(g)} init seeds)"
                if states == ["finite"]
                else "gives " + ", ".join(states)
            )
            + f"; the GSC reads {', '.join(sorted(set(g.gsc_reading)))}."
        )
    lines += ["", "## Verdict (computed)", "", verdict(nets)]
    lines += [
        "",
        f"Measured at commit {nets.commit.iloc[0]} (numerics version {nets.numerics.iloc[0]}) on "
        f"{nets.device_name.iloc[0]}, torch {nets.torch.iloc[0]}; {nets.init_seed.nunique()} init seed(s), batch "
        f"{int(nets.batch.iloc[0])}; building took {nets.build_s.max():.0f} s at most, one probe "
        f"{nets.probe_s.max():.0f} s at most. At initialisation: no data, no training, so no profile or data copy "
        "applies; whether these nets *train* is another measurement: [thousand_train.md](thousand_train.md) "
        "(`make thousand-layers-train DATA=...`, experiments/thousand-layers.md).",
    ]
    return "\n".join(lines) + "\n"


def verdict(nets: pd.DataFrame) -> str:
    """The seeds' claim, read at initialisation: "with shortcuts a net of 1,000+ layers can still be optimised; a plain
    net that deep cannot". What an init probe can say is whether the backward signal is usable: finite in float32 and
    read *neither* (not vanishing, not exploding) by the per-block GSC band, in every init seed measured."""
    depth = int(nets.depth.iloc[0])
    usable = {
        f: bool(((g.float32 == "finite") & (g.gsc_reading == "neither")).all()) for f, g in nets.groupby("family")
    }
    if set(usable) != {"plain", "resnet"}:
        return f"_Both families are needed for the contrast; measured: {', '.join(sorted(usable))}._"
    n = nets.groupby("family").init_seed.nunique().min()
    if usable["resnet"] and not usable["plain"]:
        return (
            f"**Consistent with the claim at initialisation**: ResNet-{depth}'s backward signal is finite and neither "
            f"vanishing nor exploding in all {n} init seed(s), plain-{depth}'s is not. A statement about the start of "
            "training only (He et al., Table 6, trained ResNet-1202; its first 200 steps here: thousand_train.md)."
        )
    if usable["resnet"] and usable["plain"]:
        return (
            f"**Not borne out at initialisation**: the plain-{depth} backward signal is usable too, so an init probe "
            "does not separate the families at this depth."
        )
    return (
        f"**Not borne out at initialisation**: ResNet-{depth}'s backward signal is not usable in every init seed "
        f"(float32: {', '.join(sorted(set(nets[nets.family == 'resnet'].float32)))}; GSC: "
        f"{', '.join(sorted(set(nets[nets.family == 'resnet'].gsc_reading)))})."
    )


def parse_nets(depth: int, families: str, seeds: str) -> tuple[list[str], list[int]]:
    """The command line's nets: a 6n+2 depth, families of FAMILIES and integer seeds (comma-separated), or a
    ReslabError naming the bad value and the valid ones."""
    from reslab.models.resnet import blocks_per_stage

    blocks_per_stage(depth)
    fams = [f.strip() for f in families.split(",") if f.strip()]
    bad = [f for f in fams if f not in FAMILIES]
    if bad or not fams:
        raise ReslabError(f"--families={families!r}: unknown {', '.join(bad) or 'empty list'}; valid: plain, resnet")
    try:
        ints = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        ints = []
    if not ints:
        raise ReslabError(f"--seeds={seeds!r} is not a comma-separated list of integers, e.g. 0,1,2")
    return fams, ints


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m reslab.analysis.thousand_layers", description=__doc__.split("\n\n")[0])
    ap.add_argument("--depth", type=int, default=1202, help="a 6n+2 depth (default 1202, He et al.'s)")
    ap.add_argument("--families", default="plain,resnet")
    ap.add_argument("--seeds", default="0,1,2", help="init seeds, comma-separated (default 0,1,2)")
    ap.add_argument("--batch", type=int, default=16, help="images in the probe's batch (default 16)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", default="reports/mechanism", help="folder of thousand_layers.{csv,md}")
    a = ap.parse_args(argv)
    try:
        families, seeds = parse_nets(a.depth, a.families, a.seeds)
        if a.batch < 2:
            raise ReslabError(f"--batch={a.batch}: BN in train mode needs at least 2 images")
    except ReslabError as err:
        fail(err)
    if a.threads:
        torch.set_num_threads(a.threads)
    from reslab.run import numerics, runinfo

    blocks, nets = measure(families, a.depth, a.batch, seeds, a.device)
    name = runinfo.device_name(a.device) + ("" if a.device.startswith("cuda") else f", {runinfo.cpu_name()}")
    nets = nets.assign(commit=runinfo.git_commit(), numerics=numerics.VERSION, device_name=name)
    out = Path(a.out)
    io.save_with(out / "thousand_layers.csv", lambda p: blocks.to_csv(p, index=False))
    io.save_with(out / "thousand_layers_nets.csv", lambda p: nets.to_csv(p, index=False))
    io.write_text(out / "thousand_layers.md", markdown(nets))
    print(f"wrote {out}/thousand_layers.csv, thousand_layers_nets.csv, thousand_layers.md")


if __name__ == "__main__":
    main()
