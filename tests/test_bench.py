"""`make bench` sets reslab beside the loop a user writes and beside the model alone, in one process, and writes a
report with every column the comparison needs. A tiny net and one or two timed steps: these check that the bench runs
and reports, not any speed (the figures come from `make bench` on a quiet machine)."""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir

from reslab.bench import sweeps
from reslab.bench.fixed_cost import EXIT, import_group, parse_importtime
from reslab.bench.pipeline import study_points
from reslab.bench.report import DETAIL_COLUMNS, FIT, SUMMARY_COLUMNS, fixed_cost_lines, gap, lane_verdict
from reslab.bench.run import check
from reslab.errors import ReslabError
from reslab.paths import CONF_DIR

# ResNet-8 at batch 8, the batch of the profile whose probes it costs (so that the probe row is filled too);
# small probe sets, a small matmul for the peak.
TINY = [
    "bench.cases=[{label: ResNet-8, overrides: ['model.depth=8'], batch: 8, steps: 1}]",
    "bench.warmup_steps=1",
    "bench.repeats=2",
    "bench.min_images=64",
    "bench.peak_size.cpu=128",
    "bench.peak_calls=1",
    "profile.batch_size=8",
    "probes.flow_batch_size=8",
    "profile.curve.train_images=16",
    "profile.curve.test_images=16",
    "threads=1",
    "bench.evaluation.images=20",
    "bench.evaluation.batches=[5,20]",
    "bench.fusion.batch=4",
    "bench.fusion.steps=1",
    "bench.fusion.repeats=2",
    "bench.lanes.seconds=0.2",
    "bench.lanes.repeats=1",
    "bench.floor.steps=3",
    "bench.fixed_cost.cases=[{label: ResNet-8, overrides: ['model.depth=8']}]",
    "bench.fixed_cost.runs=[{profile: smoke, steps: null}]",
    "bench.fixed_cost.repeats=1",
    "bench.sweeps_archives=null",  # reading the committed archives is tested on its own (below)
]


