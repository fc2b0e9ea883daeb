"""A sweep whose runs go to other processes (Hydra's joblib launcher, the Makefile's JOBS=2) finishes every run,
records itself, reports and stops like a sweep run in one process. The Slurm launcher's check is tests/test_slurm.py."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from reslab import io as reslab_io
from reslab.run import stopping
from reslab.training.device import usable_cores

SMOKE = ["profile=smoke", "logger=none", "trainer.save_weights=false", "probes.flow_points=0"]
FAULTY = Path(__file__).with_name("faulty_train.py")


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def all_gone(pids: list[int], within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while not all(map(gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return all(map(gone, pids))


SLOWED_SWEEP = [
    "-m",
    "experiment=depth",
    *SMOKE,
    "model=plain,resnet",
    "model.depth=8",
    "seed=0",
    "profile.epochs=15",  # 60 steps: slowed, 24 s or more to catch both runs training; resumed, a few seconds
    "trainer.checkpoint_every_n_steps=2",
    "hydra/launcher=joblib",
    "hydra.launcher.n_jobs=2",
    "jobs=2",
]


@pytest.fixture()
def training_sweep(env, tmp_path, synth_archive):
    """A sweep of two runs side by side in joblib's workers, each slowed to 0.4 s a step, caught while both train:
    (launcher process, the workers' pids, the study's directory)."""
    launcher = subprocess.Popen(
        [sys.executable, str(FAULTY), "slow:0.4", "--", *SLOWED_SWEEP, f"data.source={synth_archive}"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    study = tmp_path / "runs/depth/smoke"
    checkpoints = [study / f"{net}-8-s0.next/checkpoint.pt" for net in ("plain", "resnet")]
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and launcher.poll() is None:
            workers = stopping.busy_workers(launcher.pid)
            if all(c.is_file() for c in checkpoints) and len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2 and launcher.poll() is None, "both runs should be training by now"
        yield launcher, workers, study
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for pid in workers:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


linux_only = pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="stop forwarding reads /proc (Linux)")


@linux_only
def test_sigterm_to_the_launcher_alone_stops_every_run_after_its_checkpoint_and_leaves_no_worker(
    training_sweep, cli, synth_archive
):
    # As from `kill <pid>` or `timeout`: before reslab.run.stopping the workers went on training as orphans.
    launcher, workers, study = training_sweep
    launcher.send_signal(signal.SIGTERM)
    out, err = launcher.communicate(timeout=300)
    assert launcher.returncode == 128 + signal.SIGTERM, err
    assert err.count("stopped by SIGTERM at step") == 2, err
    assert "every run in progress saved its checkpoint" in err
    assert all_gone(workers), "no worker outlives the launcher"
    assert not list(study.glob("*/result.json")), "neither run had finished"

    # Run again, side by side in joblib's workers as before, the sweep finishes both runs, records itself and reports
    # (one joblib sweep checks both: its workers start in seconds, each a fresh interpreter).
    again = cli("reslab-train", *SLOWED_SWEEP, f"data.source={synth_archive}")
    assert again.stdout.count("resuming from") == 2
    results = {p.parent.name: json.loads(p.read_text()) for p in study.glob("*/result.json")}
    assert set(results) == {"plain-8-s0", "resnet-8-s0"} and {r["status"] for r in results.values()} == {"ok"}
    # The callbacks run in the launching process; the workers still see the sweep's size and share the cores.
    assert "run 1/2" in again.stdout and "run 2/2" in again.stdout
    assert {r["threads"] for r in results.values()} == {max(1, usable_cores() // 2)}
    records = [json.loads(r.read_text()) for r in (study / "_sweeps").glob("*.json")]
    assert len(records) == 2, "the stopped sweep's record and this one's"
    assert all(len(r["jobs"]) == 2 and r["runs"] == sorted(results) for r in records)

    cli("reslab-report", "depth", "profile=smoke")
    report = (study.parents[2] / "reports/depth/README.md").read_text()
    assert "**Completeness:** expected 2" in report and "— complete." in report


@linux_only
def test_a_launcher_killed_outright_leaves_its_runs_saved_and_no_worker(training_sweep):
    launcher, workers, study = training_sweep
    launcher.send_signal(signal.SIGKILL)
    out, err = launcher.communicate(timeout=300)  # the pipes close when the workers have ended too
    assert launcher.returncode == -signal.SIGKILL
    assert err.count("stopped by SIGTERM at step") == 2, err
    assert all_gone(workers), "the kernel ends the workers with their launcher"


def test_the_launching_node_leaves_the_device_to_the_slurm_jobs():
    from hydra import compose, initialize_config_dir

    from reslab.paths import CONF_DIR
    from reslab.run import validate
    from reslab.run.guard import runs_elsewhere

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        slurm = compose("train", ["hydra/launcher=slurm", "device=cuda"], return_hydra_config=True)
        local = compose("train", ["hydra/launcher=joblib"], return_hydra_config=True)
    assert runs_elsewhere(slurm) and not runs_elsewhere(local)
    validate.check(slurm, here=False)  # a login node without a GPU may send runs to GPU nodes


def make_lines(target: str, *variables: str) -> list[str]:
    proc = subprocess.run(["make", "-n", "-C", str(ROOT), target, "STAMP=", *variables], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.replace("\\\n", " ").splitlines() if "reslab-train" in line]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_every_sweep_target_takes_the_launcher():
    targets = re.findall(r"^((?:sweep|pilot)-[\w-]+):", (ROOT / "Makefile").read_text(), re.M)
    assert len(targets) >= 7
    for target in targets:
        for line in make_lines(target, "LAUNCHER=slurm", "JOBS=4"):
            assert "hydra/launcher=slurm hydra.launcher.array_parallelism=4" in line and "jobs=1 " in line, target
        for line in make_lines(target, "JOBS=2"):
            assert "hydra/launcher=joblib hydra.launcher.n_jobs=2" in line and "jobs=2 " in line, target
        assert all("hydra/launcher" not in line for line in make_lines(target)), target
    bad = subprocess.run(["make", "-n", "-C", str(ROOT), "sweep-depth", "LAUNCHER=pbs"], capture_output=True, text=True)
    assert bad.returncode != 0 and "LAUNCHER=pbs is not valid; valid: local, slurm" in bad.stderr


def test_a_misspelt_launcher_is_one_line_naming_the_project_s_and_hydra_s():
    from reslab import options
    from reslab.errors import ReslabError

    with pytest.raises(ReslabError, match="unknown hydra/launcher 'slurmm'; valid choices: basic, joblib, slurm, "):
        options.check_config_groups(["hydra/launcher=slurmm"])
    options.check_config_groups(["hydra/launcher=joblib", "hydra/launcher=slurm", "hydra/launcher=submitit_slurm"])


class Writes(io.RawIOBase):
    """A stream's raw end that keeps each write it is given (one write, one os.write on a terminal or pipe)."""

    def __init__(self):
        self.writes: list[bytes] = []

    def writable(self):
        return True

    def write(self, b):
        self.writes.append(bytes(b))
        return len(b)


def test_a_printed_line_goes_out_in_one_write_so_the_workers_lines_never_interleave(monkeypatch):
    raw = Writes()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, write_through=True))  # as with PYTHONUNBUFFERED
    print("[run 1/2 plain-8 s0] resuming from checkpoint.pt")
    assert raw.writes == [b"[run 1/2 plain-8 s0] resuming from checkpoint.pt", b"\n"]  # two lanes could interleave
    raw.writes.clear()
    reslab_io.whole_lines()
    print("[run 1/2 plain-8 s0] resuming from checkpoint.pt")
    assert raw.writes == [b"[run 1/2 plain-8 s0] resuming from checkpoint.pt\n"]
