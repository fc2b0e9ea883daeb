"""A study end to end on synthetic data: config -> multirun -> runs/ -> report, skipping, divergence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import TINY, cli_env, run_cli
from reslab.report import consistency, markdown
from reslab.run.sweep import sweep_jobs

SMOKE = ["profile=smoke", "logger=none", "trainer.save_weights=false"]


def results(root: Path, study: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "runs" / study / "smoke").glob("*/result.json"))]


DEPTH_SWEEP = ["experiment=depth", *SMOKE, "model.depth=8,14", "seed=0,1"]


@pytest.fixture()
def depth_sweep(cli, tmp_path, synth_archive):
    def run(*extra):
        return cli("reslab-train", "-m", *DEPTH_SWEEP, f"data.source={synth_archive}", *extra)

    return run


@pytest.fixture(scope="session")
def finished_depth_sweep(tmp_path_factory, synth_archive) -> tuple[Path, str]:
    """The smoke depth sweep, trained once for the tests that read it: (its project dir, its output)."""
    project = tmp_path_factory.mktemp("depth-sweep")
    proc = run_cli(
        "reslab-train", "-m", *DEPTH_SWEEP, f"data.source={synth_archive}", env=cli_env(project), cwd=project
    )
    return project, proc.stdout


@pytest.fixture()
def swept(finished_depth_sweep, tmp_path) -> str:
    """A copy of the finished sweep in this test's project dir (tmp_path), files and times as written; its output."""
    project, out = finished_depth_sweep
    shutil.copytree(project, tmp_path, dirs_exist_ok=True)
    return out


def test_every_run_of_a_sweep_records_where_its_wall_time_went(finished_depth_sweep):
    # One process trains the whole sweep (Hydra's basic launcher): its first run is timed from the process's start
    # (imports included), each later one from its own start; the probes' hooks are timed inside the fit.
    project, _ = finished_depth_sweep
    timings = {p.parent.name: json.loads(p.read_text()) for p in (project / "runs/depth/smoke").glob("*/timing.json")}
    assert len(timings) == 8
    starts = sorted(t["from"] for t in timings.values())
    assert starts.count("process start") == 1, starts
    for name, t in timings.items():
        phases = [p["phase"] for p in t["phases"]]
        assert phases[-1] == "result written" and "final evaluation" in phases and "data" in phases, name
        assert all(p["seconds"] >= 0 for p in t["phases"]), name
        assert {"FlowProbe", "CurveProbe", "GradNormProbe"} <= set(t["hooks"]), name


def test_smoke_depth_sweep_goes_from_config_to_report(swept, cli, tmp_path):
    assert "run 1/8" in swept and "run 8/8" in swept and "ETA" in swept
    rows = results(tmp_path, "depth")
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    run = tmp_path / "runs/depth/smoke/plain-8-s0"
    for f in ("config.yaml", "environment.json", "metrics.csv", "grad_norms.csv", "responses.csv", "result.json"):
        assert (run / f).is_file(), f
    r = json.loads((run / "result.json").read_text())
    for key in (
        "train_error",
        "test_error",
        "params",
        "flops",
        "wall_seconds",
        "images_per_second",
        "seed",
        "profile",
        "data_source",
        "data_checksum",
        "device",
        "torch",
        "git_commit",
    ):
        assert key in r, key
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.epoch) == [1, 2] and {"train_loss", "train_error", "test_error", "lr", "seconds"} <= set(
        metrics
    )

    curves = pd.read_csv(run / "curves.csv")
    assert curves.step.iloc[0] == 0 and curves.step.iloc[-1] == r["steps"], "curves run from step 0 to the end"
    assert {"train_error", "test_error", "running_train_loss"} <= set(curves)

    cli("reslab-report", "depth", "profile=smoke")
    report = (tmp_path / "reports/depth/README.md").read_text()
    assert "## Verdicts" in report and "Profile:** `smoke`" in report and "CPU-sized study" in report
    assert "commit" in report and "Seeds:** 0, 1" in report
    for name in ("H1", "H2", "interaction"):
        assert f"**{name}" in report, name
    assert "Holm" in report and "## What happened" in report and "Iterations:" in report
    assert (tmp_path / "reports/depth/curves.png").stat().st_size > 0
    assert (tmp_path / "reports/depth/error_vs_depth.png").stat().st_size > 0
    assert (tmp_path / "reports/depth/responses.png").is_file()
    # The depth study probes the critical window (conf/experiment/depth.yaml): the steps a smoke run reaches.
    assert {1, 5} <= set(r["flow_probe_steps"]) and {1, 5} <= set(pd.read_csv(run / "signal.csv").step)
    assert "## The critical window" in report and "Flow probes in the window: steps 1, 5." in report
    assert (tmp_path / "reports/depth/critical_window.png").stat().st_size > 0
    table = pd.read_csv(tmp_path / "reports/depth/results.csv")
    assert len(table) == 4 and set(table.n_seeds) == {2}
    per_run = pd.read_csv(tmp_path / "reports/depth/runs.csv")
    assert len(per_run) == 8 and {"net", "seed", "train_error", "test_error", "steps", "git_commit"} <= set(per_run)


