"""`reslab-cost`: what each net of a study costs to run, measured alone, after its training sweep.

Per net (one row per repeat in runs/<study>/<profile>/cost.csv):
- forward FLOPs of one 32x32 image (reslab.summary.count_flops: torch.utils.flop_counter, multiply-add = 2);
- training and inference images/s at `cost.batch_size`: `warmup_steps` untimed steps, then `steps` timed
  ones (CUDA synchronised before and after), with the training run's precision and memory format;
- where a training step's time goes (`cost.profiled_steps` steps under torch.profiler, CPU only): the share of
  the step's operator time in convolutions, BatchNorm, ReLU, concatenation and everything else, the parts the
  FLOP count leaves out (it counts convolutions and matmuls only);
- peak memory of one training step at `cost.memory_batch`, from a fresh model: on CUDA the rise of
  torch.cuda.max_memory_allocated over what the model and batch already hold; on a CPU the rise of the
  peak resident set size over the resident size before the step, in a fresh subprocess whose peak mark
  is reset just before the step (Linux /proc/self/clear_refs), so that allocations made earlier (other
  nets, imports) cannot hide it. `memory_method` says which; both count gradients, optimizer state,
  activations and workspace, not the weights.

Why a separate step and not inside each training run: a sweep trains two runs at a time (JOBS=2), and
their timings would measure the neighbour as much as the net. Measured here one net at a time, with
the repeats interleaved (net 1, net 2, ..., net 1, ...), so that a drift of the machine touches every net.

The nets are read from the study's finished runs (config.yaml), so the cost is that of exactly the
configurations trained: `reslab-cost study=block profile=cpu` (make cost-block).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from reslab import io, options
from reslab.bench.steps import NUM_CLASSES, autocast_dtype, batch, optimizer, train_step  # noqa: F401 (cost's API)
from reslab.errors import ReslabError, one_line_errors
from reslab.models import build_model
from reslab.paths import CONF_DIR
from reslab.run import runinfo
from reslab.summary import count_flops, count_params

# Kept light at import: the memory probe's subprocess imports this module, and what it imports is
# resident before the step it measures (Lightning, pulled in by reslab.bench, is imported where used).


def prepare(model_cfg: dict, device: torch.device, channels_last: bool, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(model_cfg).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def throughput(
    model: torch.nn.Module,
    device: torch.device,
    batch_size: int,
    warmup: int,
    steps: int,
    precision: str = "32-true",
    channels_last: bool = False,
    opt: dict | None = None,
) -> dict:
    """Training and inference images/s of `model` at `batch_size`, `steps` timed after `warmup` untimed."""
    from reslab.bench.timing import timed

    if steps < 1 or warmup < 0 or batch_size < 1:
        raise ReslabError(
            f"cost.steps={steps!r}, cost.warmup_steps={warmup!r}, cost.batch_size={batch_size!r}: "
            "need steps >= 1, warmup_steps >= 0, batch_size >= 1"
        )
    dtype = autocast_dtype(precision)
    x, y = batch(batch_size, device, channels_last)
    model.train()
    sgd = optimizer(model, opt or {})
    train_sec = timed(lambda: train_step(model, sgd, x, y, dtype), device, warmup, steps)
    model.eval()

    def infer():
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            model(x)

    infer_sec = timed(infer, device, warmup, steps)
    model.train()
    return {"train_images_per_s": batch_size / train_sec, "infer_images_per_s": batch_size / infer_sec}


# Operator groups of a training step's time: substrings of torch.profiler's event names, lower case without
# underscores (aten::mkldnn_convolution, aten::convolution_backward, aten::native_batch_norm_backward,
# aten::clamp_min: what aten::relu runs on a CPU, aten::threshold_backward: ReLU's backward, aten::cat).
# An event belongs to the group of its nearest ancestor (or itself) that has one, so the allocations and
# copies made inside a convolution count as the convolution's.
OP_GROUPS = {
    "conv": ("convolution", "conv1d", "conv2d", "conv3d"),
    "bn": ("batchnorm",),
    "relu": ("relu", "clampmin", "thresholdbackward"),
    "cat": ("aten::cat", "catbackward"),
}
SHARE_COLUMNS = [f"share_{g}" for g in OP_GROUPS] + ["share_other"]


def op_group(name: str) -> str | None:
    key = name.lower().replace("_", "")
    for group, parts in OP_GROUPS.items():
        if any(part.replace("_", "") in key for part in parts):
            return group
    return None


def group_shares(events) -> dict:
    """{share_<group>: fraction} of the self time of torch.profiler `events` (FunctionEvents), each event
    counted in the group of its nearest grouped ancestor, 'other' if none."""
    totals = dict.fromkeys(SHARE_COLUMNS, 0.0)
    whole = 0.0
    for e in events:
        group, a = None, e
        while a is not None and group is None:
            group, a = op_group(a.name), a.cpu_parent
        totals[f"share_{group or 'other'}"] += e.self_cpu_time_total
        whole += e.self_cpu_time_total
    return {k: (v / whole if whole > 0 else float("nan")) for k, v in totals.items()}


def time_shares(
    model: torch.nn.Module,
    device: torch.device,
    batch_size: int,
    steps: int,
    precision: str = "32-true",
    channels_last: bool = False,
    opt: dict | None = None,
) -> dict:
    """Where `steps` training steps of `model` (already warm) spend their time, by operator group (OP_GROUPS):
    torch.profiler's self CPU time of every operator, grouped. On a CPU the operators run on the calling
    thread (intra-op threads inside them), so the self times add up to the step's time. On CUDA the CPU time
    is the launch time, not the kernels': not measured there (NaN)."""
    from torch.profiler import ProfilerActivity, profile

    nan = dict.fromkeys(SHARE_COLUMNS, float("nan"))
    if device.type != "cpu" or steps < 1:
        return {**nan, "profiled_steps": steps, "share_method": "not measured (CPU only)" if steps else "off"}
    dtype = autocast_dtype(precision)
    x, y = batch(batch_size, device, channels_last)
    sgd = optimizer(model, opt or {})
    model.train()
    train_step(model, sgd, x, y, dtype)  # the new optimizer's first step allocates its momentum buffers
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            train_step(model, sgd, x, y, dtype)
    seconds = time.perf_counter() - t0
    return {
        **group_shares(prof.events()),
        "profiled_steps": steps,
        "profiled_step_seconds": seconds / steps,
        "share_method": "torch.profiler, self CPU time of every operator grouped by its nearest named ancestor",
    }


