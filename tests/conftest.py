"""Shared fixtures: a small synthetic CIFAR-10 in the official archive format, and CLI runners."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from forkserver import ForkServers
from reslab.data import synthetic

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config) -> None:
    """Under pytest-xdist (`make test`: one worker per core), each worker and the runs it starts keep to their own
    cores. A run sizes its torch threads by the cores it may use (reslab.training.device.usable_cores), so a worker
    pinned to one core trains with one thread, as a JOBS=2 sweep lane does; unpinned, two workers' runs would each
    take every core and the threads would fight over them."""
    # As reslab-train does (src/reslab/train.py): the imports' objects (torch's, about a million) out of the garbage
    # collector's sight, so that its full collections between tests do not walk them again and again.
    import gc

    import torch

    gc.freeze()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    mine = cores[int(worker[2:]) % workers :: workers] if workers <= len(cores) else cores
    os.sched_setaffinity(0, mine or cores)
    # torch sized its thread pool when it was imported (before this hook): more threads than cores spin against each
    # other (a 20x slower in-process test was seen). Child processes size theirs from the affinity they inherit.
    torch.set_num_threads(len(mine or cores))
    os.environ["OMP_NUM_THREADS"] = str(len(mine or cores))


def pytest_unconfigure(config) -> None:
    FORKS.close()


# The layer `make test-fast` leaves out: tests that train or start processes, known by the fixtures they ask for (the
# CLI runner, the synthetic archive a run trains on, a module's trained fixture) or by a `slow` mark of their own.
SLOW_FIXTURES = {
    "cli",
    "env",
    "synth_archive",
    "depth_sweep",
    "finished_depth_sweep",
    "swept",
    "smoke_runs",
    "golden_run",
    "study",
    "sweep",
    "training_sweep",
    "kernel",
    "wandb_root",
    "cluster",
}


# The modules that take longest on 2 cores, longest first (`make test`'s --durations=0, summed per module; 2026-12-05
# with the fork server).
LONGEST_MODULES = (
    "test_sweep",
    "test_launchers",
    "test_reliability",
    "test_ddp",
    "test_notebooks",
    "test_cost",
    "test_block_study",
    "test_bench",
    "test_head",
    "test_add_a_block_doc",
    "test_ladder",
    "test_imagenet",
    "test_budget_report",
    "test_budget_pilot",
    "test_wandb_logging",
    "test_reproduce",
    "test_report_consistency",
    "test_cli",
)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    # The longest modules first, each kept whole and in its own order: xdist's loadscope hands the workers modules in
    # collection order, so these start at once and both cores finish together (in file-name order test_sweep.py, the
    # longest, started near the end and ran on alone).
    rank = {name: i for i, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.module.__name__, len(rank)))


@pytest.fixture(scope="session")
def synth_archive(tmp_path_factory) -> Path:
    return synthetic.write(tmp_path_factory.mktemp("data") / "cifar-10-python.tar.gz", n_train=500, n_test=100)


# A smoke sweep only as large as a study's report needs (every section, test and verdict computed, not their values):
# one epoch of two steps of 25 images and tiny probes. The studies' tests add what their reports leave out.
TINY = [
    "profile.epochs=1",
    "profile.train_subset=50",
    "profile.batch_size=25",
    "profile.eval_subset=20",
    "profile.curve.train_images=10",
    "profile.curve.test_images=10",
    "probes.flow_batch_size=4",
    "probes.flow_points=1",
    "probes.flow_batches=1",
]


def cli_env(project: Path) -> dict:
    """The environment of the console scripts in a scratch project dir: its own cache, no W&B."""
    e = dict(os.environ)
    e.update(RESLAB_CACHE=str(project / "cache"), WANDB_MODE="disabled", PYTHONUNBUFFERED="1")
    return e


@pytest.fixture()
def env(tmp_path) -> dict:
    return cli_env(tmp_path)


# The processes of reslab's console scripts and of tests/faulty_train.py, forked from one that imported reslab already
# (tests/forkserver.py): each saves the seconds of imports a fresh interpreter spends. RESLAB_TEST_FRESH=1 starts every
# one as a fresh process instead.
FORKS = ForkServers()


def run_cli(
    tool: str, *args, env: dict, cwd: Path, check: bool = True, fresh: bool = False
) -> subprocess.CompletedProcess:
    """Run a console script (or `python -m reslab...`) to its end; `fresh`: in a new interpreter, not a fork."""
    forkable = tool in FORKS.scripts or (tool == "python" and args[:1] == ("-m",) and str(args[1]).startswith("reslab"))
    return run_argv([str(BIN / tool), *map(str, args)], env, cwd, check, fresh or not forkable)


def run_script(script: Path, *args, env: dict, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`python script args` to its end (tests/faulty_train.py), forked like a console script."""
    return run_argv([str(script), *map(str, args)], env, cwd, check, fresh=False)


def run_argv(argv: list[str], env: dict, cwd: Path, check: bool, fresh: bool) -> subprocess.CompletedProcess:
    if fresh or os.environ.get("RESLAB_TEST_FRESH") == "1":
        python = [] if Path(argv[0]).parent == BIN else [sys.executable]
        proc = subprocess.run(python + argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    else:
        proc = FORKS.run(argv, env, cwd, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture()
def cli(tmp_path, env):
    """Run a console script in a scratch project dir, with runs/ and reports/ under tmp_path."""

    def call(tool: str, *args, check: bool = True, fresh: bool = False):
        return run_cli(tool, *args, env=env, cwd=tmp_path, check=check, fresh=fresh)

    return call