def test_rerun_skips_finished_runs_and_a_changed_config_reruns(swept, depth_sweep, tmp_path):
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs/depth/smoke").glob("*/result.json")}
    assert len(stamp) == 8
    again = depth_sweep()
    assert again.stdout.count("skipped") == 8 and "epoch" not in again.stdout
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp

    # The changed config over half the sweep (depth 8: 4 runs) reruns each of them and sets the old ones aside.
    changed = depth_sweep("profile.lr=0.05", "model.depth=8")
    assert changed.stdout.count("skipped") == 0 and changed.stdout.count("ok: train err") == 4
    stale = list((tmp_path / "runs/depth/smoke").glob("*.stale-*"))
    assert len(stale) == 4, "finished runs of the old config are kept aside, not deleted"
    assert {p.name.split(".stale-")[0] for p in stale} == {"plain-8-s0", "plain-8-s1", "resnet-8-s0", "resnet-8-s1"}


def test_a_sweep_over_a_profile_value_trains_each_job_in_its_own_directory(cli, tmp_path, synth_archive):
    # Issue 23 (7): `model.depth=56,20 profile.max_steps=6400,3200 seed=100` sent both budgets of a net to
    # resnet-56-s100; the run lock skipped one, and a rerun superseded the other. Scaled to the smoke profile.
    sweep = [
        "reslab-train",
        "-m",
        *SMOKE,
        f"data.source={synth_archive}",
        "model=resnet",
        "model.depth=8,14",
        "profile.max_steps=2,4",
        "seed=100",
        "probes.flow_points=0",
        "probes.responses=false",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "jobs=2",
    ]
    first = cli(*sweep)
    study = tmp_path / "runs/adhoc/smoke"
    runs = {p.parent.name: json.loads(p.read_text()) for p in study.glob("*/result.json")}
    assert set(runs) == {
        "resnet-8-max_steps2-s100",
        "resnet-8-max_steps4-s100",
        "resnet-14-max_steps2-s100",
        "resnet-14-max_steps4-s100",
    }, first.stdout
    for name, r in runs.items():  # each its own result: its label is its directory's, its steps the budget it names
        assert r["status"] == "ok" and f"{r['label']}-s100" == name and f"max_steps{r['steps']}" in name
    assert len({r["key"] for r in runs.values()}) == 4
    assert "another process" not in first.stdout and not list(study.glob("*.stale-*"))
    record = json.loads(next((study / "_sweeps").glob("*.json")).read_text())
    assert record["label_keys"] == ["profile.max_steps"] and len(record["jobs"]) == 4
    assert record["runs"] == sorted(runs), "the guard's manifest names the directories the jobs trained in"
    # A report expects the very directories the jobs trained in.
    assert consistency.expected(study, "adhoc", "smoke")[0] == set(runs)

    # The same sweep again, in one process (Hydra's basic launcher: which process runs a job does not change its
    # directory or key, and joblib's start-up would double this test's time): every job is found finished.
    again = cli(*(a for a in sweep if not a.startswith(("hydra/launcher=", "hydra.launcher."))))
    assert again.stdout.count("finished earlier") == 4 and " ok: " not in again.stdout
    assert {p.parent.name: json.loads(p.read_text()) for p in study.glob("*/result.json")} == runs


# The head study (experiments/head.md) sweeps the head and the training arm: its labels carry both, so that no run
# of one head or arm can take another's directory, and its report tells nets apart by the whole label.
LABELLED_STUDIES = {"head": ["model.head", "profile.train_subset"]}


