"""A sweep submitted to a real Slurm scheduler through Hydra's submitit launcher (conf/hydra/launcher/slurm.yaml).

Opt-in (`make test-slurm`, or RESLAB_SLURM=1): it starts a single-node cluster on this machine with
tests/slurm/cluster.sh (which installs Debian's slurm-wlm and munge if missing, as root) and stops it afterwards.
Minutes, not seconds: each job starts a Python of its own on a 2-core machine.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("RESLAB_SLURM") != "1", reason="a Slurm cluster on this machine: make test-slurm (RESLAB_SLURM=1)"
)

CLUSTER = ROOT / "tests/slurm/cluster.sh"
SMOKE = ["profile=smoke", "logger=none", "trainer.save_weights=false", "probes.flow_points=0", "seed=0"]
# Small jobs for a 2-core node without GPUs; the rest is conf/hydra/launcher/slurm.yaml as a user gets it.
SLURM = [
    "hydra/launcher=slurm",
    "hydra.launcher.gpus_per_node=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=10",
]


@pytest.fixture(scope="module")
def cluster():
    state = Path(subprocess.run([str(CLUSTER), "start"], check=True, capture_output=True, text=True).stdout.strip())
    try:
        yield state
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], check=True)


@pytest.fixture()
def env(env, cluster):
    return {**env, "SLURM_CONF": str(cluster / "slurm.conf")}


def queue(env) -> list[str]:
    return subprocess.run(
        ["squeue", "-h", "-o", "%i"], env=env, check=True, capture_output=True, text=True
    ).stdout.split()


def test_a_sweep_on_slurm_waits_for_its_jobs_records_itself_and_reports(cli, env, tmp_path, synth_archive):
    cli(
        "reslab-train",
        "-m",
        "experiment=depth",
        *SMOKE,
        f"data.source={synth_archive}",
        "model=plain,resnet",
        "model.depth=8",
        *SLURM,
    )
    assert queue(env) == [], "reslab-train returns once every job has ended"
    study = tmp_path / "runs/depth/smoke"
    results = {p.parent.name: json.loads(p.read_text()) for p in study.glob("*/result.json")}
    assert set(results) == {"plain-8-s0", "resnet-8-s0"} and {r["status"] for r in results.values()} == {"ok"}
    assert {r["threads"] for r in results.values()} == {1}, "a run's threads follow its job's CPUs (cpus_per_task)"
    records = list((study / "_sweeps").glob("*.json"))
    assert len(records) == 1 and len(json.loads(records[0].read_text())["jobs"]) == 2

    # One log folder per array task, beside the runs; the jobs saw the sweep's size set in the launching process.
    logs = "".join(p.read_text() for p in (study / "_slurm").glob("*_*/*_log.out"))
    assert "run 1/2 plain-8 s0" in logs and "run 2/2 resnet-8 s0" in logs

    cli("reslab-report", "depth", "profile=smoke")
    report = (tmp_path / "reports/depth/README.md").read_text()
    assert "**Completeness:** expected 2" in report and "— complete." in report


def test_a_run_that_fails_on_its_node_is_recorded_and_ends_the_sweep_with_one_line(cli, env, tmp_path, synth_archive):
    proc = cli(
        "reslab-train",
        "-m",
        "study=failing",
        *SMOKE,
        f"data.source={synth_archive}",
        "model.depth=8",
        "profile.batch_size=400",
        *SLURM,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    failed = tmp_path / "runs/failing/smoke/resnet-8-s0.next/failed.json"
    assert "profile.batch_size=400 is larger than the 200 training images" in json.loads(failed.read_text())["error"]
    assert f"1 of 1 runs failed: {failed.relative_to(tmp_path)}" in proc.stderr and "Traceback" not in proc.stderr


def test_a_bad_value_is_refused_before_anything_is_submitted(cli, env, tmp_path, synth_archive):
    proc = cli(
        "reslab-train",
        "-m",
        "study=refused",
        *SMOKE,
        f"data.source={synth_archive}",
        "model.depth=7,8",
        *SLURM,
        check=False,
    )
    assert proc.returncode == 2 and "model.depth" in proc.stderr and "nothing was run" in proc.stderr
    assert not (tmp_path / "runs/refused").exists() and queue(env) == []
