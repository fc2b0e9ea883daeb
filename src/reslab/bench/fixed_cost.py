"""The fixed cost of a run (issue 28): `reslab-train` as a user starts it, from the process's start to its exit, split
into the phases the run records in timing.json (reslab.run.phases): process start and imports, composition, checks,
data, model, set-up, the fit (its probes' hooks apart), the final evaluations, the outputs, and the commit and exit
that follow the last mark.

Each (net, profile) is run `repeats` times in a fresh runs/ directory (never skipped as finished), interleaved; the
table reports the median of each phase. `steps: null` runs the profile's whole schedule (the smoke goals: a whole
smoke run); `steps: 1` a run of one step, whose time is nearly all fixed cost (the cpu profile's per-run overhead:
its final evaluation of the full test set, the Fig. 7 responses, set-up).

Data: the bench's `data.source` if given (make bench ARGS='data.source=...': the real copy, whose checksum and
cached arrays are part of a run's set-up), else a synthetic CIFAR-10 in the official format, just large enough for
the profile (said in the table): loading it costs less than loading the real 60,000 images."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from reslab import io
from reslab.errors import ReslabError
from reslab.paths import CONF_DIR
from reslab.run.phases import TIMING

EXIT = "commit and exit"  # after the last mark: the run's commit (a rename), W&B's and the interpreter's shutdown
ENTRY = "reslab.train"  # what reslab-train imports before its first line runs

# Who pays for a run's imports: each module's own time (python -X importtime's `self`, so nothing is counted twice),
# summed by the package it belongs to. torch's compiler stack is its own row: no run compiles, but Lightning imports
# torch._dynamo (lightning.fabric.wrappers), and with it sympy.
IMPORT_GROUPS = (
    (
        "torch._dynamo and its compiler stack (Lightning imports it)",
        ("torch._dynamo", "torch._inductor", "sympy", "mpmath", "triton"),
    ),
    ("torch", ("torch", "torchgen", "functorch", "cuda")),  # cuda: the CUDA bindings torch.cuda imports
    ("Lightning and torchmetrics", ("lightning", "lightning_fabric", "lightning_utilities", "torchmetrics")),
    (
        "matplotlib (torchmetrics' plots)",
        ("matplotlib", "mpl_toolkits", "PIL", "kiwisolver", "pyparsing", "fontTools", "cycler", "contourpy"),
    ),
    ("numpy and pandas", ("numpy", "pandas", "dateutil", "pytz")),
    ("Hydra and OmegaConf", ("hydra", "omegaconf", "antlr4", "yaml")),
    ("reslab", ("reslab",)),
)


def import_group(module: str) -> str:
    for label, roots in IMPORT_GROUPS:
        if any(module == r or module.startswith(r + ".") for r in roots):
            return label
    return "the standard library and the rest"


def parse_importtime(stderr: str) -> dict[str, float]:
    """{group: seconds} from `python -X importtime`'s report (self times: the groups sum to the whole import)."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _cumulative, name = line.split("|")  # "import time: <self us>", "<cumulative us>", "<indent><module>"
        group = import_group(name.strip())
        out[group] = out.get(group, 0.0) + int(own.split(":")[1]) / 1e6
    return out


def import_breakdown(repeats: int) -> dict:
    """A run's imports by who pays for them: `python -X importtime -c 'import reslab.train'`, medians of `repeats`."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {ENTRY}"], capture_output=True, text=True
        )
        if proc.returncode:
            raise ReslabError(f"bench fixed cost: importing {ENTRY} failed: {proc.stderr.strip()[-400:]}")
        runs.append(parse_importtime(proc.stderr))
    groups = list(dict.fromkeys(g for r in runs for g in r))
    med = {g: statistics.median(r.get(g, 0.0) for r in runs) for g in groups}
    return {"entry": ENTRY, "repeats": repeats, "groups": sorted(([g, v] for g, v in med.items()), key=lambda x: -x[1])}


def synthetic_source(tmp: Path, profile: DictConfig) -> Path:
    """A synthetic archive with the profile's training subset (or 500) and its eval subset (or the full 10,000)."""
    from reslab.data import synthetic

    n_train = max(500, int(profile.get("train_subset") or 50_000))
    n_test = int(profile.get("eval_subset") or 10_000)
    return synthetic.write(tmp / f"synthetic-{n_train}-{n_test}.tar.gz", n_train=n_train, n_test=n_test)


