"""`reslab-reprobe <study> [profile=cpu] [runs=runs] [depths=20,56,110]`: recompute the post-training
probes (the Fig. 7 layer responses) of finished runs from their saved weights, without retraining.

For runs trained before a probe changed definition: reads each run's config.yaml and model.pt, rebuilds
its data split, and rewrites responses.csv atomically. Training results are not touched.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from omegaconf import OmegaConf

from reslab import io, options
from reslab.data import load_cifar10
from reslab.data.loader import Normalizer, split_arrays
from reslab.errors import ReslabError, one_line_errors
from reslab.models import build_model
from reslab.probes.responses import layer_responses
from reslab.report.results import run_dirs
from reslab.training.recorder import fmt_seconds


def reprobe(run: Path, data_cache: dict) -> int:
    cfg = OmegaConf.load(run / "config.yaml")
    weights = run / "model.pt"
    if not weights.is_file():
        raise ReslabError(f"{run}: no model.pt (trainer.save_weights was off); cannot recompute its probes")
    model = build_model(cfg.model)
    model.load_state_dict(torch.load(weights, map_location="cpu"))
    key = (
        cfg.data.source,
        cfg.data.split,
        cfg.profile.get("train_subset"),
        cfg.profile.get("eval_subset"),
        cfg.data.subset_seed,
        cfg.data.normalize,
    )
    if key not in data_cache:
        arrays = load_cifar10(cfg.data.source, cfg.data.cache_dir, False)
        tx, _, ex, _, _ = split_arrays(
            arrays,
            cfg.data.split,
            cfg.profile.get("train_subset"),
            cfg.profile.get("eval_subset"),
            cfg.data.subset_seed,
        )
        norm = Normalizer.fit(tx, cfg.data.normalize)
        n_calib = int(cfg.probes.get("response_calib_images", 2000))
        data_cache[key] = (norm(ex), norm(tx[:n_calib]))
    ex, calib = data_cache[key]
    rows = layer_responses(model, ex, calib=calib)
    io.save_with(run / "responses.csv", lambda f: pd.DataFrame(rows).to_csv(f, index=False))
    return len(rows)


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="reslab-reprobe", description=__doc__)
    ap.add_argument("study")
    ap.add_argument("overrides", nargs="*", help="profile=..., runs=..., depths=20,56,110")
    a = ap.parse_args(argv)
    opts = options.parse(a.overrides, {"profile": "cpu", "runs": "runs", "depths": ""})
    try:
        depths = {int(d) for d in opts["depths"].split(",") if d}
    except ValueError:
        raise ReslabError(f"depths={opts['depths']!r} is not a comma-separated list of integers") from None
    dirs = run_dirs(Path(opts["runs"]), a.study, opts["profile"])
    if depths:
        dirs = [d for d in dirs if int(io.read_json(d / "result.json")["depth"]) in depths]
    dirs = [d for d in dirs if io.read_json(d / "result.json").get("status") == "ok"]
    if not dirs:
        raise ReslabError(f"no finished runs to reprobe under {opts['runs']}/{a.study}/{opts['profile']}")
    cache, t0 = {}, time.perf_counter()
    for i, d in enumerate(dirs, 1):
        n = reprobe(d, cache)
        el = time.perf_counter() - t0
        print(
            f"[reprobe {i}/{len(dirs)}] {d.name}: {n} layers | ETA {fmt_seconds(el / i * (len(dirs) - i))}", flush=True
        )


if __name__ == "__main__":
    main()
