"""How a multirun should use the cores, measured: one run with all threads, or one run per core (JOBS=cores, one thread
each). Each lane is its own process training the same net on one fixed batch for the same number of seconds, all
started together; the figure is the lanes' summed throughput. The sweeps' choice (JOBS) rests on this row of the
bench report, not on a guess.

`python -m reslab.bench.lanes --worker THREADS SECONDS OVERRIDES...` is the lane itself (one JSON line on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def worker(threads: int, seconds: float, batch: int, overrides: list[str]) -> dict:
    import torch
    import torch.nn.functional as F
    from hydra import compose, initialize_config_dir

    from reslab.models import build_model
    from reslab.paths import CONF_DIR

    torch.set_num_threads(threads)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    torch.manual_seed(0)
    net = build_model(cfg.model).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return {"images_per_second": n * batch / (time.perf_counter() - t0), "threads": threads}


def lanes(jobs: int, threads: int, seconds: float, batch: int, overrides: list[str]) -> float:
    """Summed training img/s of `jobs` processes with `threads` threads each, run at the same time."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "reslab.bench.lanes", "--worker", str(threads), str(seconds), str(batch), *overrides]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True) for _ in range(jobs)]
    out = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a lane of {' '.join(cmd)} failed")
    return sum(json.loads(o.strip().splitlines()[-1])["images_per_second"] for o in out)


def compare(cores: int, seconds: float, batch: int, overrides: list[str], repeats: int) -> dict:
    """{'one run, N threads': [img/s per repeat], 'N runs, 1 thread': [...]}, repeats interleaved."""
    rows: dict[str, list[float]] = {f"1 run x {cores} threads": [], f"{cores} runs x 1 thread": []}
    for _ in range(repeats):
        rows[f"1 run x {cores} threads"].append(lanes(1, cores, seconds, batch, overrides))
        rows[f"{cores} runs x 1 thread"].append(lanes(cores, 1, seconds, batch, overrides))
    return rows


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    t, s, b, *ov = sys.argv[2:]
    print(json.dumps(worker(int(t), float(s), int(b), ov)), flush=True)