@pytest.mark.slow
def test_the_studies_sweeps_keep_their_plain_labels():
    # Every study sweeps only what a label shows already (model, depth, variant, block, seed): no suffix, so the
    # directories of their finished runs stand. The seed is in every label (runinfo.label) whatever the study: one
    # study sweeps two seeds to show it, the others one (each job is a composition, ~0.16 s on 2 cores).
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from reslab.paths import CONF_DIR
    from reslab.run import runinfo, sweep_label

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        for f in sorted((CONF_DIR / "experiment").glob("*.yaml")):
            params = compose("train", overrides=[f"experiment={f.stem}"], return_hydra_config=True).hydra.sweeper.params
            sweep = sweep_jobs(
                OmegaConf.to_container(params, resolve=False),
                [f"experiment={f.stem}", "profile=smoke", "seed=0,1" if f.stem == "depth" else "seed=0"],
            )
            jobs = [(job, compose("train", overrides=job, return_hydra_config=True)) for job in sweep]
            if f.stem in LABELLED_STUDIES:  # a study that sweeps a value the plain label does not show, on purpose
                assert sweep_label.label_sweep(jobs) == LABELLED_STUDIES[f.stem], f.stem
            else:
                assert sweep_label.label_sweep(jobs) == [], f.stem
                assert all(not cfg.get("label_suffix") for _, cfg in jobs)
            assert len({runinfo.run_dir(cfg) for _, cfg in jobs}) == len(jobs)


def test_a_run_missing_a_requested_measurement_is_trained_again(cli, tmp_path, synth_archive):
    common = ["reslab-train", *SMOKE, f"data.source={synth_archive}", "model.depth=8"]
    cli(*common, "probes.flow_points=0")
    run = tmp_path / "runs/adhoc/smoke/resnet-8-s0"
    assert not (run / "signal.csv").exists()
    again = cli(*common, "probes.flow_points=2")
    assert "skipped" not in again.stdout, "the flow readings were asked for and are missing"
    assert (run / "signal.csv").is_file() and len(list(run.parent.glob("*.stale-*"))) == 1
    first = pd.read_csv(next(run.parent.glob("*.stale-*")) / "metrics.csv")
    second = pd.read_csv(run / "metrics.csv")
    pd.testing.assert_frame_equal(first[["train_loss", "test_error"]], second[["train_loss", "test_error"]])


