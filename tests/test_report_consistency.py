"""A report compares like with like and says whether its study is complete.

Claims: runs of one study that differ in their training recipe (profile numbers, data copy, precision) are refused
with one line naming the setting, not averaged under the first run's profile; the report lists the runs its sweeps
asked for but did not finish (missing, failed) and the superseded runs it left out."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from conftest import run_cli
from reslab.errors import ReslabError
from reslab.paths import CONF_DIR
from reslab.report import consistency, overlap, results
from reslab.run.sweep import SWEEPS, record


def fake_run(
    study_dir,
    name,
    lr=0.1,
    status="ok",
    checksum="abc",
    seed=0,
    label="resnet-20",
    numerics=None,
    key=None,
    suffix=None,
):
    d = study_dir / name
    d.mkdir(parents=True)
    cfg = {
        "profile": {"name": "smoke", "lr": lr, "epochs": 1},
        "data": {"source": f"/somewhere/{name}", "subset_seed": 0},
    }
    (d / "config.yaml").write_text(yaml.safe_dump(cfg | ({"label_suffix": suffix} if suffix else {})))
    (d / "result.json").write_text(
        json.dumps(
            {
                "status": status,
                "study": study_dir.parent.name,
                "profile": "smoke",
                "label": label,
                "seed": seed,
                "data_checksum": checksum,
                "precision": "32-true",
                "device": "cpu (2 cores, 1 threads)",
            }
            | ({"numerics": numerics} if numerics is not None else {})
            | ({"key": key} if key else {})
        )
    )
    return d


def test_runs_trained_with_two_learning_rates_are_refused_naming_the_setting(tmp_path):
    study = tmp_path / "runs" / "mix" / "smoke"
    fake_run(study, "resnet-20-s0", lr=0.1)
    fake_run(study, "resnet-20-s1", lr=0.1, seed=1)
    fake_run(study, "resnet-20-s2", lr=0.01, seed=2)
    with pytest.raises(ReslabError) as err:
        results.load_results(tmp_path / "runs", "mix", "smoke")
    msg = str(err.value)
    assert (
        "\n" not in msg
        and "profile.lr = 0.1 in 2 run(s)" in msg
        and "profile.lr = 0.01 in 1 run(s) (resnet-20-s2)" in msg
    )


def test_runs_on_two_data_copies_are_refused_but_a_different_data_path_is_not(tmp_path):
    study = tmp_path / "runs" / "mix" / "smoke"
    fake_run(study, "resnet-20-s0", checksum="abc")
    fake_run(study, "resnet-20-s1", checksum="abc", seed=1)  # same data at another path: fine
    assert len(results.load_results(tmp_path / "runs", "mix", "smoke")) == 2
    fake_run(study, "resnet-20-s2", checksum="xyz", seed=2)
    with pytest.raises(ReslabError, match="data checksum"):
        results.load_results(tmp_path / "runs", "mix", "smoke")


def test_runs_of_two_numerics_versions_are_refused_naming_the_versions(tmp_path):
    study = tmp_path / "runs" / "mix" / "smoke"
    fake_run(study, "resnet-20-s0", numerics=1)
    fake_run(study, "resnet-20-s1", numerics=1, seed=1)
    assert len(results.load_results(tmp_path / "runs", "mix", "smoke")) == 2
    fake_run(study, "resnet-20-s2", seed=2)  # written before numerics had versions
    with pytest.raises(ReslabError) as err:
        results.load_results(tmp_path / "runs", "mix", "smoke")
    msg = str(err.value)
    assert "\n" not in msg and "numerics version = 1 in 2 run(s)" in msg
    assert 'numerics version = "unversioned" in 1 run(s) (resnet-20-s2)' in msg


def test_a_report_names_the_runs_it_shares_with_another_study_by_their_keys(tmp_path):
    depth = tmp_path / "runs" / "depth" / "smoke"
    fake_run(depth, "resnet-20-s0", key="k0")
    fake_run(depth, "resnet-20-s1", key="k1", seed=1)
    shortcut = tmp_path / "runs" / "shortcut" / "smoke"
    fake_run(shortcut, "identity-A-20-s0", key="k0", label="identity-A-20")  # the same run under another name
    fake_run(shortcut, "identity-A-20-s5", key="k5", seed=5, label="identity-A-20")
    df = results.load_results(tmp_path / "runs", "shortcut", "smoke")
    assert overlap.shared(df, "shortcut") == {"depth": ["identity-A-20-s0"]}
    assert "1 with `depth` (identity-A-20-s0)" in overlap.line(df, "shortcut")
    assert "hold other numbers" not in overlap.line(df, "shortcut")
    alone = results.load_results(tmp_path / "runs", "depth", "smoke").iloc[1:]  # resnet-20-s1 only
    assert overlap.line(alone, "depth").startswith("- **Shared runs:** none")


def test_a_shared_run_trained_again_elsewhere_is_not_called_the_same_bytes(tmp_path):
    depth = tmp_path / "runs" / "depth" / "smoke"
    fake_run(depth, "resnet-20-s0", key="k0")
    shortcut = tmp_path / "runs" / "shortcut" / "smoke"
    again = fake_run(shortcut, "identity-A-20-s0", key="k0", label="identity-A-20")
    result = json.loads((again / "result.json").read_text())
    (again / "result.json").write_text(json.dumps(result | {"train_loss": 1.25}))  # another CPU's float sums
    df = results.load_results(tmp_path / "runs", "shortcut", "smoke")
    line = overlap.line(df, "shortcut")
    assert "1 with `depth` (identity-A-20-s0), of which 1 hold other numbers there" in line
    assert "not the same bytes" in line and "not independent" in line


def test_the_report_command_says_so_in_one_line_and_exits_2(tmp_path):
    study = tmp_path / "runs" / "depth" / "smoke"
    fake_run(study, "resnet-20-s0", lr=0.1)
    fake_run(study, "resnet-20-s1", lr=0.01, seed=1)
    proc = run_cli(
        "python",
        "-m",
        "reslab.report.cli",
        "depth",
        "profile=smoke",
        "runs=runs",
        "reports=reports",
        env=dict(os.environ),
        cwd=tmp_path,
        check=False,
    )  # forked (tests/forkserver.py), as `python -m` runs it
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "mixes training recipes" in proc.stderr and not (tmp_path / "reports").exists()


def test_two_runs_of_one_net_and_seed_from_a_sweep_over_another_value_are_refused(tmp_path):
    # A sweep over a value the net's name does not show (here a model option) gives each job its own directory
    # (reslab.run.sweep_label); a report must not take the two for two seeds of one net.
    study = tmp_path / "runs" / "mix" / "smoke"
    fake_run(study, "resnet-20-shortcutA-s0", label="resnet-20-shortcutA", suffix="shortcutA")
    fake_run(study, "resnet-20-shortcutA-s1", label="resnet-20-shortcutA", suffix="shortcutA", seed=1)
    assert len(results.load_results(tmp_path / "runs", "mix", "smoke")) == 2
    fake_run(study, "resnet-20-shortcutB-s0", label="resnet-20-shortcutB", suffix="shortcutB")
    with pytest.raises(ReslabError) as err:
        results.load_results(tmp_path / "runs", "mix", "smoke")
    assert "holds 2 runs of resnet-20 seed 0 (resnet-20-shortcutA-s0, resnet-20-shortcutB-s0)" in str(err.value)


def test_completeness_lists_the_missing_failed_and_superseded_runs_of_a_recorded_sweep(tmp_path):
    study = tmp_path / "runs" / "ctest" / "smoke"
    manifest = {"jobs": [["study=ctest", "profile=smoke", "model.depth=20", f"seed={s}"] for s in (0, 1, 2)]}
    (study / SWEEPS).mkdir(parents=True)
    (study / SWEEPS / "x.json").write_text(json.dumps(manifest))
    fake_run(study, "resnet-20-s0")
    fake_run(study, "resnet-20-s0.stale-1234abcd")
    (study / "resnet-20-s1.next").mkdir()  # where a job that failed inside a multirun leaves its message
    (study / "resnet-20-s1.next" / "failed.json").write_text("{}")
    df = results.load_results(tmp_path / "runs", "ctest", "smoke")
    line = consistency.completeness_line(df)
    assert "expected 3 (from the sweeps recorded in `_sweeps/`)" in line
    assert "1 finished (1 ok, 0 diverged)" in line and "1 failed (resnet-20-s1)" in line
    assert "1 missing (resnet-20-s2)" in line and "resnet-20-s0.stale-1234abcd" in line
    assert "complete." not in line


def test_a_sweep_records_its_jobs_where_its_runs_go(tmp_path):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train", overrides=["experiment=block", "profile=smoke", f"paths.runs={tmp_path}"], return_hydra_config=True
        )
    with open_dict(cfg):  # as Hydra hands it to on_multirun_start: the command line, sweeps unexpanded
        cfg.hydra.overrides.task = ["experiment=block", "profile=smoke", "seed=7,8", f"paths.runs={tmp_path}"]
    path = record(cfg)
    jobs = json.loads(path.read_text())["jobs"]
    assert path.parent == tmp_path / "block" / "smoke" / SWEEPS
    assert len(jobs) == 7 * 2  # the main arm's seven nets x the two seeds of the command line, not the config's three
    assert all("seed=7" in j or "seed=8" in j for j in jobs)


def test_a_finished_study_without_sweep_records_is_checked_against_its_experiment_configs(tmp_path):
    names, source = consistency.expected(tmp_path, "shortcut", "cpu")
    assert "experiment=shortcut" in source and "experiment=shortcut-h1" in source
    assert "identity-A-20-s4" in names and "preact-56-s3" in names and "preact-56-s4" not in names


def test_a_study_s_expected_runs_are_composed_once_per_process_and_again_after_a_config_changes(tmp_path, monkeypatch):
    # Reports of studies without records ask for them once per report (the budget pilot once per candidate); each
    # answer composes dozens of configs. Kept per process, keyed by conf/'s files: an edited config is read again.
    import hydra

    from reslab.run import sweep

    first = consistency.expected(tmp_path, "shortcut", "cpu")
    composed = []
    real = hydra.compose
    monkeypatch.setattr(hydra, "compose", lambda *a, **k: composed.append(a) or real(*a, **k))
    assert consistency.expected(tmp_path, "shortcut", "cpu") == first and composed == []
    names, _ = consistency.expected(tmp_path, "shortcut", "cpu")
    names.clear()  # a caller's copy: the kept answer is not changed through it
    assert consistency.expected(tmp_path, "shortcut", "cpu") == first

    # Under another key (conf/ edited: the next test) the names are composed again, and kept again.
    calls = []
    monkeypatch.setattr(sweep, "_NAMES", {})  # the kept answers of this process stay as they were
    monkeypatch.setattr(sweep, "_composed_names", lambda sweeps: calls.append(sweeps) or {"a-run"})
    sweeps = [([["seed=0"]], None)]
    assert sweep._compose_names(sweeps) == sweep._compose_names(sweeps) == {"a-run"} and len(calls) == 1
    monkeypatch.setattr(sweep, "_conf_signature", lambda: ("conf/ edited",))
    assert sweep._compose_names(sweeps) == {"a-run"} and len(calls) == 2


def test_the_key_of_a_kept_answer_changes_when_a_config_file_does(tmp_path, monkeypatch):
    import shutil

    from reslab import paths
    from reslab.run import sweep

    conf = shutil.copytree(CONF_DIR, tmp_path / "conf")
    monkeypatch.setattr(paths, "CONF_DIR", conf)
    before = sweep._conf_signature()
    assert sweep._conf_signature() == before
    (conf / "experiment" / "depth.yaml").write_text((conf / "experiment" / "depth.yaml").read_text() + "\n# edited\n")
    assert sweep._conf_signature() != before