def bench_cfg(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("bench", overrides=list(overrides))


def test_the_bench_runs_end_to_end_and_reports_every_column(cli, tmp_path):
    out = cli("reslab-bench", *TINY).stdout
    assert "[bench 1/1 ResNet-8 b8 repeat 2/2]" in out
    readme = (tmp_path / "reports/bench/README.md").read_text()
    for columns in (SUMMARY_COLUMNS, DETAIL_COLUMNS):
        assert "| " + " | ".join(columns) + " |" in readme.splitlines()
    for stated in (
        "torch ",
        "Threads: torch 1",
        "inter-op",
        "Peak (the MFU denominator): fp32",
        "3 x forward FLOPs",
        "random CIFAR-shaped data",
        "interleaved",
        "## GPU",
        "Not measured: no GPU",
        "### How a sweep should use the cores",
        "### Evaluation batch",
        "| ResNet-8 |",
        "### Seed fusion",
        "| grouped |",
        "### reslab's own work per step",
        "paired ratios",
        "### Per-run fixed cost",
        "| ResNet-8, smoke, 8 steps |",
        "**Imports of a run's process**",
    ):
        assert stated in readme, stated

    [result] = [json.loads(p.read_text()) for p in (tmp_path / "reports/bench").glob("*.json")]
    assert result["threads"]["torch_threads"] == 1 and result["device_type"] == "cpu"
    [case] = result["cases"]
    names = [v["name"] for v in case["variants"]]
    assert names == ["loop-w0", "loop-w2", "lightning-w2", "model-nchw-fp32", "model-cl-fp32", "reslab", "reslab-NCHW"]
    for v in case["variants"]:
        assert len(v["seconds"]) == 2 and v["img_s_best"] >= v["img_s_median"] > 0 and v["mfu_median"] > 0, v["name"]
    s = case["summary"]
    assert s["reslab_over_limit"] == pytest.approx(s["reslab_img_s"] / s["limit_img_s"])
    assert s["reslab_over_baseline"] == pytest.approx(s["reslab_img_s"] / s["baseline_img_s"])
    assert s["baseline_variant"] in names[:3] and s["limit_variant"] in names[3:5]
    assert set(result["evaluation"]["img_s"]["ResNet-8"]) == {"5", "20"}
    assert set(result["fusion"]["img_s"]) == {"separate", "grouped"}
    floor = result["floor"]["batches"]["8"]
    assert len(floor["reslab"]) == len(floor["model"]) == 2
    assert s["own_ms"] == floor["own_ms"] and 0 < s["own_cap"] <= 1
    probes = case["probes"]
    assert set(probes["point_seconds_median"]) == {"grad_norms", "flow", "curve", "checkpoint"}
    assert probes["img_s_median"] < next(v for v in case["variants"] if v["name"] == "reslab")["img_s_median"]
    [fixed] = result["fixed_cost"]["rows"]
    phases = dict(fixed["phases"])
    assert [p for p, _ in fixed["phases"]][:3] == ["imports", "compose", "validate"], "in the order the run passes"
    for phase in ("data", "model (built, counted)", FIT, "final evaluation", "Fig. 7 responses", EXIT):
        assert phase in phases, phase
    assert {"FlowProbe", "CurveProbe", "GradNormProbe"} <= set(fixed["hooks"])
    assert sum(phases.values()) == pytest.approx(fixed["total"], rel=0.05), "the phases add up to the wall"


def test_the_probes_a_study_pays_are_counted_as_train_py_schedules_them():
    # The cpu profile: 6,400 images x 4 epochs at batch 32 = 800 steps; 4 gradient-norm points per epoch (every 50
    # steps), the flow probe at 0 and every quarter (the last at step 799), curve points at 0, every 1/16 and 3 early
    # ones (1/32, 1/64, 1/128; 1/16 is already there), a checkpoint every 200 steps before the last.
    assert study_points(bench_cfg(), 32) == {"steps": 800, "grad_norms": 16, "flow": 5, "curve": 20, "checkpoint": 3}


@pytest.mark.parametrize(
    "override, message",
    [
        ("bench.warmup_steps=0", "bench.warmup_steps=0 is not valid; valid: an integer >= 1"),
        ("bench.repeats=0", "bench.repeats=0 is not valid"),
        ("bench.steps=0", "bench.steps=0 is not valid; valid: null (each case's steps) or an integer >= 1"),
        ("bench.lightning_workers=-1", "bench workers -1 is not valid"),
    ],
)
def test_bad_bench_settings_are_one_line_errors(override, message):
    with pytest.raises(ReslabError) as err:
        check(bench_cfg(override).bench)
    assert message in str(err.value) and "\n" not in str(err.value)


def case_of(limit_ms: list[float], reslab_ms: list[float]) -> dict:
    return {
        "variants": [
            {
                "name": "model-cl-fp32",
                "seconds": [t / 1000 for t in limit_ms],
                "ms_per_step_median": sorted(limit_ms)[len(limit_ms) // 2],
            },
            {
                "name": "reslab",
                "seconds": [t / 1000 for t in reslab_ms],
                "ms_per_step_median": sorted(reslab_ms)[len(reslab_ms) // 2],
            },
        ]
    }


def test_a_missed_target_is_explained_by_reslabs_own_work_when_that_caps_it():
    settings = {"target_of_limit": 0.95}
    # A 10 ms model and 1 ms of reslab's own work per step: at most 10/11 = 91% of the model alone.
    text = gap(
        case_of([10, 10, 10], [11, 11, 11]),
        {"limit_variant": "model-cl-fp32", "own_ms": 1.0, "own_cap": 10 / 11},
        settings,
    )
    assert "caps it at 91% of this model alone: the target is out of reach by reslab's own work" in text
    # A 100 ms model, 1 ms of own work (cap 99%), every repeat 8 ms slower: 7 ms of it is not reslab's code.
    text = gap(
        case_of([100, 100, 100], [108, 108, 108]),
        {"limit_variant": "model-cl-fp32", "own_ms": 1.0, "own_cap": 100 / 101},
        settings,
    )
    assert "above the target" in text and "1.0 ms of it reslab's own work; the other 7.0 ms" in text
    # The same gap in one repeat only: within the spread, not a measured gap.
    text = gap(
        case_of([100, 100, 100], [108, 100, 108]),
        {"limit_variant": "model-cl-fp32", "own_ms": 1.0, "own_cap": 100 / 101},
        settings,
    )
    assert "within the spread" in text


def fixed_row(label: str, profile: str, steps: int, total: float, **parts) -> dict:
    phases = [["imports", parts.pop("imports", 0.0)], [FIT, parts.pop("fit", 0.0)], [EXIT, 0.0]]
    return {
        "label": label,
        "profile": profile,
        "steps": steps,
        "repeats": 2,
        "total": total,
        "phases": phases,
        "hooks": parts,
    }


def test_the_fixed_cost_section_says_whether_a_smoke_run_meets_its_goal_and_else_what_bounds_it():
    rows = [
        fixed_row("ResNet-20", "smoke", 8, 3.5, imports=2.0, fit=1.0),
        fixed_row("plain-110", "smoke", 8, 9.0, imports=2.0, fit=6.5, FlowProbe=3.0),
        fixed_row("ResNet-20", "cpu", 1, 20.0, imports=2.0, fit=1.0),
    ]
    text = "\n".join(fixed_cost_lines({"rows": rows, "data": "synthetic"}))
    assert "ResNet-20 smoke run (8 steps): 3.5 s, goal <= 4 s: **met**." in text
    assert (
        "plain-110 smoke run (8 steps): 9.0 s, goal <= 8 s: **not met**; what bounds it: training steps and "
        "Lightning 3.5 s (39%), FlowProbe hooks 3.0 s (33%), imports 2.0 s (22%)." in text
    )
    assert "| fit: FlowProbe hooks | 0.00 | 3.00 | 0.00 |" in text
    assert "ResNet-20, cpu profile, one step: 20.0 s" in text


def test_a_run_s_imports_are_split_by_the_package_that_pays_without_counting_a_module_twice():
    report = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      1000 |       1000 |       torch._C",
            "import time:       500 |       1500 |     torch",
            "import time:      2000 |       2000 |         torch._dynamo.utils",
            "import time:       100 |       2100 |       torch._dynamo",
            "import time:       300 |       2400 |     lightning.fabric",
            "import time:        50 |         50 |     json",
        ]
    )
    groups = parse_importtime(report)
    assert groups[import_group("torch")] == pytest.approx(0.0015)  # torch._C and torch: own times
    assert groups[import_group("torch._dynamo")] == pytest.approx(0.0021)  # not inside torch's 1.5 ms
    assert groups["Lightning and torchmetrics"] == pytest.approx(0.0003)
    assert sum(groups.values()) == pytest.approx(0.00395), "the groups add up to the whole import"


def archived_sweep(tmp_path, responses: bool):
    """An archive like experiments/archive's: study/profile/run dirs whose files carry the runs' times."""
    import os
    import tarfile

    root = tmp_path / "tree"
    for i, (start, end) in enumerate([(1000, 1100), (1010, 1120)]):
        d = root / "depth/cpu" / f"resnet-20-s{i}"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({"wall_seconds": 80.0, "eval_seconds": 8.0, "label": "resnet-20"}))
        (d / "environment.json").write_text("{}")
        if responses:
            (d / "responses.csv").write_text("layer,std\n")
        for name, t in (("environment.json", start), ("result.json", end)):
            os.utime(d / name, (t, t))
    archive = tmp_path / "depth-cpu-runs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "depth", arcname="depth")
    return archive


