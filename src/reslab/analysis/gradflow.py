"""`reslab-gradflow`: the backward signal by depth at initialisation, over init seeds and batches.

Writes two CSVs: per-layer weight-gradient norms (`out`) and the size-free backward signal, the RMS of
dL/dh and of h at every block output (`out_signal`, reslab.probes.signal; the gradient scale coefficient is
computed from them), for the study's nets and for the positive controls (nets built to vanish or explode:
scaled-init nets for the RMS ratio, reslab.probes.controls' chains for the GSC), which the same code must
classify correctly."""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import pandas as pd
import torch
from hydra import compose
from omegaconf import DictConfig, open_dict

from reslab import io
from reslab.data import DeviceLoader, load_cifar10
from reslab.data.loader import Normalizer, split_arrays
from reslab.errors import bad_choice, one_line_errors
from reslab.models import build_model
from reslab.paths import CONF_DIR
from reslab.probes import gradient_norms
from reslab.probes.controls import CONTROLS
from reslab.probes.signal import backward_signal
from reslab.run import runinfo
from reslab.training.device import pick_device, set_threads
from reslab.training.recorder import fmt_seconds


def model_cfg(family: str, depth: int, norm: str, init_scale: float = 1.0, variant: str | None = None) -> DictConfig:
    cfg = compose(config_name="train", overrides=[f"variant={variant}" if variant else f"model={family}"]).model
    with open_dict(cfg):
        cfg.depth, cfg.norm = depth, norm
        if init_scale != 1.0:
            cfg.init_scale = float(init_scale)
    return cfg


def measure(cfg: DictConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    set_threads(cfg)
    g = cfg.gradflow
    device = torch.device(pick_device(cfg.device))
    arrays = load_cifar10(cfg.data.source, cfg.data.cache_dir, cfg.data.download)
    tx, ty, *_ = split_arrays(arrays, cfg.data.split, None, None)
    loader = DeviceLoader(
        tx.to(device),
        ty.to(device),
        Normalizer.fit(tx, cfg.data.normalize),
        g.batch_size,
        train=True,
        seed=0,
        pad=cfg.data.pad,
        flip=cfg.data.flip,
    )
    batches = []
    for i, b in enumerate(loader):  # the same images for every net: only the architecture and init vary
        if i == g.batches:
            break
        batches.append(b)
    jobs = [(f, d, n, s, 1.0, "") for f in g.families for n in g.norms for d in g.depths for s in g.init_seeds]
    jobs += [
        (c.family, int(c.depth), c.norm, s, float(c.init_scale), c.expect)
        for c in (g.get("controls") or [])
        for s in g.init_seeds
    ]
    # The GSC's controls (reslab.probes.controls): chains built to explode or vanish in relative terms; `depth` is
    # their number of blocks.
    for c in g.get("gsc_controls") or []:
        if c.kind not in CONTROLS:  # before any net is measured
            raise bad_choice("gradflow.gsc_controls kind", c.kind, CONTROLS)
    jobs += [
        (f"control-{c.kind}", int(c.blocks), "none", s, 1.0, c.expect)
        for c in (g.get("gsc_controls") or [])
        for s in g.init_seeds
    ]
    rows, signal, t0 = [], [], time.perf_counter()
    for i, (family, depth, norm, seed, scale, expect) in enumerate(jobs, 1):
        torch.manual_seed(seed)
        gsc_control = family.startswith("control-")
        if gsc_control:
            model = CONTROLS[family.removeprefix("control-")](blocks=depth).to(device)
        else:
            model = build_model(model_cfg(family, depth, norm, scale)).to(device)
        tag = {
            "family": family,
            "depth": depth,
            "norm": norm,
            "init_seed": seed,
            "init_scale": scale,
            "control": expect,
            "control_statistic": ("gsc" if gsc_control else "ratio") if expect else "",
        }
        if not expect:  # the weight-gradient table is the study's nets' only
            for r in gradient_norms(model, batches):
                rows.append({**tag, **r})
        for r in backward_signal(model, batches):
            signal.append({**tag, **r})
        el = time.perf_counter() - t0
        what = f"control ({expect}, init x{scale:g})" if expect else ""
        print(
            f"[gradflow {i}/{len(jobs)}] {family}-{depth} norm={norm} seed={seed} {what}| ETA "
            f"{fmt_seconds(el / i * (len(jobs) - i))}",
            flush=True,
        )
    # The shortcut study's variants (conf/variant/), with BN as trained: backward and forward signal.
    vjobs = [
        (v, d, s) for d in (g.get("variant_depths") or []) for v in (g.get("variants") or []) for s in g.init_seeds
    ]
    variants, t0 = [], time.perf_counter()
    for i, (variant, depth, seed) in enumerate(vjobs, 1):
        torch.manual_seed(seed)
        model = build_model(model_cfg("resnet", depth, "bn", variant=variant)).to(device)
        tag = {
            "family": variant,
            "variant": variant,
            "depth": depth,
            "norm": "bn",
            "init_seed": seed,
            "init_scale": 1.0,
            "control": "",
        }
        variants += [{**tag, **r} for r in backward_signal(model, batches)]
        el = time.perf_counter() - t0
        print(
            f"[gradflow variants {i}/{len(vjobs)}] {variant}-{depth} seed={seed} | ETA "
            f"{fmt_seconds(el / i * (len(vjobs) - i))}",
            flush=True,
        )
    meta = {
        "batches": g.batches,
        "batch_size": g.batch_size,
        "data_copy": arrays.meta["copy"],
        "device": runinfo.device_name(str(device)),
        "git_commit": runinfo.git_commit(),
    }
    return (
        pd.DataFrame(rows).assign(**meta),
        pd.DataFrame(signal).assign(**meta),
        pd.DataFrame(variants).assign(**meta),
    )


@hydra.main(config_path=str(CONF_DIR), config_name="gradflow", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> None:
    grads, signal, variants = measure(cfg)
    outs = [(grads, Path(cfg.gradflow.out)), (signal, Path(cfg.gradflow.out_signal))]
    if len(variants):
        outs.append((variants, Path(cfg.gradflow.out_variants)))
    for df, out in outs:
        io.save_with(out, lambda p: df.to_csv(p, index=False))
        print(f"wrote {out} ({len(df)} rows)")


if __name__ == "__main__":
    main()
