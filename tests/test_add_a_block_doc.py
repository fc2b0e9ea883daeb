"""The "Add your own block" example (docs/add-a-block.md, linked from the README) works as written: its model file
and its conf/block/ entry, taken from the page's text, build a net within the budget, train on synthetic data and
appear in a block report."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, run_cli

PAGE = "docs/add-a-block.md"
# Tiny probes: the example's numbers mean nothing; what is checked is that every stage of the study runs.
SMOKE = [
    "profile=smoke",
    "logger=none",
    "trainer.save_weights=false",
    "profile.epochs=1",
    "profile.train_subset=100",
    "profile.eval_subset=50",
    "profile.curve.train_images=20",
    "profile.curve.test_images=20",
    "probes.flow_batch_size=8",
    "probes.flow_points=1",
    "probes.flow_batches=1",
    "probes.grad_norms=false",
    "probes.response_calib_images=50",
]


def readme_files() -> dict[str, str]:
    """{path: text} of every code block on the page that a line ending in "`path`:" introduces."""
    section = (ROOT / PAGE).read_text()
    assert PAGE in (ROOT / "README.md").read_text(), "the README links the page"
    return {m.group(1): m.group(2) for m in re.finditer(r"`([\w./-]+\.(?:py|yaml))`:\n```\w+\n(.*?)```", section, re.S)}


@pytest.fixture()
def project(tmp_path) -> Path:
    """A copy of the project's code and config with the page's two files added (the worktree stays as it is)."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "conf", root / "conf")
    for path, text in readme_files().items():
        (root / path).write_text(text)
    return root


def test_the_readme_names_one_model_file_and_one_block_entry():
    assert set(readme_files()) == {"src/reslab/models/mbnet.py", "conf/block/mbnet-0.27M.yaml"}


def test_the_readme_block_trains_and_reaches_the_block_report(project, env, tmp_path, synth_archive):
    env = {**env, "PYTHONPATH": str(project / "src") + os.pathsep + env.get("PYTHONPATH", "")}
    work = tmp_path / "work"
    work.mkdir()

    def cli(*args):
        return run_cli(*args, env=env, cwd=work)

    line = cli("reslab-summary", "block=mbnet-0.27M").stdout.strip().splitlines()[-1]
    params = int(re.search(r'"params": (\d+)', line).group(1))
    assert params == 272_710, "the page states this count"
    assert abs(params / 270_000 - 1) <= 0.10, "within the budget's ±10%"

    cli(
        "reslab-train",
        "-m",
        "experiment=block",
        "block=mbnet-0.27M",
        "seed=0,1",
        f"data.source={synth_archive}",
        *SMOKE,
    )
    runs = work / "runs/block/smoke"
    assert {p.name for p in runs.iterdir()} >= {"mbnet-0.27M-29-s0", "mbnet-0.27M-29-s1"}
    cli("reslab-report", "block", "profile=smoke")
    report = (work / "reports/block/README.md").read_text()
    assert "| mbnet | 0.27M | mbnet-0.27M-29 | 272,710 |" in report
    assert "## Gradient flow per block" in report and "| mbnet-0.27M-29 |" in report
    assert pd.read_csv(work / "reports/block/results.csv").set_index("label").loc["mbnet-0.27M-29", "n_seeds"] == 2
