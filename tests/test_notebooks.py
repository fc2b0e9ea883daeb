"""Every notebook in notebooks/ runs from top to bottom: converted from its jupytext .py and executed in a kernel
installed for the purpose, against smoke-profile results of the three studies that the project's CLI makes on
synthetic data. A cell that raises fails the test and the failure shows that cell and its error."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

from conftest import ROOT, TINY, run_cli

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
KERNEL = "reslab"
# The fewest and smallest runs that still give every notebook something to show: one seed, one epoch of two steps,
# tiny probes (conftest.TINY); threads=1 because the three sweeps run side by side.
SMOKE = [
    "profile=smoke",
    "logger=none",
    "trainer.save_weights=false",
    "threads=1",
    "seed=0",
    *TINY,
    "probes.response_calib_images=20",
]


@pytest.fixture(scope="session")
def kernel(tmp_path_factory) -> Path:
    """A kernel of this interpreter named 'reslab', drawing with Agg, installed in a prefix of its own (a fresh
    environment has none; found through JUPYTER_PATH, so the virtual environment is left as it is)."""
    prefix = tmp_path_factory.mktemp("jupyter")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--prefix",
            str(prefix),
            "--name",
            KERNEL,
            "--env",
            "MPLBACKEND",
            "Agg",
        ],
        check=True,
        capture_output=True,
    )
    return prefix / "share" / "jupyter"


@pytest.fixture(scope="session")
def smoke_env(tmp_path_factory) -> dict:
    return {
        **os.environ,
        "RESLAB_CACHE": str(tmp_path_factory.mktemp("cache")),
        "WANDB_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
    }


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory, synth_archive, smoke_env) -> Path:
    """runs/ with the depth study (plain and residual at depth 8 and 14), two variants of the shortcut study, and
    two nets of the block study with their measured cost."""
    project = tmp_path_factory.mktemp("project")
    common = [*SMOKE, f"data.source={synth_archive}"]

    def train(*args):
        return run_cli("reslab-train", "-m", *args, *common, env=smoke_env, cwd=project)

    def block_and_cost():
        train("experiment=block", "block=resnet-0.27M,preact-0.27M")
        run_cli(
            "reslab-cost",  # as the Makefile runs it
            "study=block",
            "profile=smoke",
            "threads=1",
            "cost.batch_size=4",
            "cost.warmup_steps=1",
            "cost.steps=1",
            "cost.repeats=1",
            "cost.memory_batch=8",
            env=smoke_env,
            cwd=project,
        )

    with ThreadPoolExecutor(3) as pool:
        for job in [
            pool.submit(train, "experiment=depth", "model.depth=8,14"),
            pool.submit(train, "experiment=shortcut", "variant=plain,identity-A"),
            pool.submit(block_and_cost),
        ]:
            job.result()
    return project / "runs"


def execute(nb: nbformat.NotebookNode, cwd: Path) -> nbformat.NotebookNode:
    """Run every cell in the 'reslab' kernel; CellExecutionError names the failing cell and its traceback."""
    nb, _ = ExecutePreprocessor(kernel_name=KERNEL, timeout=600).preprocess(nb, {"metadata": {"path": str(cwd)}})
    return nb


@pytest.fixture()
def notebook_env(kernel, smoke_env, monkeypatch):
    """The kernel inherits this process's environment: the notebooks' inputs go there."""
    for name in ("RESLAB_CACHE", "WANDB_MODE"):
        monkeypatch.setenv(name, smoke_env[name])
    monkeypatch.setenv("JUPYTER_PATH", str(kernel))


def test_there_is_a_notebook_per_study_and_a_walkthrough():
    assert {p.stem for p in NOTEBOOKS} == {"depth_study", "shortcut_study", "block_study", "walkthrough"}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_on_smoke_results(path, smoke_runs, synth_archive, notebook_env, monkeypatch, tmp_path):
    monkeypatch.setenv("RESLAB_NB_RUNS", str(smoke_runs))
    monkeypatch.setenv("RESLAB_NB_PROFILE", "smoke")
    monkeypatch.setenv("RESLAB_NB_DATA", str(synth_archive))
    # The walkthrough trains its own net: the smallest, as small as the study runs above.
    monkeypatch.setenv("RESLAB_NB_DEPTH", "8")
    monkeypatch.setenv("RESLAB_NB_ARGS", " ".join(a for a in SMOKE if not a.startswith(("profile=", "logger="))))
    nb = execute(jupytext.read(path), tmp_path)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("Figure" in o.get("data", {}).get("text/plain", "") for o in outputs), "it shows the report's figures"


def test_a_notebook_that_raises_fails_with_the_cell_and_its_error(notebook_env, tmp_path):
    nb = jupytext.reads("# %%\nx = 1\n\n# %%\nraise ValueError('the cell that broke')\n", fmt="py:percent")
    with pytest.raises(CellExecutionError, match="the cell that broke") as err:
        execute(nb, tmp_path)
    assert "raise ValueError('the cell that broke')" in str(err.value) and "ValueError" in str(err.value)