def test_the_same_config_and_seed_give_the_same_numbers_in_another_process_and_probes_change_none(
    cli, tmp_path, synth_archive
):
    # Three processes: two of one config (another study directory each; one a fresh interpreter, the other forked from
    # the suite's fork server, tests/forkserver.py) and one without probes. The flow probe runs
    # forward/backward passes in the middle of training and the curve probe evaluates in eval mode; BN statistics and
    # the random state are restored, so all three train bit-identically.
    common = ["reslab-train", *SMOKE, f"data.source={synth_archive}", "model.depth=8"]
    cli(*common, "study=a")
    cli(*common, "study=b", fresh=True)
    cli(*common, "study=bare", "probes.flow_points=0", "probes.grad_norms=false", "~profile.curve")
    a, b, bare = (pd.read_csv(tmp_path / f"runs/{s}/smoke/resnet-8-s0/metrics.csv") for s in ("a", "b", "bare"))
    cols = ["train_loss", "train_error", "test_error", "lr"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    pd.testing.assert_frame_equal(a[cols], bare[cols])
    probed = tmp_path / "runs/a/smoke/resnet-8-s0"
    assert {"signal.csv", "updates.csv", "curves.csv"} <= {f.name for f in probed.iterdir()}
    assert not {"signal.csv", "curves.csv"} & {f.name for f in (tmp_path / "runs/bare/smoke/resnet-8-s0").iterdir()}


def test_a_diverging_run_is_recorded_and_the_sweep_goes_on(cli, tmp_path, synth_archive):
    proc = cli(
        "reslab-train",
        "-m",
        "study=shortcut",
        *SMOKE,
        f"data.source={synth_archive}",
        "model.depth=8",
        "variant=scale-shortcut-0.5,identity-A",
        "profile.lr=1e6",
    )
    rows = {r["label"]: r for r in results(tmp_path, "shortcut")}
    assert len(rows) == 2, proc.stdout
    assert {r["status"] for r in rows.values()} == {"diverged"}
    assert "DIVERGED" in proc.stdout


def test_smoke_shortcut_study_reports_every_variant_with_verdicts(cli, tmp_path, synth_archive):
    variants = "plain,identity-A,projection-B,scale-shortcut-0.5,gate-exclusive-b-6,preact"
    cli(
        "reslab-train",
        "-m",
        "experiment=shortcut",
        *SMOKE,
        *TINY,
        "probes.response_calib_images=20",
        f"data.source={synth_archive}",
        f"variant={variants}",
        "seed=0,1",
    )
    cli("reslab-report", "shortcut", "profile=smoke")
    report = (tmp_path / "reports/shortcut/README.md").read_text()
    for v in variants.split(","):
        assert f"| {v}-8 |" in report
    for h in ("**H1", "**H2", "**H3"):
        assert h in report
    assert "He2016-Identity Table 1" in report and "no: published at depth 110, ours 8" in report
    assert "Holm" in report and "## Outliers diagnosed" in report and "95% CI" in report
    contrasts = pd.read_csv(tmp_path / "reports/shortcut/contrasts.csv")
    assert set(contrasts.family) == {"primary", "per-variant"} and (contrasts.p_holm >= contrasts.p).all()
    assert "Seeds:** 0, 1 (2 per net)" in report, "the seeds per net are counted from the runs"
    assert "![paired differences](paired_differences.png)" in report
    assert (tmp_path / "reports/shortcut/paired_differences.png").stat().st_size > 0
    assert (contrasts.p_equiv_holm >= contrasts.p_equiv).all(), "'no practical difference' is Holm-adjusted too"
    # Per-image predictions feed McNemar: one exact test per seed (not pooled over seeds), in a secondary table only.
    mcn = pd.read_csv(tmp_path / "reports/shortcut/mcnemar.csv")
    tested = contrasts[contrasts.metric == "test_error"]
    assert len(mcn) == 2 * len(tested) and set(mcn.seed) == {0, 1} and "p_mcnemar" not in contrasts.columns
    verdicts = report.split("## Verdicts")[1].split("#### McNemar per seed")[0]
    assert "McNemar" not in verdicts, "no McNemar p in a verdict line or table"
    assert "#### McNemar per seed (secondary)" in report
    per_run = pd.read_csv(tmp_path / "reports/shortcut/runs.csv")
    assert len(per_run) == 12 and set(per_run.seed) == {0, 1}
    table = pd.read_csv(tmp_path / "reports/shortcut/results.csv")
    assert table.set_index("variant_name").loc["identity-A", "extra_params"] == 0
    assert table.set_index("variant_name").loc["projection-B", "extra_params"] > 0


def test_the_seed_line_counts_the_seeds_of_every_net():
    # The shortcut study's layout: most variants on seeds 0-2, the H1 pair on 0-4, the deep H3 pair on 0-3.
    rows = [(v, s) for v in ("projection-B-20", "preact-20", "dropout-0.5-20") for s in range(3)]
    rows += [(v, s) for v in ("plain-20", "identity-A-20") for s in range(5)]
    rows += [(v, s) for v in ("identity-A-56", "preact-56") for s in range(4)]
    runs = pd.DataFrame(rows, columns=["label", "seed"])
    assert markdown.seeds_per_net(runs) == (
        "3 per net for 3 nets; 5 for plain-20, identity-A-20; 4 for identity-A-56, preact-56"
    )
    assert markdown.seeds_per_net(runs[runs.seed < 3]) == "3 per net"


def test_grad_flow_at_init_feeds_the_depth_report(cli, tmp_path, synth_archive, swept):
    cli(
        "reslab-gradflow",
        f"data.source={synth_archive}",
        "gradflow.depths=[8,14]",
        "gradflow.init_seeds=[0,1]",
        "gradflow.batches=1",
        "gradflow.batch_size=32",
        "gradflow.variant_depths=[8]",
        "gradflow.variants=[plain,identity-A,relu-before-add]",
    )
    rows = pd.read_csv(tmp_path / "runs/gradflow/init.csv")
    variants = pd.read_csv(tmp_path / "runs/gradflow/signal_variants.csv")
    assert set(variants.variant) == {"plain", "identity-A", "relu-before-add"} and {"grad_rms", "act_rms"} <= set(
        variants
    )
    assert set(rows.norm) == {"bn", "none"} and set(rows.depth) == {8, 14}
    cli("reslab-report", "depth", "profile=smoke")
    report = (tmp_path / "reports/depth/README.md").read_text()
    assert "### The backward signal at initialisation (size-free)" in report and "plain bn: first/last ratio" in report
    # The first plan's 0.01 weight-gradient rule is superseded (experiments/depth.md, plan (b)): never stated as the
    # rule.
    assert "gradient is *vanishing* when the first-conv / last-conv gradient-norm ratio is below" not in report
    assert "the first plan's superseded threshold 0.01" in report
    # The rule is the amendment's (2026-12-04): the GSC per-block rate; plan (b)'s ratio is named as what it replaced.
    assert (
        "Rule (experiments/depth.md, amendment of 2026-12-04" in report and "It replaced plan (b)'s RMS ratio" in report
    )
    assert (tmp_path / "reports/depth/gradflow_init_ratio.png").is_file()
    assert (tmp_path / "reports/depth/gradflow_signal_init.png").is_file()
    # The positive controls are in the same table and must be read as built: the scaled-init nets by the ratio, the
    # chains of reslab.probes.controls by the gradient scale coefficient.
    for statistic in ("ratio", "gsc"):
        for built in ("vanishing", "exploding"):
            assert report.count(f"expected {built} ({statistic}): **correct**") == 1
    assert "All positive controls are read as built" in report