def _status_kib(field: str) -> int | None:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in bytes; None where there is no /proc."""
    value = io.proc_status(field)
    return None if value is None else int(value) * 1024


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0: clear_refs 5), so that the
    next peak is the step's own and not one left by imports or model building."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _maxrss() -> int:
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def _memory_here(spec: dict) -> dict:
    """One training step of a fresh net in this process: the rise of the peak RSS over the RSS before it."""
    torch.set_num_threads(int(spec["threads"]))
    device = torch.device("cpu")
    model = prepare(spec["model"], device, spec["channels_last"])
    sgd = optimizer(model, spec.get("opt") or {})
    x, y = batch(int(spec["batch"]), device, spec["channels_last"])
    reset = _reset_peak() and _status_kib("VmHWM") is not None
    before = _status_kib("VmRSS") if reset else _maxrss()
    train_step(model, sgd, x, y, autocast_dtype(spec["precision"]))
    peak = _status_kib("VmHWM") if reset else _maxrss()
    return {
        "peak_memory_bytes": max(0, peak - before),
        "memory_baseline_bytes": before,
        # Without the reset the earlier peak may exceed the step's: the rise is then a lower bound.
        "memory_exact": bool(reset or peak > before),
        "memory_method": "cpu: rise of the peak RSS (VmHWM, reset just before) over the RSS before one training "
        "step, fresh subprocess"
        if reset
        else "cpu: rise of ru_maxrss over the process's earlier peak in one training step, fresh "
        "subprocess (no peak reset here: a lower bound)",
    }


def memory_child() -> None:
    """Entry of the fresh subprocess: a JSON spec on stdin, a JSON result on stdout."""
    print(json.dumps(_memory_here(json.loads(sys.stdin.read()))), flush=True)


def peak_memory(
    model_cfg: dict,
    device: torch.device,
    batch_size: int,
    precision: str = "32-true",
    channels_last: bool = False,
    opt: dict | None = None,
    threads: int | None = None,
) -> dict:
    """Memory of one training step at `batch_size` beyond the resident model and batch (module docstring)."""
    if device.type == "cuda":
        model = prepare(model_cfg, device, channels_last)
        sgd = optimizer(model, opt or {})
        x, y = batch(batch_size, device, channels_last)
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        train_step(model, sgd, x, y, autocast_dtype(precision))
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        del model, sgd, x, y
        torch.cuda.empty_cache()
        return {
            "peak_memory_bytes": peak - base,
            "memory_baseline_bytes": base,
            "memory_exact": True,
            "memory_method": "cuda: rise of torch.cuda.max_memory_allocated over the resident model and batch "
            "during one training step",
        }
    spec = {
        "model": model_cfg,
        "batch": batch_size,
        "precision": precision,
        "channels_last": channels_last,
        "opt": opt or {},
        "threads": threads or torch.get_num_threads(),
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from reslab.bench.cost import memory_child; memory_child()"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ReslabError(f"memory probe for model {model_cfg.get('name')!r} failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(
    model_cfg: dict,
    device: torch.device,
    *,
    batch_size: int = 128,
    warmup: int = 3,
    steps: int = 10,
    memory_batch: int | None = 128,
    precision: str = "32-true",
    channels_last: bool = False,
    opt: dict | None = None,
    profiled_steps: int | None = None,
) -> dict:
    """The cost of one net: params, FLOPs, training and inference images/s, (unless memory_batch is None)
    the peak memory of one training step, and (if profiled_steps) the shares of a step's time by operator
    group, after the timed steps (the profiler's overhead stays out of the throughput). A dict, one value
    per key."""
    model = prepare(model_cfg, device, channels_last)
    t0 = time.perf_counter()
    out = {"params": count_params(model), "flops": count_flops(model)}
    out.update(throughput(model, device, batch_size, warmup, steps, precision, channels_last, opt))
    if profiled_steps:
        out.update(time_shares(model, device, batch_size, profiled_steps, precision, channels_last, opt))
    del model
    if memory_batch:
        out.update(peak_memory(model_cfg, device, memory_batch, precision, channels_last, opt))
        out["memory_batch"] = memory_batch
    out.update(
        batch_size=batch_size,
        warmup_steps=warmup,
        timed_steps=steps,
        precision=precision,
        channels_last=channels_last,
        threads=torch.get_num_threads(),
        seconds=time.perf_counter() - t0,
    )
    return out


def study_nets(runs: Path, study: str, profile: str) -> list[dict]:
    """One entry per net (label) of a study's finished runs: its label, family, budget and model config."""
    from reslab.report.results import run_dirs

    nets: dict[str, dict] = {}
    for d in run_dirs(runs, study, profile):
        cfg_file = d / "config.yaml"
        if not cfg_file.is_file():
            continue
        cfg = OmegaConf.load(cfg_file)
        result = io.read_json(d / "result.json")
        model = OmegaConf.to_container(cfg.model, resolve=True)
        label = result["label"]
        if label in nets:
            if nets[label]["model"] != model:
                raise ReslabError(
                    f"runs of {label!r} under {d.parent} have different model configs; "
                    "rerun the sweep so that every seed trains the same net"
                )
            continue
        variant = result.get("variant") or {}
        nets[label] = {
            "label": label,
            "family": variant.get("family") or result.get("family"),
            "budget": variant.get("budget"),
            "model": model,
        }
    if not nets:
        raise ReslabError(
            f"no finished runs under {str(Path(runs) / study / profile)!r} to measure; "
            f"train the study first (make sweep-{study.split('-')[0]})"
        )
    return list(nets.values())


SETTINGS = ("batch_size", "warmup_steps", "timed_steps", "memory_batch", "precision", "channels_last", "profiled_steps")


def measured_before(out: Path, nets: list[dict], settings: dict, device: str, repeats: int) -> bool:
    """True when `out` already holds this measurement: the same nets (labels and parameter counts), device,
    settings and number of repeats. A rerun of a finished sweep then measures nothing again, so its report
    does not change; nets added to the study (e.g. the large arm) make every net be measured again, interleaved."""
    if not out.is_file():
        return False
    import pandas as pd

    try:
        old = pd.read_csv(out)
        params = old.groupby("label").params.first().to_dict()
        want = {n["label"]: count_params(build_model(n["model"])) for n in nets}
        return (
            params == want
            and set(old.device) == {device}
            and old.repeat.nunique() == repeats
            and all(set(old[k].astype(str)) == {str(v)} for k, v in settings.items())
        )
    except (OSError, ValueError, KeyError, AttributeError):
        return False  # unreadable or from an older layout: measure again


def run(cfg: DictConfig) -> Path:
    from reslab.training.device import pick_device, pick_precision, set_threads

    c = cfg.cost
    if int(c.repeats) < 1:
        raise ReslabError(f"cost.repeats={c.repeats!r} must be >= 1")
    set_threads(cfg)
    device_type = pick_device(cfg.device)
    device = torch.device(device_type)
    precision = pick_precision(cfg.trainer.precision, device_type)
    channels_last = bool(cfg.trainer.channels_last)
    opt = {k: cfg.profile[k] for k in ("lr", "momentum", "weight_decay", "nesterov")}
    nets = study_nets(Path(cfg.paths.runs), cfg.study, cfg.profile.name)
    out = Path(c.out)
    profiled = int(c.get("profiled_steps", 0) or 0)
    settings = dict(
        zip(
            SETTINGS,
            (
                int(c.batch_size),
                int(c.warmup_steps),
                int(c.steps),
                int(c.memory_batch),
                precision,
                channels_last,
                profiled,
            ),
        )
    )
    if not c.get("force") and measured_before(out, nets, settings, runinfo.device_name(device_type), int(c.repeats)):
        print(
            f"cost of these {len(nets)} nets on this device measured earlier ({out}): skipped; cost.force=true "
            "measures again",
            flush=True,
        )
        return out
    common = {
        "device": runinfo.device_name(device_type),
        "torch": torch.__version__,
        "git_commit": runinfo.git_commit(),
        "cpu": runinfo.cpu_name(),
    }  # which CPU: a study may hold runs of two (experiments/block.md)
    rows, t0 = [], time.perf_counter()
    memory: dict[str, dict] = {}
    once = ("memory", "peak_memory_bytes", "share_", "profiled_step_seconds")
    for r in range(int(c.repeats)):
        for i, net in enumerate(nets, 1):
            # Memory and the time shares once per net (a count and a proportion, not a timing to repeat).
            first = net["label"] not in memory
            got = measure(
                net["model"],
                device,
                batch_size=int(c.batch_size),
                warmup=int(c.warmup_steps),
                steps=int(c.steps),
                memory_batch=int(c.memory_batch) if first else None,
                precision=precision,
                channels_last=channels_last,
                opt=opt,
                profiled_steps=profiled if first else None,
            )
            got["profiled_steps"] = profiled
            if first:
                memory[net["label"]] = {k: got.pop(k) for k in list(got) if k.startswith(once)}
            rows.append(
                {
                    "label": net["label"],
                    "family": net["family"],
                    "budget": net["budget"],
                    "repeat": r,
                    **got,
                    **memory[net["label"]],
                    **common,
                }
            )
            print(
                f"[cost {r + 1}/{c.repeats} {i}/{len(nets)}] {net['label']}: train {got['train_images_per_s']:.0f} "
                f"img/s, infer {got['infer_images_per_s']:.0f} img/s, peak step memory "
                f"{memory[net['label']]['peak_memory_bytes'] / 2**20:.0f} MiB ({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
    import pandas as pd

    io.save_with(out, lambda f: pd.DataFrame(rows).to_csv(f, index=False))
    return out


@hydra.main(config_path=str(CONF_DIR), config_name="cost", version_base="1.3")
@one_line_errors
def _main(cfg: DictConfig) -> None:
    print(f"wrote {run(cfg)}", flush=True)


main = options.hydra_entry(_main)

if __name__ == "__main__":
    main()