def test_the_whole_sweeps_are_read_from_the_archived_runs_with_their_times(tmp_path):
    archive = archived_sweep(tmp_path, responses=True)
    [row] = sweeps.rows(tmp_path / "no-runs-here", [archive])
    assert (row["study"], row["profile"], row["source"], row["runs"], row["lanes"]) == (
        "depth",
        "cpu",
        "depth-cpu-runs.tar.gz",
        2,
        2,
    )
    assert row["span"] == pytest.approx(120) and row["training"] == pytest.approx(160)
    assert row["per_lane_ratio"] == pytest.approx(120 / 80) and row["responses"] is True
    assert sweeps.rows(tmp_path / "no-runs-here", [archive, archive]) == [row], "one sweep read twice counts once"


def sweep_row(ratio: float, responses: bool, profile: str = "cpu") -> dict:
    # A lane of 100 s: training 100/ratio, evaluation 7 s, 1 s outside, the rest in the runs.
    training = 100 / ratio
    return {
        "profile": profile,
        "span": 100.0,
        "lanes": 1,
        "training": training,
        "evaluation": 7.0,
        "other": 100 - training - 8.0,
        "outside": 1.0,
        "per_lane_ratio": ratio,
        "responses": responses,
    }


def test_the_lane_goal_is_judged_on_cpu_sweeps_and_a_miss_names_the_evaluation_and_the_responses():
    text = lane_verdict([sweep_row(1.25, True), sweep_row(1.12, False), sweep_row(1.02, False, "budget")])
    assert "0 of 2 `cpu` sweeps meet it (per lane 1.12-1.25x)" in text
    assert "the final evaluation of the whole eval set" in text and "7.0%-7.0% of a lane" in text
    assert "sweeps whose runs computed them stand at 1.25-1.25x, those whose runs did not at 1.12-1.12x" in text
    assert lane_verdict([sweep_row(1.08, False)]).endswith("1 of 1 `cpu` sweeps meet it (per lane 1.08-1.08x).")
