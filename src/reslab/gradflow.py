"""`reslab-gradflow`: gradient norms by layer at initialisation, over init seeds and batches."""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import pandas as pd
import torch
from hydra import compose
from omegaconf import DictConfig, open_dict

from reslab import io, runinfo
from reslab.data import DeviceLoader, load_cifar10
from reslab.data.loader import Normalizer, split_arrays
from reslab.errors import one_line_errors
from reslab.models import build_model
from reslab.paths import CONF_DIR
from reslab.probes import gradient_norms
from reslab.recorder import fmt_seconds
from reslab.train import pick_device, set_threads


def model_cfg(family: str, depth: int, norm: str) -> DictConfig:
    cfg = compose(config_name="train", overrides=[f"model={family}"]).model
    with open_dict(cfg):
        cfg.depth, cfg.norm = depth, norm
    return cfg


def measure(cfg: DictConfig) -> pd.DataFrame:
    set_threads(cfg)
    g = cfg.gradflow
    device = torch.device(pick_device(cfg.device))
    arrays = load_cifar10(cfg.data.source, cfg.data.cache_dir, cfg.data.download)
    tx, ty, *_ = split_arrays(arrays, cfg.data.split, None, None)
    loader = DeviceLoader(tx.to(device), ty.to(device), Normalizer.fit(tx, cfg.data.normalize), g.batch_size,
                          train=True, seed=0, pad=cfg.data.pad, flip=cfg.data.flip)
    batches = []
    for i, b in enumerate(loader):  # the same images for every net: only the architecture and init vary
        if i == g.batches:
            break
        batches.append(b)
    jobs = [(f, d, n, s) for f in g.families for n in g.norms for d in g.depths for s in g.init_seeds]
    rows, t0 = [], time.perf_counter()
    for i, (family, depth, norm, seed) in enumerate(jobs, 1):
        torch.manual_seed(seed)
        model = build_model(model_cfg(family, depth, norm)).to(device)
        for r in gradient_norms(model, batches):
            rows.append({"family": family, "depth": depth, "norm": norm, "init_seed": seed, **r})
        el = time.perf_counter() - t0
        print(f"[gradflow {i}/{len(jobs)}] {family}-{depth} norm={norm} seed={seed} | ETA {fmt_seconds(el / i * (len(jobs) - i))}",
              flush=True)
    df = pd.DataFrame(rows)
    df["batches"], df["batch_size"] = g.batches, g.batch_size
    df["data_copy"], df["device"] = arrays.meta["copy"], runinfo.device_name(str(device))
    df["git_commit"] = runinfo.git_commit()
    return df


@hydra.main(config_path=str(CONF_DIR), config_name="gradflow", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> None:
    df = measure(cfg)
    out = Path(cfg.gradflow.out)
    io.save_with(out, lambda p: df.to_csv(p, index=False))
    print(f"wrote {out} ({len(df)} rows)")


if __name__ == "__main__":
    main()
