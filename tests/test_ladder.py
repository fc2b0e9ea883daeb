"""The budget ladder (reslab.run.ladder) and its schedule: a rung that starts from another rung's kept checkpoint ends
with
the bytes it has when trained alone, and costs only the steps after its start."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from reslab.errors import ReslabError
from reslab.run import ladder
from reslab.training.schedule import decay_start, lr_factor

# 4 steps per epoch (200 images, batch 50). Rungs 8, 16 and 24 decay from steps 6, 12 and 18. Step 12 is an epoch's
# last step, where no checkpoint can be taken (its end-of-epoch work is still to come): it is kept at step 13.
WSD = [
    "profile=smoke",
    "logger=none",
    "model.depth=8",
    "profile.milestones=[]",
    "+profile.decay={fraction: 0.25, shape: linear}",
    "+profile.train_eval_images=100",
]
TIMING = {"wall_seconds", "images_per_second", "eval_seconds"}
NOT_NUMBERS = TIMING | {"ladder", "label", "git_commit"}
OUTPUTS = ("model.pt", "predictions.npz")


def numbers(run) -> dict:
    result = json.loads((run / "result.json").read_text())
    return {k: v for k, v in result.items() if k not in NOT_NUMBERS}


def test_wsd_keeps_the_stable_lr_until_the_decay_then_falls_to_near_zero():
    sched = dict(total=100, milestones=[], gamma=0.1, warmup_steps=5, warmup_factor=0.1)
    linear = [lr_factor(s, **sched, decay={"fraction": 0.2, "shape": "linear"}) for s in range(100)]
    assert linear[:5] == [0.1] * 5 and linear[5:81] == [1.0] * 76  # step 80, the first decay step, is still 1
    assert linear[81:] == sorted(linear[81:], reverse=True) and linear[99] == pytest.approx(0.05)
    for shape in ("cosine", "sqrt"):
        f = [lr_factor(s, **sched, decay={"fraction": 0.2, "shape": shape}) for s in range(100)]
        assert f[:81] == linear[:81] and 0 < f[99] < 0.2
    assert decay_start(6400, 0.2) == 5120 and decay_start(800, 0.25) == 600


def test_a_step_schedule_is_what_it_was_without_a_decay():
    sched = dict(total=800, milestones=[0.75], gamma=0.1, warmup_steps=40, warmup_factor=0.1)
    assert [lr_factor(s, **sched) for s in (0, 39, 40, 599, 600, 799)] == [0.1, 0.1, 1.0, 1.0, 0.1, 0.1]


def test_a_shorter_budget_has_the_lr_of_a_longer_one_until_its_own_decay():
    for short, long in ((800, 6400), (1600, 3200), (3200, 12800)):
        for fraction in (0.2, 0.25):
            s = decay_start(short, fraction)
            a = [lr_factor(k, short, [], 0.1, 40, 0.1, decay={"fraction": fraction}) for k in range(s + 1)]
            b = [lr_factor(k, long, [], 0.1, 40, 0.1, decay={"fraction": fraction}) for k in range(s + 1)]
            assert a == b


def cfg(**over):
    base = {
        "profile": {"name": "p", "max_steps": 16, "decay": {"fraction": 0.25, "shape": "linear"}},
        "ladder": {"budgets": [8, 16, 24]},
    }
    return OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(over))


def test_a_rung_is_named_by_its_budget_and_any_unusual_decay():
    from reslab.run.runinfo import rung_name

    assert rung_name(OmegaConf.create({"max_steps": 800, "decay": {"fraction": 0.2, "shape": "linear"}})) == "steps800"
    assert (
        rung_name(OmegaConf.create({"max_steps": 800, "decay": {"fraction": 0.25, "shape": "sqrt"}}))
        == "steps800-sqrt-decay0.25"
    )


def test_a_run_keeps_the_decay_starts_it_passes_at_the_stable_lr():
    assert ladder.keep_steps(cfg()) == [6, 12]  # 18, the 24-step rung's, is inside this run's decay
    assert ladder.keep_steps(cfg(profile={"max_steps": 24})) == [6, 12, 18]
    assert ladder.keep_steps(cfg(ladder={"budgets": []})) == []


@pytest.mark.parametrize(
    "over, message",
    [
        ({"profile": {"decay": None}}, "needs a warmup-stable-decay profile"),
        (
            {"profile": {"max_steps": 10}},
            "profile.max_steps=10 is not a rung of ladder.budgets=[8, 16, 24]; valid: one of 8, 16, 24",
        ),
        ({"ladder": {"budgets": [0, 8]}}, "ladder.budgets=[0, 8] is not valid"),
    ],
)
def test_a_ladder_that_cannot_work_is_refused_in_one_line(over, message):
    with pytest.raises(ReslabError, match=None) as err:
        ladder.check(cfg(**over))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_rung_started_from_a_kept_checkpoint_ends_with_the_bytes_of_one_trained_alone(cli, tmp_path, synth_archive):
    data = f"data.source={synth_archive}"
    # Alone: each budget from step 0, no ladder.
    for steps in (8, 24):
        cli("reslab-train", *WSD, data, f"profile.max_steps={steps}", f"paths.runs=alone{steps}")
    # The ladder: the 16-step rung first, then the 8-step rung (starts at 6) and the 24-step one (continues at 13).
    rungs = "ladder.budgets=[8,16,24]"
    out = cli("reslab-train", "-m", *WSD, data, rungs, "profile.max_steps=16,8,24", "paths.runs=lad").stdout
    assert "starts at step 6 from" in out and "starts at step 13 from" in out

    study = tmp_path / "lad/adhoc/smoke"
    trunk, short, longer = (study / f"resnet-8-steps{b}-decay0.25-s0" for b in (16, 8, 24))
    assert sorted(p.name for p in (trunk / ladder.KEPT).iterdir()) == ["step-13.pt", "step-6.pt"]
    assert ladder.started(trunk) is None
    assert ladder.started(short)["step"] == 6 and ladder.started(longer)["step"] == 13
    for run, steps in ((short, 8), (longer, 24)):
        alone = tmp_path / f"alone{steps}/adhoc/smoke/resnet-8-s0"
        assert numbers(run) == numbers(alone), steps
        for name in OUTPUTS:
            assert (run / name).read_bytes() == (alone / name).read_bytes(), (steps, name)
        result = json.loads((run / "result.json").read_text())
        assert result["ladder"]["start"]["step"] == ladder.started(run)["step"]
        assert result["images_per_second"] is not None and result["steps"] == steps
    # What the ladder saved: the 8-step rung trained 2 steps, not 8.
    first_row = (short / "metrics.csv").read_text().splitlines()[1]
    assert first_row.startswith("2,8,"), first_row  # its one epoch row: epoch 2, ending at step 8


def test_a_rung_starts_only_from_a_run_with_its_stable_phase(cli, tmp_path, synth_archive):
    data = f"data.source={synth_archive}"
    cli("reslab-train", *WSD, data, "ladder.budgets=[8,16]", "profile.max_steps=16", "paths.runs=r")
    # Another seed, or another lr, is another stable phase: nothing to start from.
    for i, other in enumerate(("seed=1", "profile.lr=0.05")):
        out = cli(
            "reslab-train",
            *WSD,
            data,
            "ladder.budgets=[8,16]",
            "profile.max_steps=8",
            other,
            "paths.runs=r",
            f"+label_suffix=other{i}",
        ).stdout
        assert "budget ladder" not in out, other
    # Another decay shape is the same stable phase: it starts from the 16-step rung's kept checkpoint.
    out = cli(
        "reslab-train",
        *WSD[:4],
        "+profile.decay={fraction: 0.25, shape: sqrt}",
        *WSD[5:],
        data,
        "ladder.budgets=[8,16]",
        "profile.max_steps=8",
        "paths.runs=r",
        "+label_suffix=sqrt",
    ).stdout
    assert "starts at step 6 from" in out
    assert ladder.started(tmp_path / "r/adhoc/smoke/resnet-8-steps8-sqrt-decay0.25-sqrt-s0")["step"] == 6


def test_a_kept_checkpoint_holds_no_probe_rows(tmp_path):
    from reslab.run.checkpoint import Checkpointer

    src = tmp_path / "kept.pt"
    torch.save(
        {
            "callbacks": {
                Checkpointer.__qualname__: {"loader": (1, 2)},
                "RunRecorder": {"rows": [1]},
                "CurveProbe{...}": {"rows": [2]},
            },
            "state_dict": {},
        },
        src,
    )
    ladder.seed(src, tmp_path / "checkpoint.pt")
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert list(state["callbacks"]) == [Checkpointer.__qualname__]
