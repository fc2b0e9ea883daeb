"""The budget report reads a ladder's rungs as one study, and computes the pre-registered answers from them: the gap
per budget, its trend, the crossover, the compute-matched contrast, the plain nets' degradation across budget, the
step-decay control's ordering, and what the ladder saved, measured from the runs' own times.

Runs here are written directly (result.json + config.yaml), with errors from a known model, so the answers are known:
ResNet-56's gap to ResNet-20 falls by 3 pp per doubling of the budget, from +6 pp at 800 steps."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import yaml

from reslab.errors import ReslabError
from reslab.report import budget, results

BUDGETS = (800, 1600, 3200, 6400)
SEEDS = (0, 1, 2, 3)
SEC_PER_STEP = {20: 0.2, 56: 0.6}
FLOPS = {20: 81_000_000, 56: 250_000_000}


def error(family, depth, steps, seed, decay="linear"):
    base = 60 - 8 * math.log2(steps / 800) + 0.3 * seed
    if family == "plain":
        return base + (10 if depth == 56 else 2)
    gap = 6 - 3 * math.log2(steps / 800) + 0.4 * (seed - 1.5) if depth == 56 else 0.0
    return base + gap + (0.5 if decay == "step" else 0.0)


def fake_run(root, family, depth, steps, seed, profile="budget", decay="linear", lr=0.025, start=0, study="bud"):
    label = f"{family}-{depth}" + (f"-steps{steps}" if decay != "step" else "")
    d = root / study / profile / f"{label}-s{seed}"
    d.mkdir(parents=True)
    prof = {
        "name": profile,
        "lr": lr,
        "batch_size": 32,
        "max_steps": steps,
        "milestones": [] if decay != "step" else [0.75],
        "gamma": 0.1,
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "train_subset": None,
        "decay": {"fraction": 0.2, "shape": decay} if decay != "step" else None,
    }
    (d / "config.yaml").write_text(yaml.safe_dump({"profile": prof, "data": {"split": "test"}}))
    err = error(family, depth, steps, seed, decay)
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
                "steps": steps,
                "steps_planned": steps,
                "batch_size": 32,
                # The recipe as a run's result.json states it (reslab.training.recipe.Recipe.record): no warm-up here.
                "lr": lr,
                "warmup_steps": 0,
                "warmup_lr": None,
                "warmup_shape": None,
                "train_eval_error": err - 3,
                "train_error": err - 2,
                "test_error": err,
                "test_loss": 1.0,
                "params": depth * 1000,
                "flops": FLOPS[depth],
                "wall_seconds": SEC_PER_STEP[depth] * (steps - start),
                "git_commit": "abc",
                "key": f"{label}-{seed}-{profile}",
                "numerics": 1,
                "data_checksum": "x",
                "data_copy": "synthetic",
                "data_format": "pickle",
                "train_images": 50000,
                "eval_images": 10000,
                "eval_split": "test",
                "device": "cpu (2 cores, 1 threads)",
                "precision": "32-true",
                "cpu": "test CPU",
                "lr_decay": {"fraction": 0.2, "shape": decay, "start_step": int(0.8 * steps)}
                if decay != "step"
                else None,
                "ladder": {"start": {"step": start, "from": "x"} if start else None} if decay != "step" else None,
            }
        )
    )
    return d


@pytest.fixture()
def study(tmp_path):
    runs = tmp_path / "runs"
    for depth in (56, 20):
        for seed in SEEDS:
            for steps in BUDGETS:  # the 6,400 trunk from 0, each other rung from its decay start
                fake_run(runs, "resnet", depth, steps, seed, start=0 if steps == 6400 else int(0.8 * steps))
            for steps in (800, 3200):
                fake_run(runs, "plain", depth, steps, seed, start=0 if steps == 3200 else 640)
            fake_run(runs, "resnet", depth, 1600, seed, profile="budget-step", decay="step")
    return runs


def test_the_rungs_of_a_ladder_are_one_study_but_another_lr_is_still_refused(study):
    assert len(results.load_results(study, "bud", "budget", vary=budget.VARY)) == 2 * 4 * 4 + 2 * 4 * 2
    with pytest.raises(ReslabError, match="profile.max_steps"):
        results.load_results(study, "bud", "budget")  # without the ladder's allowance: refused, as before
    fake_run(study, "resnet", 20, 800, 9, lr=0.05)
    with pytest.raises(ReslabError, match="profile.lr"):
        results.load_results(study, "bud", "budget", vary=budget.VARY)


def test_the_report_finds_the_crossover_and_answers_every_question(study, tmp_path):
    readme = budget.build(study, tmp_path / "reports", "budget", study="bud").read_text()
    runs = budget.run_rows(results.load_results(study, "bud", "budget", vary=budget.VARY))
    # The gap falls from +6 pp by 3 pp per doubling: the deep net is >= 2 pp better from 6,400 steps on.
    cs = budget.budget_stats.contrasts(runs[runs.decay_shape == "linear"], "test_error", 56, 20)
    assert [c.extra["steps"] for c in cs if c.verdict == "supported"] == [6400]
    assert [c.extra["steps"] for c in cs if c.verdict == "contradicted"] == [800, 1600]
    assert "Crossover (ResNet-56 better by ≥ 2 pp, decided): **6,400 steps**" in readme
    assert "→ **falls**: the gap shrinks as the budget grows" in readme
    assert "At equal training FLOPs (ResNet-56 at B against ResNet-20 at 3.09 x B" in readme
    assert "At equal measured wall time (ResNet-56 at B against ResNet-20 at 3.00 x B" in readme
    # Plain: plain-56 is 8 pp worse at both rungs: the degradation persists.
    assert "from 800 to 3,200 steps: " in readme and "**persists unchanged**" in readme
    # The control adds 0.5 pp to ResNet-56 only: the ordering at 1,600 steps stays.
    assert "the ordering is **the same**" in readme
    # Saved: separate runs would train every rung from 0.
    s = budget.ladder_saving(runs)
    assert s["steps_alone"] == 4 * (2 * sum(BUDGETS) + 2 * (800 + 3200))
    assert s["saving"] == pytest.approx(1 - s["spent_s"] / s["alone_s"]) and 0.3 < s["saving"] < 0.5
    assert "saved**" in readme and (tmp_path / "reports/bud/error_vs_budget.png").stat().st_size > 10_000


def test_the_headline_answers_from_the_decided_rung_or_says_not_yet_and_what_would_decide_it(study, tmp_path):
    # The fixture's gap decides ResNet-56 better at 6,400 steps: the headline says from which budget.
    readme = budget.build(study, tmp_path / "reports", "budget", study="bud").read_text()
    assert "## Is deeper better? (the plan's headline, on test error)" in readme
    assert "- **Yes, from 6,400 iterations on:**" in readme
    assert "Budget reading: the largest rung, 6,400 iterations x batch 32 = 204,800 images, is 2.5%" in readme
    # Without the top rung no rung decides it: "not yet", the extrapolated crossover, and the next rung to run.
    for d in study.glob("bud/budget/resnet-*-steps6400-s*"):
        shutil.rmtree(d)
    readme = budget.build(study, tmp_path / "reports", "budget", study="bud").read_text()
    assert "- **Not yet at 3,200 iterations:**" in readme and "ResNet-56 is behind at 800, 1,600 iterations" in readme
    assert "(an extrapolation beyond the largest rung)" in readme and "the next rung, 12,800 iterations" in readme


def test_budget_to_reach_a_target_is_interpolated_on_log_budget():
    import pandas as pd

    runs = pd.DataFrame(
        {
            "net": "resnet-20",
            "decay_shape": "linear",
            "seed": 0,
            "steps": [800, 1600, 3200],
            "train_error": [70.0, 50.0, 40.0],
        }
    )
    assert budget.reach(runs, "resnet-20", 60.0) == {0: pytest.approx(800 * 2**0.5)}
    assert budget.reach(runs, "resnet-20", 30.0) == {0: math.inf}


def test_zero_init_on_the_top_rung_is_its_own_net_paired_with_the_standard_runs(study, tmp_path):
    # Arm 5: zero-init ResNet-20/56 at 6,400 steps; zero-init takes 3 pp off ResNet-56 and nothing off ResNet-20.
    for depth in (56, 20):
        for seed in SEEDS:
            d = fake_run(study, "zero-init", depth, 6400, seed)
            r = json.loads((d / "result.json").read_text())
            r.update(
                family="resnet",
                variant={"name": "zero-init", "group": "initialisation"},
                test_error=error("resnet", depth, 6400, seed) - (3.0 if depth == 56 else 0.0) + 0.1 * (seed % 2),
            )
            (d / "result.json").write_text(json.dumps(r))
    runs = budget.run_rows(results.load_results(study, "bud", "budget", vary=budget.VARY))
    assert set(runs[runs.family == "zero-init"].net) == {"zero-init-56", "zero-init-20"}
    # The standard contrasts and the ladder's saving do not see the zero-init runs.
    cs = budget.budget_stats.contrasts(runs[runs.decay_shape == "linear"], "test_error", 56, 20)
    assert [c.extra["steps"] for c in cs if c.verdict == "supported"] == [6400]
    assert budget.ladder_saving(runs)["runs"] == 4 * (2 * 4 + 2 * 2)
    readme = budget.build(study, tmp_path / "reports", "budget", study="bud").read_text()
    section = readme.split("## Zero-initialised residual branches on the top rung")[1].split("## ")[0]
    assert "| resnet-56 − zero-init-56 | test error | 4 | +2.95 |" in section
    assert "zero-init-56 better" in section and "Under zero-init, ResNet-20 − ResNet-56" in section


def test_a_target_reached_at_the_lowest_rung_is_a_bound_not_a_budget():
    import pandas as pd

    from reslab.report.budget import reach_section

    runs = pd.DataFrame(
        [{"net": "zero-init-56", "decay_shape": "linear", "seed": s, "steps": 6400, "train_error": 20.0}
         for s in (0, 1)]
        + [{"net": "resnet-56", "decay_shape": "linear", "seed": s, "steps": b, "train_error": e}
           for s in (0, 1) for b, e in ((800, 55.0), (1600, 45.0))]
    )  # fmt: skip
    table = "\n".join(reach_section(runs))
    row = next(line for line in table.splitlines() if line.startswith("| zero-init-56"))
    assert row.count("≤ 6,400 (lowest rung)") == 4 and "6400.00" not in row
    row = next(line for line in table.splitlines() if line.startswith("| resnet-56"))
    assert row.startswith("| resnet-56 | ≤ 800 (lowest rung) | 1131.37 ± 0.00 |") and "2 of 2 not reached" in row
