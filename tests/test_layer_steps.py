"""Dead, vanishing, exploding or healthy, per layer and computed from the step it takes (issue 25; experiments/depth.md,
amendment of 2026-12-04 (evening)): the weight-decay floor, which probes count, the dead rule and the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from reslab.report import layer_steps
from reslab.training.recipe import Recipe

PROFILE = {"momentum": 0.9, "weight_decay": 1e-4, "nesterov": False}
PROBES = (0, 200, 400, 600, 799)
SCHEDULE = {"lr": 0.025, "steps_planned": 800, "warmup_steps": 40, "warmup_lr": 0.0025, "warmup_shape": "constant"}
SCHEDULE |= {"lr_drop_steps": [600], "lr_gamma": 0.1}
BASE_STEP = 100.0  # the reference net's step, in multiples of the floor


def result(label: str, seed: int) -> dict:
    family, d = label.split("-")
    return {"label": label, "family": family, "depth": int(d), "seed": seed, **SCHEDULE}


def lr_at(step: int) -> float:
    return layer_steps.recipe_of(SCHEDULE, PROFILE).factor(step) * SCHEDULE["lr"]


def updates(nets: dict, seeds=(0, 1, 2), first_step: float = 1e6) -> tuple[pd.DataFrame, pd.DataFrame]:
    """updates.csv rows and results of synthetic runs: nets maps a label to the step of each layer in multiples of
    the floor, a function of (relative position, seed). Step 0 (not counted) gets `first_step` x the floor."""
    rows, results = [], []
    for label, step_of in nets.items():
        family, d = label.split("-")
        for seed in seeds:
            results.append(result(label, seed))
            for i in range(int(d)):
                rel = i / (int(d) - 1)
                for s in PROBES:
                    x = first_step if s == 0 else step_of(rel, seed)
                    f = layer_steps.floor(lr_at(s), PROFILE["weight_decay"], PROFILE["momentum"])
                    rows.append(
                        {"step": s, "layer": i, "rel_layer": rel, "name": f"l{i}", "kind": "main", "rel_update": x * f}
                        | {"label": label, "family": family, "depth": int(d), "seed": seed}
                    )
    return pd.DataFrame(rows), pd.DataFrame(results)


def states_of(nets: dict, **kw) -> pd.DataFrame:
    u, res = updates(nets, **kw)
    return layer_steps.layer_states(layer_steps.with_floor(u, res, PROFILE))


# --- the floor -----------------------------------------------------------------------------------------------------


def test_the_floor_is_lr_times_weight_decay_over_one_minus_momentum():
    assert layer_steps.floor(0.025, 1e-4, 0.9) == pytest.approx(2.5e-5)
    assert layer_steps.floor(0.0025, 1e-4, 0.9) == pytest.approx(2.5e-6)
    with pytest.raises(ValueError, match="momentum"):
        layer_steps.floor(0.1, 1e-4, 1.0)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_moves_a_weight_without_loss_gradient_by_the_floor_once_settled_and_right_after_an_lr_drop(nesterov):
    """torch's own SGD, a weight that gets no loss gradient, the cpu schedule (warm-up, drop at step 600): from
    settled_step on every step is the floor of that step's lr, the first step after the drop included (the momentum
    buffer holds no lr); before it, the buffer is still filling and the step is below the floor."""
    recipe = Recipe(0.025, 0.9, 1e-4, nesterov, 800, milestones=(0.75,), warmup_steps=40, warmup_lr=0.0025)
    w = torch.nn.Parameter(torch.randn(64, 16, 3, 3, dtype=torch.float64))
    opt = torch.optim.SGD([w], **recipe.optimizer_args())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, recipe.factor)
    settled, tol = layer_steps.settled_step(0.9), layer_steps.DEAD_TOLERANCE
    for step in range(700):
        before = w.detach().clone()
        w.grad = torch.zeros_like(w)  # no loss gradient: weight decay alone
        opt.step()
        sched.step()
        x = float((w.detach() - before).norm() / before.norm()) / layer_steps.floor(
            recipe.lr * recipe.factor(step), 1e-4, 0.9
        )
        if step >= settled:  # steps 600 and 601 among them: the first after the lr drop
            assert x == pytest.approx(1.0, abs=tol / 10), step
        elif step < 10:
            assert x < 1 - tol, f"step {step}: the buffer has not filled, the step is below the floor"


def test_probes_count_from_the_step_the_momentum_buffer_has_settled():
    assert layer_steps.settled_step(0.9) == 50  # 0.9^51 = 0.0046 < a tenth of the 5 % tolerance
    assert layer_steps.settled_step(0.0) == 0  # without momentum the floor holds from the first step
    u = layer_steps.with_floor(*updates({"plain-20": lambda rel, seed: 1.0}, seeds=(0,)), PROFILE)
    assert sorted(u[u.counted].step.unique()) == [200, 400, 600, 799]


def test_the_recipe_read_back_from_result_json_has_the_runs_lr_at_every_step():
    profile = {**PROFILE, "nesterov": True}
    for recipe in (
        Recipe(0.1, 0.9, 1e-4, True, 1000, (0.5, 0.75), 0.1, 10, 0.01, "linear"),
        Recipe(0.05, 0.9, 5e-4, True, 1600, decay={"fraction": 0.2, "shape": "sqrt"}),
    ):
        back = layer_steps.recipe_of({**recipe.record(), "steps_planned": recipe.total_steps}, profile)
        assert [back.factor(s) for s in range(recipe.total_steps)] == [
            recipe.factor(s) for s in range(recipe.total_steps)
        ]


# --- the dead rule and the states ------------------------------------------------------------------------------------


def test_a_layer_at_exactly_the_floor_is_dead_and_one_at_twice_the_floor_is_not():
    s = states_of({"plain-20": lambda rel, seed: 1.0 if rel < 0.5 else 2.0}, seeds=(0,))
    assert s[s.rel_layer < 0.5].dead.all() and not s[s.rel_layer >= 0.5].dead.any()


def test_a_layer_is_dead_only_if_it_is_at_the_floor_at_every_counted_probe():
    u, res = updates({"plain-20": lambda rel, seed: 1.0}, seeds=(0,))
    u.loc[(u.step == 400) & (u.layer == 3), "rel_update"] *= 1.2
    s = layer_steps.layer_states(layer_steps.with_floor(u, res, PROFILE))
    assert not s[s.layer == 3].dead.any() and s[s.layer != 3].dead.all()


def test_a_probe_before_the_buffer_settles_does_not_count():
    at_floor_later = states_of({"plain-20": lambda rel, seed: 1.0}, seeds=(0,), first_step=1e6)
    assert at_floor_later.dead.all(), "step 0's huge first update does not make a layer alive"


def test_steps_are_read_against_the_shallowest_net_of_the_family_at_the_same_position():
    s = states_of(
        {
            "plain-20": lambda rel, seed: BASE_STEP,
            "plain-56": lambda rel, seed: BASE_STEP / 20 if rel <= 0.25 else BASE_STEP / 2,
            "plain-110": lambda rel, seed: BASE_STEP * 20 if rel <= 0.25 else BASE_STEP,
        },
        seeds=(0,),
    )
    p56, p110 = s[s.depth == 56], s[s.depth == 110]
    assert set(p56[p56.rel_layer <= 0.25].state) == {"vanishing"}, "20 x smaller than plain-20's: below 1/10"
    assert set(p56[p56.rel_layer > 0.25].state) == {"healthy"}, "2 x smaller: inside the band"
    assert set(p110[p110.rel_layer <= 0.25].state) == {"exploding"}, "20 x larger: above 10"
    assert np.allclose(s[s.depth == 20].vs_reference, 1.0)


def test_the_floor_table_says_when_layers_reach_the_floor_beside_the_rule():
    # Two layers of one net and seed: layer 0 moves at step 80 and sits at the floor from step 200 on, layer 1 moves.
    u = pd.DataFrame(
        [
            {"label": "plain-110", "family": "plain", "depth": 110, "seed": 0, "layer": k, "step": s, "counted": True,
             "x": 1.0 if (k == 0 and s >= 200) else 7.0}
            for k in (0, 1) for s in (80, 200, 400)
        ]
    )  # fmt: skip
    lines = layer_steps.at_floor_lines(u, ["plain-110"])
    assert "| plain-110 | 0 of 2 | 1 of 2 | 1 of 2 |" in lines
    # The rule reads the same layer as not dead: it moved at a counted probe.
    assert not layer_steps.is_dead(u[(u.layer == 0)].x)
    assert layer_steps.at_floor_lines(u.assign(x=7.0), ["plain-110"]) == [
        "No layer of any net is at the floor at any counted probe."
    ]
