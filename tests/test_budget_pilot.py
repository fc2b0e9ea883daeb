"""The budget pilot's report applies the plan's rule: the schedule with the lowest held-out error of ResNet-56 at
3,200 steps among those where ResNet-20 is within 1 pp of its best; it reads the trunks' first-window loss and
spikes, and sizes the confirmatory arms from each net's measured time per step.

Runs are written directly (as in test_budget_report), so every answer is known."""

from __future__ import annotations

import json
import os

import pytest

from reslab.report import budget_pilot
from test_budget_report import fake_run

SEC = {20: 0.1, 56: 0.3}
# Held-out error at 3,200 steps per candidate (ResNet-56, ResNet-20): `fast` has the best ResNet-56 but costs
# ResNet-20 2 pp, so the rule passes it over for `slow`.
AT_3200 = {"fast": (40.0, 40.0), "slow": (41.0, 38.5), "flat": (43.0, 38.0)}


def pilot(root):
    for cand, (e56, e20) in AT_3200.items():
        for depth, err in ((56, e56), (20, e20)):
            for steps, start in ((3200, 0), (800, 640)):
                d = fake_run(
                    root,
                    "resnet",
                    depth,
                    steps,
                    150,
                    study=f"budget-pilot-{cand}",
                    start=start,
                    lr={"fast": 0.05}.get(cand, 0.025),
                )
                r = json.loads((d / "result.json").read_text())
                r["test_error"] = err + (10 if steps == 800 else 0)
                (d / "result.json").write_text(json.dumps(r))
                (d / "environment.json").write_text("{}")
                os.utime(d / "environment.json", (1000, 1000))
                os.utime(d / "result.json", (1000 + SEC[depth] * (steps - start),) * 2)
                if start == 0:  # the trunk's curve: ResNet-56 starts above chance and spikes once
                    loss = [3.5, 3.4, 2.0] if depth == 56 else [2.3, 1.9, 1.7]
                    (d / "curves.csv").write_text(
                        "step,running_train_loss,running_images\n"
                        + "".join(f"{s},{v},320\n" for s, v in zip((10, 20, 30), loss))
                    )
    return root


def test_the_rule_picks_the_best_deep_net_among_schedules_that_keep_the_shallow_one(tmp_path):
    runs = pilot(tmp_path / "runs")
    _, rows, early = budget_pilot.load(runs, "budget")
    pick = budget_pilot.choose(budget_pilot.options(rows))
    assert pick.candidate == "slow"  # `fast` has the lower ResNet-56 error, but ResNet-20 2 pp above its best
    assert early.groupby("net")["loss spike"].all().to_dict() == {"resnet-20": False, "resnet-56": True}
    assert budget_pilot.seconds_per_step(rows) == {"resnet-20": 0.1, "resnet-56": 0.3}


def test_the_arms_are_sized_from_the_measured_time_of_the_whole_ladder():
    assert budget_pilot.ladder_steps() == 6400 + 160 + 320 + 640
    # Two lanes share 3 seeds x (0.1 + 0.3) s x 7,520 steps.
    assert budget_pilot.arm_minutes({"a": 0.1, "b": 0.3}, 3) == pytest.approx(3 * 0.4 * 7520 / 2 / 60)


def test_the_report_states_the_choice_the_spikes_and_the_seeds(tmp_path):
    runs = pilot(tmp_path / "runs")
    text = budget_pilot.build(runs, tmp_path / "reports", "budget").read_text()
    assert "**Chosen:** `slow` with the linear decay" in text
    assert "First window above chance in 3 of 6 trunks" in text and "a loss spike in 3 of 6" in text
    assert "with margin x1.25 (min)" in text


def test_a_pilot_report_goes_to_the_archive_with_its_links_one_folder_deeper(tmp_path, capsys):
    from reslab.report import cli

    runs = pilot(tmp_path / "runs")
    cli.main(["budget-pilot", f"runs={runs}", f"reports={tmp_path / 'reports'}"])
    text = (tmp_path / "reports" / "archive" / "budget-pilot" / "README.md").read_text()
    assert "](../../../experiments/budget.md)" in text and "](../../experiments/" not in text
    assert not (tmp_path / "reports" / "budget-pilot").exists()
