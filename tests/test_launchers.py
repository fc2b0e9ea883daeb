"""A sweep whose runs go to other processes (Hydra's joblib launcher, the Makefile's JOBS=2) finishes every run,
records itself and reports like a sweep run in one process. The Slurm launcher's check is tests/test_slurm.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from reslab.device import usable_cores

SMOKE = ["profile=smoke", "logger=none", "trainer.save_weights=false", "probes.flow_points=0"]


def test_two_runs_side_by_side_finish_record_the_sweep_and_report(cli, tmp_path, synth_archive):
    proc = cli("reslab-train", "-m", "experiment=depth", *SMOKE, f"data.source={synth_archive}",
               "model=plain,resnet", "model.depth=8", "seed=0", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
               "jobs=2")
    study = tmp_path / "runs/depth/smoke"
    results = {p.parent.name: json.loads(p.read_text()) for p in study.glob("*/result.json")}
    assert set(results) == {"plain-8-s0", "resnet-8-s0"} and {r["status"] for r in results.values()} == {"ok"}
    # The callbacks run in the launching process; the workers still see the sweep's size and share the cores.
    assert "run 1/2" in proc.stdout and "run 2/2" in proc.stdout
    assert {r["threads"] for r in results.values()} == {max(1, usable_cores() // 2)}
    records = list((study / "_sweeps").glob("*.json"))
    assert len(records) == 1 and len(json.loads(records[0].read_text())["jobs"]) == 2

    cli("reslab-report", "depth", "profile=smoke")
    report = (tmp_path / "reports/depth/README.md").read_text()
    assert "**Completeness:** expected 2" in report and "— complete." in report


def test_the_launching_node_leaves_the_device_to_the_slurm_jobs():
    from hydra import compose, initialize_config_dir

    from reslab import validate
    from reslab.guard import runs_elsewhere
    from reslab.paths import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        slurm = compose("train", ["hydra/launcher=slurm", "device=cuda"], return_hydra_config=True)
        local = compose("train", ["hydra/launcher=joblib"], return_hydra_config=True)
    assert runs_elsewhere(slurm) and not runs_elsewhere(local)
    validate.check(slurm, here=False)  # a login node without a GPU may send runs to GPU nodes


def make_lines(target: str, *variables: str) -> list[str]:
    proc = subprocess.run(["make", "-n", "-C", str(ROOT), target, "STAMP=", *variables], capture_output=True,
                          text=True)
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
