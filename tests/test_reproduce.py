"""`reslab-reproduce`: a study's report says whether this code computes its runs' numbers, checked by retraining one
run from its config and comparing the bytes, never asserted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import cli_env, run_cli
from reslab.report.markdown import cpu_text, reproduced_line
from reslab.report.results import load_results
from reslab.run import numerics, runinfo

RUN = ["profile=smoke", "logger=none", "model=resnet", "model.depth=8", "threads=1", "study=repro"]


@pytest.fixture(scope="module")
def study(tmp_path_factory, synth_archive) -> Path:
    """A study of two finished smoke runs; the cheaper is the one reslab-reproduce picks."""
    project = tmp_path_factory.mktemp("repro")
    for seed in (3, 4):
        run_cli("reslab-train", *RUN, f"seed={seed}", f"data.source={synth_archive}", env=cli_env(project), cwd=project)
    return project


def copy_of(study: Path, tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(study, project)
    return project


def test_main_retrains_a_run_of_its_own_numerics_bit_for_bit_and_the_report_says_so(study, tmp_path):
    project = copy_of(study, tmp_path)
    proc = run_cli("reslab-reproduce", "repro", "profile=smoke", env=cli_env(project), cwd=project)
    assert "identical, bit for bit" in proc.stdout
    record = json.loads((project / "runs/repro/smoke/_reproduced.json").read_text())
    assert record["identical"] and record["differences"] == []
    assert {"model.pt", "predictions.npz", "curves.csv"} <= set(record["compared"])
    assert record["numerics"] == numerics.VERSION
    # The check ran in a scratch runs root: the study's own runs are untouched and still two.
    results = load_results(project / "runs", "repro", "smoke")
    assert len(results) == 2
    line = reproduced_line(results)
    assert f"`{record['run']}`" in line and "identical bit for bit" in line


def test_a_run_that_main_computes_differently_is_reported_as_different(study, tmp_path):
    project = copy_of(study, tmp_path)
    run = project / "runs/repro/smoke/resnet-8-s4"
    # As if an older code had trained it: one number of the stored run is not what this code computes.
    result = json.loads((run / "result.json").read_text())
    result["test_error"] = result["test_error"] + 1.0
    (run / "result.json").write_text(json.dumps(result))
    proc = run_cli("reslab-reproduce", "repro", "profile=smoke", "run=resnet-8-s4", env=cli_env(project), cwd=project)
    assert "DIFFERENT: test_error" in proc.stdout
    line = reproduced_line(load_results(project / "runs", "repro", "smoke"))
    assert "**different** in test_error" in line


def test_a_run_of_another_numerics_version_is_refused_in_one_line(study, tmp_path):
    project = copy_of(study, tmp_path)
    for result_file in (project / "runs/repro/smoke").glob("*/result.json"):
        result = json.loads(result_file.read_text())
        result.pop("numerics")  # written before versions existed
        result_file.write_text(json.dumps(result))
    proc = run_cli("reslab-reproduce", "repro", "profile=smoke", env=cli_env(project), cwd=project, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "numerics version unversioned" in proc.stderr
    assert not (project / "runs/repro/smoke/_reproduced.json").exists()
    assert not (project / "runs/_reproduce").exists()


def test_an_unknown_run_names_the_valid_ones(study, tmp_path):
    project = copy_of(study, tmp_path)
    proc = run_cli(
        "reslab-reproduce", "repro", "profile=smoke", "run=resnet-9-s3", env=cli_env(project), cwd=project, check=False
    )
    assert proc.returncode == 2
    assert "run='resnet-9-s3'" in proc.stderr and "resnet-8-s3, resnet-8-s4" in proc.stderr


def test_a_report_without_a_check_says_it_is_not_checked(study):
    line = reproduced_line(load_results(study / "runs", "repro", "smoke"))
    assert "not checked" in line and "make reproduce STUDY=repro" in line


def test_every_run_records_its_cpu_and_the_report_names_it(study):
    results = load_results(study / "runs", "repro", "smoke")
    assert set(results.cpu) == {runinfo.cpu_name()}
    assert cpu_text(results) == f"CPU {runinfo.cpu_name()}"


def test_runs_from_before_the_cpu_was_recorded_are_counted_not_guessed():
    older = pd.DataFrame({"cpu": ["AMD EPYC, AVX2", None, None]})
    assert cpu_text(older) == "CPU AMD EPYC, AVX2; 2 runs without a recorded CPU (trained before runs recorded it)"
    assert cpu_text(pd.DataFrame({"seed": [0]})) == "1 run without a recorded CPU (trained before runs recorded it)"


def test_a_run_restored_from_the_archive_without_weights_is_compared_on_the_rest(study, tmp_path):
    project = copy_of(study, tmp_path)
    (project / "runs/repro/smoke/resnet-8-s3/model.pt").unlink()  # experiments/archive/ keeps no weights
    run_cli("reslab-reproduce", "repro", "profile=smoke", "run=resnet-8-s3", env=cli_env(project), cwd=project)
    record = json.loads((project / "runs/repro/smoke/_reproduced.json").read_text())
    assert record["identical"] and record["not_compared"] == ["model.pt"]
    assert "model.pt" not in record["compared"] and "predictions.npz" in record["compared"]
    assert "not compared, absent from the stored run: model.pt" in reproduced_line(
        load_results(project / "runs", "repro", "smoke")
    )


def _run_with(tmp_path: Path, name: str, signal: pd.DataFrame) -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "result.json").write_text(json.dumps({"train_loss": 1.5, "steps": 8}))
    pd.DataFrame({"epoch": [1], "step": [8], "train_loss": [1.5], "seconds": [3.0]}).to_csv(
        run / "metrics.csv", index=False
    )
    signal.to_csv(run / "signal.csv", index=False)
    return run


def test_a_probe_column_added_after_version_1_leaves_an_older_runs_fingerprint_as_it_was(tmp_path):
    # signal.csv gained `loss` (issue 25): a run from before it and a retrain with it computed the same numbers, so
    # they compare equal (the file without the new column is byte for byte the old file); where both runs have the
    # column, it is compared too.
    from reslab import reproduce

    old = pd.DataFrame({"step": [0, 0], "block": [0, 1], "grad_rms": [0.1234567890123, 2.5e-07]})
    before = reproduce.fingerprint(_run_with(tmp_path, "before", old))
    after = reproduce.fingerprint(_run_with(tmp_path, "after", old.assign(loss=2.302585092994)))
    assert before["sha256"] == after["sha256"] and before["sha256_added"] == {}
    assert reproduce.differences(before, after) == []
    other = reproduce.fingerprint(_run_with(tmp_path, "other", old.assign(loss=2.302585092995)))
    assert reproduce.differences(after, other) == ["signal.csv (loss)"]
    changed = reproduce.fingerprint(_run_with(tmp_path, "changed", old.assign(grad_rms=[0.1234567890124, 2.5e-07])))
    assert reproduce.differences(before, changed) == ["signal.csv"]
