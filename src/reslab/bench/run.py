"""Every case (a net at a batch) x every variant x `bench.repeats`, in one process.

The repeats are interleaved: repeat r times every variant of a case once, in an order rotated by r, before repeat
r + 1 starts, so that a drift of the machine (another load, the clock) touches every variant alike; the matmul peak
is measured once per repeat as well. Within a case every variant trains the same net (same init) at the same batch
for the same `warmup_steps` untimed and `steps` timed steps; min and median are over the repeats.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig, OmegaConf

from reslab.bench import fixed_cost, sweeps
from reslab.bench.baseline import lightning_fit, torch_loop, tutorial_loader
from reslab.bench.data import as_tensors, images_needed, random_cifar
from reslab.bench.evaluation import eval_rows
from reslab.bench.floor import floor_rows
from reslab.bench.fusion import fusion_rows
from reslab.bench.limit import matmul_peak, model_only
from reslab.bench.pipeline import POINTS, reslab_fit, study_points
from reslab.errors import ReslabError
from reslab.models import build_model
from reslab.run import runinfo
from reslab.summary import count_flops, count_params
from reslab.training.device import pick_device, pick_precision, set_threads

GROUPS = ("baseline", "limit", "reslab")
DTYPES = {"32-true": torch.float32, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
TRAIN_FLOPS_PER_FORWARD = 3  # backward ~ 2 forwards: the gradients of the activations and of the weights
FLOPS_CONVENTION = (
    f"training FLOPs per image = {TRAIN_FLOPS_PER_FORWARD} x forward FLOPs (the backward pass costs "
    "about two forwards: gradients of activations and of weights); forward FLOPs of one 32x32 image "
    "from reslab.summary.count_flops (torch.utils.flop_counter: a multiply-add = 2 FLOPs; convolutions "
    "and matmuls only, not BN, ReLU, pooling or the optimizer)"
)
DATA = (
    "random CIFAR-shaped data (uint8 images, labels 0..9; one draw per case, shared by every variant): the speed "
    "of a step does not depend on the pixels, so no dataset is needed"
)


@dataclass
class Variant:
    name: str
    group: str  # baseline | limit | reslab
    what: str
    precision: str
    measure: Callable[[int, int], float]  # (warmup, steps) -> seconds of the timed steps
    compiled: bool = False
    costs: object = None  # reslab's ProbeCosts, on the variant whose probes a study pays for
    seconds: list = field(default_factory=list)
    probe_seconds: list = field(default_factory=list)


def dtype_name(precision: str) -> str:
    return {"32-true": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}.get(precision, precision)


def check(b: DictConfig) -> None:
    for key in ("warmup_steps", "repeats", "probe_repeats", "peak_calls", "min_images"):
        if not isinstance(b.get(key), int) or b[key] < 1:
            raise ReslabError(
                f"bench.{key}={b.get(key)!r} is not valid; valid: an integer >= 1"
                + (" (the timed window starts at the end of a warm-up step)" if key == "warmup_steps" else "")
            )
    if b.steps is not None and (not isinstance(b.steps, int) or b.steps < 1):
        raise ReslabError(f"bench.steps={b.steps!r} is not valid; valid: null (each case's steps) or an integer >= 1")
    if not b.cases:
        raise ReslabError("bench.cases is empty; valid: a list of {label, overrides, batch, steps}")
    for c in b.cases:
        if not isinstance(c.get("batch"), int) or c.batch < 1 or not isinstance(c.get("steps"), int) or c.steps < 1:
            raise ReslabError(
                f"bench case {c.get('label')!r}: batch={c.get('batch')!r}, steps={c.get('steps')!r}; "
                "valid: integers >= 1"
            )
    fc = b.get("fixed_cost")
    if fc and (not isinstance(fc.get("repeats"), int) or fc.repeats < 1 or not fc.get("cases") or not fc.get("runs")):
        raise ReslabError(
            f"bench.fixed_cost={OmegaConf.to_container(fc)!r} is not valid; valid: null, or cases, runs and "
            "repeats >= 1"
        )
    for w in list(b.baseline_workers) + [b.lightning_workers]:
        if not isinstance(w, int) or w < 0:
            raise ReslabError(f"bench workers {w!r} is not valid; valid: an integer >= 0")


def case_model(overrides) -> DictConfig:
    """The model config that `reslab-train <overrides>` trains (e.g. block=vovnet-0.27M: the block study's net)."""
    from hydra import compose

    try:
        return compose("train", overrides=list(overrides)).model
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ReslabError(f"bench case overrides {list(overrides)!r} do not compose: {first}") from None


def variants(
    cfg: DictConfig,
    model_cfg,
    batch: int,
    images,
    labels,
    device: str,
    precision: str,
    scratch: Path,
    probe_counts: dict | None,
) -> list[Variant]:
    b, p = cfg.bench, cfg.profile
    dev = torch.device(device)
    opt = {k: p[k] for k in ("lr", "momentum", "weight_decay", "nesterov")}
    seed = int(cfg.seed)

    def net():
        torch.manual_seed(seed)
        return build_model(model_cfg)

    out = [
        Variant(
            f"loop-w{w}",
            "baseline",
            f"tutorial: DataLoader ({w} workers) + torch loop",
            "32-true",
            torch_loop(net(), opt, tutorial_loader(images, labels, batch, w, seed), dev),
        )
        for w in b.baseline_workers
    ]
    lw = int(b.lightning_workers)
    out.append(
        Variant(
            f"lightning-w{lw}",
            "baseline",
            f"tutorial: DataLoader ({lw} workers) + default Lightning fit",
            "32-true",
            lightning_fit(net(), opt, tutorial_loader(images, labels, batch, lw, seed), dev),
        )
    )
    for prec in sorted({"32-true", precision}):
        for cl in (False, True):
            layout = "channels_last" if cl else "NCHW"
            out.append(
                Variant(
                    f"model-{'cl' if cl else 'nchw'}-{dtype_name(prec)}",
                    "limit",
                    f"model alone, fixed batch, {layout}, {dtype_name(prec)}",
                    prec,
                    model_only(net(), opt, batch, dev, cl, prec),
                )
            )
    if b.compile and device == "cuda":
        out.append(
            Variant(
                f"model-cl-{dtype_name(precision)}-compiled",
                "limit",
                f"model alone, fixed batch, channels_last, {dtype_name(precision)}, torch.compile "
                "(not a reslab option)",
                precision,
                model_only(net(), opt, batch, dev, True, precision, compiled=True),
                compiled=True,
            )
        )
    cl = bool(cfg.trainer.channels_last)
    tx, ty = as_tensors(images, labels)
    measure, costs = reslab_fit(cfg, net(), tx, ty, batch, device, cl, precision, scratch / "reslab", probe_counts)
    out.append(
        Variant(
            "reslab",
            "reslab",
            f"reslab as train.py runs it: DeviceLoader + Classifier + Trainer, "
            f"{'channels_last' if cl else 'NCHW'}, {precision}",
            precision,
            measure,
            costs=costs,
        )
    )
    other = "NCHW" if cl else "channels_last"
    out.append(
        Variant(
            f"reslab-{other}",
            "reslab",
            f"reslab with trainer.channels_last={str(not cl).lower()}",
            precision,
            reslab_fit(cfg, net(), tx, ty, batch, device, not cl, precision, scratch / "reslab-other")[0],
        )
    )
    if precision != "32-true":
        out.append(
            Variant(
                "reslab-fp32",
                "reslab",
                "reslab with trainer.precision=32-true",
                "32-true",
                reslab_fit(cfg, net(), tx, ty, batch, device, cl, "32-true", scratch / "reslab-fp32")[0],
            )
        )
    return out


def stats(seconds: list[float], batch: int, steps: int) -> dict:
    per_step = [s / steps for s in seconds]
    med, best = statistics.median(per_step), min(per_step)
    return {
        "seconds": seconds,
        "ms_per_step_median": 1000 * med,
        "img_s_median": batch / med,
        "img_s_best": batch / best,
    }


def probe_row(main: Variant, counts: dict, batch: int, steps: int) -> dict:
    """The pipeline's step plus the study's probe points and checkpoints spread over its steps, per repeat (the
    points' median seconds over the repeats that timed them, bench.probe_repeats)."""
    point_median = {k: statistics.median(p[k] for p in main.probe_seconds) for k in main.probe_seconds[0]}
    per_run = sum(counts[k] * point_median.get(k, 0.0) for k in POINTS) / counts["steps"]
    per_step = [s / steps + per_run for s in main.seconds]
    med = statistics.median(per_step)
    return {
        "counts": counts,
        "point_seconds_median": point_median,
        "ms_per_step_median": 1000 * med,
        "img_s_median": batch / med,
        "img_s_best": batch / min(per_step),
        "overhead": med / statistics.median(s / steps for s in main.seconds) - 1,
    }


def summary(case: dict, b: DictConfig, floor: dict | None = None) -> dict:
    rows = {v["name"]: v for v in case["variants"]}
    reslab = rows["reslab"]
    limits = [
        v
        for v in case["variants"]
        if v["group"] == "limit" and not v["compiled"] and v["precision"] == reslab["precision"]
    ]
    limit = max(limits, key=lambda v: v["img_s_median"])
    base = max((v for v in case["variants"] if v["group"] == "baseline"), key=lambda v: v["img_s_median"])
    r_base, r_limit = reslab["img_s_median"] / base["img_s_median"], reslab["img_s_median"] / limit["img_s_median"]
    own = (floor or {}).get("batches", {}).get(str(case["batch"]), {}).get("own_ms")
    # reslab's own work per step (bench.floor) added to the model's step: the share of the limit reslab can reach.
    cap = None if own is None else limit["ms_per_step_median"] / (limit["ms_per_step_median"] + max(own, 0.0))
    return {
        "reslab_img_s": reslab["img_s_median"],
        "limit_img_s": limit["img_s_median"],
        "limit_variant": limit["name"],
        "baseline_img_s": base["img_s_median"],
        "baseline_variant": base["name"],
        "reslab_over_baseline": r_base,
        "reslab_over_limit": r_limit,
        "target_met": r_limit >= float(b.target_of_limit),
        "baseline_as_fast": base["img_s_median"] >= (1 - float(b.as_fast_within)) * reslab["img_s_median"],
        "mfu_reslab": reslab["mfu_median"],
        "mfu_limit": limit["mfu_median"],
        "own_ms": own,
        "own_cap": cap,
    }


def cpu_info() -> dict:
    model, flags = "", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            if key.strip() == "flags" and not flags:
                flags = [f for f in value.split() if f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")]
    except OSError:
        pass
    return {"model": model or "unknown", "cores": os.cpu_count(), "flags": flags}


def thread_info(threads_set: int) -> dict:
    backend = next(
        (
            line.split(":", 1)[1].strip()
            for line in torch.__config__.parallel_info().splitlines()
            if line.startswith("ATen parallel backend")
        ),
        "unknown",
    )
    return {
        "torch_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "threads_set": threads_set,
        "backend": backend,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "MKL_NUM_THREADS": os.environ.get("MKL_NUM_THREADS"),
        "dataloader_workers": "each worker process runs torch with 1 thread (PyTorch's default in workers)",
    }


def run(cfg: DictConfig) -> dict:
    import lightning

    from reslab.train import quiet_lightning

    b = cfg.bench
    check(b)
    quiet_lightning()
    for msg in (
        ".*does not have many workers.*",
        ".*IterableDataset.*has `__len__` defined.*",
        ".*tensorboard.*",
        ".*smaller than the logging interval.*",
        ".*LeafSpec.*",
        ".*litlogger.*",
        ".*`srun` command.*",
        ".*`validation_step` but have no `val_dataloader`.*",
    ):
        warnings.filterwarnings("ignore", msg)
    threads = set_threads(cfg)
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.trainer.precision, device)
    dev = torch.device(device)
    warmup, repeats = int(b.warmup_steps), int(b.repeats)
    probe_repeats = min(repeats, int(b.get("probe_repeats") or repeats))
    t_start = time.perf_counter()
    peaks: dict[str, list[float]] = {}
    cases = []
    with tempfile.TemporaryDirectory(prefix="reslab-bench-") as tmp:
        for ci, case in enumerate(b.cases):
            batch, steps = int(case.batch), int(b.steps or case.steps)
            model_cfg = case_model(case.overrides)
            images, labels = random_cifar(images_needed(batch, warmup, steps, int(b.min_images)), seed=ci)
            counts = study_points(cfg, batch) if batch == int(cfg.profile.batch_size) else None
            vs = variants(cfg, model_cfg, batch, images, labels, device, precision, Path(tmp) / str(ci), counts)
            for r in range(repeats):
                for v in vs[r % len(vs) :] + vs[: r % len(vs)]:
                    if v.costs is not None:  # a probe point costs the same in every repeat: timed in the first few
                        v.costs.enabled = r < probe_repeats
                    v.seconds.append(v.measure(warmup, steps))
                    if v.costs is not None and v.costs.enabled:
                        v.probe_seconds.append(dict(v.costs.seconds))
                for prec in sorted({v.precision for v in vs}):
                    peaks.setdefault(prec, []).append(
                        matmul_peak(dev, DTYPES[prec], int(b.peak_size[device]), int(b.peak_calls))
                    )
                print(
                    f"[bench {ci + 1}/{len(b.cases)} {case.label} b{batch} repeat {r + 1}/{repeats}] "
                    + ", ".join(f"{v.name} {batch * steps / v.seconds[-1]:.0f}" for v in vs)
                    + f" img/s ({time.perf_counter() - t_start:.0f}s)",
                    flush=True,
                )
            model = build_model(model_cfg)
            cases.append(
                {
                    "label": case.label,
                    "batch": batch,
                    "steps": steps,
                    "model": OmegaConf.to_container(model_cfg, resolve=True),
                    "params": count_params(model),
                    "flops_forward": count_flops(model),
                    "vs": vs,
                    "counts": counts,
                }
            )
        floor = floor_rows(cfg, [int(c.batch) for c in b.cases], device, precision, Path(tmp), quick=bool(b.steps))
    lanes = lane_rows(b, device, threads)
    nets = {}
    for c in cases:
        nets.setdefault(c["label"], OmegaConf.create(c["model"]))
    evals = eval_rows(
        b.get("evaluation"),
        nets,
        device,
        precision,
        bool(cfg.trainer.channels_last),
        int(cfg.seed),
        quick=bool(b.steps),
    )
    fusion = fusion_rows(b.get("fusion"), device, quick=bool(b.steps))
    fixed = fixed_cost.measure(b.get("fixed_cost"), cfg.data.get("source"), quick=bool(b.steps))
    peak = {dtype_name(k): max(v) for k, v in peaks.items()}
    out_cases = []
    for c in cases:
        vs, counts = c.pop("vs"), c.pop("counts")
        train_flops = TRAIN_FLOPS_PER_FORWARD * c["flops_forward"]
        c["variants"] = []
        for v in vs:
            s = stats(v.seconds, c["batch"], c["steps"])
            c["variants"].append(
                {
                    "name": v.name,
                    "group": v.group,
                    "what": v.what,
                    "precision": v.precision,
                    "compiled": v.compiled,
                    **s,
                    "mfu_median": s["img_s_median"] * train_flops / peak[dtype_name(v.precision)],
                }
            )
        main = next(v for v in vs if v.name == "reslab")
        c["probes"] = probe_row(main, counts, c["batch"], c["steps"]) if counts else None
        c["summary"] = summary(c, b, floor)
        out_cases.append(c)
    return {
        "schema": 2,
        "device": runinfo.device_name(device),
        "device_type": device,
        "precision": precision,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "git_commit": runinfo.git_commit(),
        "cpu": cpu_info(),
        "threads": thread_info(threads),
        "profile": cfg.profile.name,
        "peak": {
            k: {
                "flops_per_s": v,
                "size": int(b.peak_size[device]),
                "method": f"fastest of {int(b.peak_calls)} x {repeats * len(cases)} {b.peak_size[device]}^2 "
                f"{k} matmuls (2 n^3 FLOPs each) on this machine, {torch.get_num_threads()} threads, "
                "measured in every repeat of every case",
            }
            for k, v in peak.items()
        },
        "flops_convention": FLOPS_CONVENTION,
        "data": DATA,
        "settings": {
            "warmup_steps": warmup,
            "repeats": repeats,
            "probe_repeats": probe_repeats,
            "target_of_limit": float(b.target_of_limit),
            "as_fast_within": float(b.as_fast_within),
        },
        "cases": out_cases,
        "floor": floor,
        "lanes": lanes,
        "evaluation": evals,
        "fusion": fusion,
        "fixed_cost": fixed,
        "sweeps": sweeps.rows(Path(cfg.paths.runs), sweeps.archives(b.get("sweeps_archives")))
        if b.get("sweeps")
        else [],
        "wall_seconds": time.perf_counter() - t_start,
    }


def lane_rows(b: DictConfig, device: str, threads: int) -> dict | None:
    """One run with every core's thread vs one single-thread run per core (a CPU with 2+ cores only)."""
    lanes = b.get("lanes")
    cores = os.cpu_count() or 1
    if not lanes or device != "cpu" or cores < 2:
        return None
    from reslab.bench import lanes as lane_compare

    seconds = float(lanes.seconds) if not b.steps else 1.0  # bench.steps set: a quick check, not a figure
    repeats = int(lanes.repeats) if not b.steps else 1
    rows = lane_compare.compare(cores, seconds, int(lanes.batch), list(lanes.overrides), repeats)
    print("[bench lanes] " + ", ".join(f"{k}: {max(v):.0f} img/s" for k, v in rows.items()), flush=True)
    return {
        "overrides": list(lanes.overrides),
        "batch": int(lanes.batch),
        "seconds": seconds,
        "repeats": repeats,
        "cores": cores,
        "img_s": rows,
    }
