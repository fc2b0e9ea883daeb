"""The convergence report (experiments/convergence.md) reads iterations to each training-error target off the curves,
pairs plain and residual nets of one depth by seed, and applies the paired rule in doublings.

Runs here are written directly, with curves from a known model: training error falls linearly from 90 % at a rate
per iteration, and the residual net's rate is twice the plain net's at depth 20 (one doubling faster), equal at depth
32; ResNet-20 also ends 10 pp lower."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml

from reslab.report import convergence

SEEDS = (0, 1, 2, 3)
STEPS = 800


def rate(family, depth, seed):
    base = 0.05 * (1 + 0.05 * seed)  # error points per iteration
    return base * (2 if family == "resnet" and depth == 20 else 1)


def fake_run(root, family, depth, seed, study="dep", profile="cpu"):
    label = f"{family}-{depth}"
    d = root / study / profile / f"{label}-s{seed}"
    d.mkdir(parents=True)
    prof = {
        "name": profile,
        "lr": 0.025,
        "batch_size": 32,
        "max_steps": STEPS,
        "milestones": [0.75],
        "gamma": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "train_subset": 6400,
    }
    (d / "config.yaml").write_text(yaml.safe_dump({"profile": prof, "data": {"split": "test"}}))
    steps = list(range(0, STEPS + 1, 50))
    err = [max(5.0, 90 - rate(family, depth, seed) * s) for s in steps]
    pd.DataFrame({"step": steps, "running_train_error": [math.nan] + err[1:]}).to_csv(d / "curves.csv", index=False)
    end = 50.0 + (0 if family == "resnet" and depth == 20 else 10) + 0.3 * seed
    (d / "result.json").write_text(
        json.dumps(
            {
                "status": "ok",
                "study": study,
                "profile": profile,
                "label": label,
                "family": family,
                "depth": depth,
                "seed": seed,
                "steps": STEPS,
                "steps_planned": STEPS,
                "batch_size": 32,
                "train_error": end,
                "test_error": end + 5,
                "test_loss": 1.0,
                "params": depth * 1000,
                "flops": depth,
                "wall_seconds": 1.0,
                "git_commit": "abc",
                "key": f"{label}-{seed}",
                "numerics": 1,
                "data_checksum": "x",
                "data_copy": "synthetic",
                "data_format": "pickle",
                "train_images": 6400,
                "eval_images": 10000,
                "eval_split": "test",
                "device": "cpu (2 cores, 1 threads)",
                "precision": "32-true",
                "cpu": "test CPU",
            }
        )
    )


@pytest.fixture()
def runs(tmp_path):
    root = tmp_path / "runs"
    for family in ("plain", "resnet"):
        for depth in (20, 32):
            for seed in SEEDS:
                fake_run(root, family, depth, seed)
    return root


def test_iterations_to_a_target_are_interpolated_and_censored_at_the_horizon():
    curve = pd.DataFrame({"step": [0, 100, 200, 300], "running_train_error": [math.nan, 80.0, 70.0, 65.0]})
    assert convergence.steps_to(curve, 75.0, 300) == (150.0, True)
    assert convergence.steps_to(curve, 85.0, 300) == (100.0, True)  # already below at the first point
    assert convergence.steps_to(curve, 60.0, 300) == (300.0, False)  # never: censored at the horizon
    assert convergence.steps_to(curve, 65.0, 200) == (200.0, False)  # reached only after the horizon


def test_the_residual_net_that_falls_twice_as_fast_is_one_doubling_faster(runs):
    results = convergence.load_results(runs, "dep", "cpu")
    trunk = convergence.trunks(results)
    curves = convergence.load_csvs(trunk, "curves.csv")
    reach = convergence.reach_table(trunk, curves, (80.0, 70.0, 60.0), 800)
    cs, unread = convergence.c1_contrasts(reach, 20)
    assert not unread
    for c in cs:  # linear curves sampled every 50 steps: the interpolation is exact
        assert c.mean == pytest.approx(1.0, abs=1e-9)
        assert c.verdict == "supported"
    assert convergence.c1_reading(cs).startswith("supported")
    same, _ = convergence.c1_contrasts(reach, 32)
    assert all(c.mean == pytest.approx(0.0, abs=1e-9) for c in same)


def test_the_report_states_each_depth_reading_and_the_end_point(runs, tmp_path):
    readme = convergence.build(runs, tmp_path / "reports", "cpu", study="dep").read_text()
    assert "Exploratory (seen data)" in readme  # the depth-style study is not the plan's confirmatory data
    assert "C1, depth 20: supported" in readme
    assert "C1, depth 32: no practical difference" in readme or "C1, depth 32: inconclusive" in readme
    # ResNet-20 ends 10 pp lower: the seed's "similar accuracy at 18 layers" reads contradicted here.
    assert "C2, depth 20 (similar end point): contradicted (the residual net ends better)" in readme
    assert "`reslab-report convergence name=dep profile=cpu`" in readme
    for f in ("iterations.csv", "contrasts.csv", "curves.png", "ratios.png"):
        assert (tmp_path / "reports" / "convergence-dep" / f).is_file()


def test_a_target_neither_net_reaches_gets_no_reading(runs):
    results = convergence.load_results(runs, "dep", "cpu")
    trunk = convergence.trunks(results)
    reach = convergence.reach_table(trunk, convergence.load_csvs(trunk, "curves.csv"), (10.0,), 800)
    cs, unread = convergence.c1_contrasts(reach, 32)
    assert cs == [] and unread == [10.0]
    assert convergence.c1_reading(cs).startswith("no reading")


def test_a_study_without_plain_runs_yet_says_so_instead_of_failing(tmp_path):
    # The budget study before its plain arm: residual nets only.
    for depth in (20, 56):
        for seed in SEEDS:
            fake_run(tmp_path / "runs", "resnet", depth, seed)
    text = convergence.build(tmp_path / "runs", tmp_path / "reports", "cpu", study="dep").read_text()
    assert "Not answerable yet: no depth has both plain and residual runs" in text
    assert not (tmp_path / "reports/convergence-dep/curves.png").exists()