def one_run(overrides: list[str], runs: Path) -> dict:
    """Start reslab-train as a user would; its wall time from spawn to exit and the phases it recorded."""
    cmd = [str(Path(sys.executable).parent / "reslab-train"), *overrides, f"paths.runs={runs}", "study=fixed-cost"]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    total = time.time() - t0
    if proc.returncode:
        raise ReslabError(f"bench fixed cost: {' '.join(cmd)} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    found = list(Path(runs).glob(f"*/*/*/{TIMING}"))
    if len(found) != 1:
        raise ReslabError(f"bench fixed cost: expected one {TIMING} under {runs}, found {len(found)}")
    timing = io.read_json(found[0])
    result = io.read_json(found[0].parent / "result.json")
    phases = {p["phase"]: p["seconds"] for p in timing["phases"]}
    # Everything after the last mark: what the process's own clock did not see.
    start = timing.get("process_start") or t0
    phases[EXIT] = max(0.0, (t0 + total) - (start + sum(p["seconds"] for p in timing["phases"])))
    return {
        "total": total,
        "phases": phases,
        "hooks": timing.get("hooks", {}),
        "steps": int(result.get("steps", 0)),
        "train_wall": float(result.get("wall_seconds") or 0.0),
    }


def measure(fc: DictConfig, data: str | None, quick: bool = False) -> dict | None:
    """{'rows': one per (net, profile, steps), 'data': what they ran on}; None when the config has no fixed_cost."""
    if not fc:
        return None
    repeats = 1 if quick else int(fc.repeats)
    rows = []
    with tempfile.TemporaryDirectory(prefix="reslab-fixed-") as tmp:
        tmp = Path(tmp)
        plans = []
        for run in fc.runs:
            prof = OmegaConf.load(CONF_DIR / "profile" / f"{run.profile}.yaml")
            source = data or str(synthetic_source(tmp, prof))
            for case in fc.cases:
                steps = 1 if quick else run.steps
                ov = [*case.overrides, f"profile={run.profile}", "logger=none", f"data.source={source}"]
                ov += [f"profile.max_steps={int(steps)}", "profile.epochs=null"] if steps else []
                ov += [f"threads={int(fc.threads)}"] if fc.get("threads") else []
                plans.append({"label": case.label, "profile": run.profile, "steps": steps, "overrides": ov, "t": []})
        for r in range(repeats):
            for i, p in enumerate(plans):
                got = one_run(p["overrides"], tmp / f"runs-{i}-{r}")
                p["t"].append(got)
                print(
                    f"[bench fixed cost {i + 1}/{len(plans)} {p['label']} {p['profile']} repeat {r + 1}/{repeats}] "
                    f"{got['total']:.1f}s",
                    flush=True,
                )
        for p in plans:
            runs = p.pop("t")
            names = list(dict.fromkeys(k for t in runs for k in t["phases"]))
            hooks = list(dict.fromkeys(k for t in runs for k in t["hooks"]))
            rows.append(
                {
                    **{k: p[k] for k in ("label", "profile", "overrides")},
                    "steps": runs[0]["steps"],
                    "repeats": len(runs),
                    "total": statistics.median(t["total"] for t in runs),
                    "total_all": [t["total"] for t in runs],
                    # In the order the run passes them (a list: the bench's JSON is written with sorted keys).
                    "phases": [[n, statistics.median(t["phases"].get(n, 0.0) for t in runs)] for n in names],
                    "hooks": {n: statistics.median(t["hooks"].get(n, 0.0) for t in runs) for n in hooks},
                    "train_wall": statistics.median(t["train_wall"] for t in runs),
                }
            )
    return {
        "rows": rows,
        "data": data or "synthetic CIFAR-10 (official format) of each profile's size",
        "imports": import_breakdown(repeats),
    }
