"""The critical window (issue 25): flow probes at the first training steps of the depth study, which do not change
training, and the report's reading of when a plain net and its residual twin part."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from reslab.probes.flow_callback import FlowProbe
from reslab.report import window

WINDOW = [1, 5, 10, 20, 40, 80, 120]


def test_the_window_steps_join_the_evenly_spaced_probes_and_steps_past_the_run_are_dropped():
    assert FlowProbe.probe_steps(800, 4, WINDOW) == [0, 1, 5, 10, 20, 40, 80, 120, 200, 400, 600, 799]
    assert FlowProbe.probe_steps(8, 2, WINDOW) == [0, 1, 4, 5, 7]  # a smoke run of 8 steps keeps 1 and 5
    assert FlowProbe.probe_steps(800, 4, None) == [0, 200, 400, 600, 799], "no window: the probes as before"


def test_only_the_depth_study_asks_for_the_window():
    # A probes key in conf/train.yaml's defaults would make every stored run of every study unfinished (a run whose
    # recorded probes differ from its config's is trained again), so the key lives in conf/experiment/depth.yaml only.
    from hydra import compose, initialize_config_dir

    from reslab.paths import CONF_DIR
    from reslab.run import validate

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        depth = compose("train", overrides=["experiment=depth"])
        assert list(depth.probes.flow_window) == WINDOW
        validate.check_values(depth)
        for f in sorted((CONF_DIR / "experiment").glob("*.yaml")):
            if f.stem != "depth":
                assert "flow_window" not in compose("train", overrides=[f"experiment={f.stem}"]).probes, f.stem
        assert "flow_window" not in compose("train").probes


def test_a_window_that_is_not_a_list_of_steps_is_refused():
    from hydra import compose, initialize_config_dir

    from reslab.errors import ReslabError
    from reslab.paths import CONF_DIR
    from reslab.run import validate

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        with pytest.raises(ReslabError, match="probes.flow_window"):
            validate.check_values(compose("train", overrides=["+probes.flow_window=[1,-5]"]))


SMOKE = ["profile=smoke", "logger=none", "trainer.save_weights=false", "model.depth=8"]


def test_the_window_is_probed_with_its_loss_and_training_stays_bit_identical(cli, tmp_path, synth_archive):
    common = ["reslab-train", *SMOKE, f"data.source={synth_archive}"]
    cli(*common, "study=window", "probes.flow_points=2", f"+probes.flow_window=[{','.join(map(str, WINDOW))}]")
    cli(*common, "study=bare", "probes.flow_points=0", "probes.grad_norms=false", "~profile.curve")
    probed, bare = (tmp_path / f"runs/{s}/smoke/resnet-8-s0" for s in ("window", "bare"))
    signal = pd.read_csv(probed / "signal.csv")
    assert sorted(signal.step.unique()) == [0, 1, 4, 5, 7]
    assert json.loads((probed / "result.json").read_text())["flow_probe_steps"] == [0, 1, 4, 5, 7]
    assert signal.groupby("step").loss.nunique().eq(1).all() and signal.loss.gt(0).all()
    cols = ["train_loss", "train_error", "test_loss", "test_error"]
    pd.testing.assert_frame_equal(pd.read_csv(probed / "metrics.csv")[cols], pd.read_csv(bare / "metrics.csv")[cols])
    a, b = (json.loads((r / "result.json").read_text()) for r in (probed, bare))
    assert [repr(a[k]) for k in cols] == [repr(b[k]) for k in cols]
    assert (probed / "predictions.npz").read_bytes() == (bare / "predictions.npz").read_bytes()


# --- the report on fixtures ---------------------------------------------------------------------------------------


def _signal(losses: dict[str, dict[int, list[float]]], gsc: dict[str, float]) -> pd.DataFrame:
    """{net: {step: loss per seed}}, {net: per-block GSC} -> signal.csv rows as the report loads them (3 blocks of equal
    size and unit activations, so the per-block GSC is the gradient's ratio from one block to the next)."""
    rows = []
    for net, by_step in losses.items():
        family, depth = net.split("-")
        g = gsc[net]
        for step, seeds in by_step.items():
            for seed, loss in enumerate(seeds):
                for block, grad in enumerate([g * g, g, 1.0]):
                    rows.append(
                        {"family": family, "depth": int(depth), "label": net, "seed": seed, "step": step}
                        | {"block": block, "grad_rms": grad, "act_rms": 1.0, "elements": 64, "loss": loss}
                    )
    return pd.DataFrame(rows)


def _results(steps: list[int], window_steps: list[int] | None) -> pd.DataFrame:
    probes = {"flow_points": 4} | ({"flow_window": window_steps} if window_steps is not None else {})
    return pd.DataFrame([{"probes": probes, "flow_probe_steps": steps, "warmup_steps": 40}])


def _section(signal, results, tmp_path) -> str:
    return "\n".join(window.section(signal, pd.DataFrame(), results, tmp_path))


def test_two_nets_part_at_the_first_step_from_which_every_plain_seed_stays_above_every_residual_seed(tmp_path):
    # At step 5 the plain net is above, at step 10 a residual seed is above a plain seed again: they part at 20.
    losses = {
        "plain-56": {
            0: [2.3] * 3,
            1: [2.3] * 3,
            5: [2.4, 2.5, 2.45],
            10: [2.3, 2.3, 2.3],
            20: [2.3] * 3,
            40: [2.3] * 3,
        },
        "resnet-56": {
            0: [4.0] * 3,
            1: [3.0] * 3,
            5: [2.2] * 3,
            10: [2.29, 2.31, 2.2],
            20: [2.1, 2.2, 2.0],
            40: [1.9] * 3,
        },
    }
    signal = _signal(losses, {"plain-56": 1.4, "resnet-56": 1.05})
    text = _section(signal, _results([0, 1, 5, 10, 20, 40], [1, 5, 10, 20, 40]), tmp_path)
    assert "**plain-56 and resnet-56 part at step 20**: loss 2.3 vs 2-2.2 (range over seeds)" in text
    assert "Per-block GSC there (median over seeds): plain-56 1.4 (exploding), resnet-56 1.05 (neither)." in text
    assert "Flow probes in the window: steps 1, 5, 10, 20, 40." in text and "not measured" not in text
    assert "Loss read: the flow probe's loss on its fixed batches" in text
    assert (tmp_path / "critical_window.png").stat().st_size > 0


def test_nets_whose_seeds_overlap_at_the_last_probe_do_not_part(tmp_path):
    losses = {
        "plain-20": {0: [2.3] * 2, 5: [2.5] * 2, 40: [2.0, 2.2]},
        "resnet-20": {0: [2.4] * 2, 5: [2.3] * 2, 40: [2.1] * 2},
    }
    text = _section(_signal(losses, {"plain-20": 1.3, "resnet-20": 1.1}), _results([0, 5, 40], [5, 40]), tmp_path)
    assert "plain-20 and resnet-20 **do not part** within the probed steps (5 to 40)" in text


def test_a_blown_up_plain_seed_counts_as_above_any_finite_loss(tmp_path):
    losses = {"plain-110": {0: [2.3] * 2, 1: [float("nan"), 2.5]}, "resnet-110": {0: [5.0] * 2, 1: [2.4] * 2}}
    text = _section(_signal(losses, {"plain-110": 1.3, "resnet-110": 1.0}), _results([0, 1], [1]), tmp_path)
    assert "part at step 1**" in text and "the first step probed after step 0: at or before it" in text


def test_runs_without_probes_in_the_window_say_so_in_one_line_and_read_the_curve_probes_loss(tmp_path):
    losses = {"plain-56": {s: [2.3] * 2 for s in (0, 200, 400)}, "resnet-56": {s: [2.3] * 2 for s in (0, 200, 400)}}
    signal = _signal(losses, {"plain-56": 1.4, "resnet-56": 1.05}).drop(columns="loss")  # rows from before the loss
    curves = pd.DataFrame(
        [
            {"family": f, "depth": 56, "seed": seed, "step": step, "running_train_loss": loss, "running_images": 64}
            for f, by in (("plain", {6: 2.4, 100: 2.3, 200: 2.3}), ("resnet", {6: 3.0, 100: 2.2, 200: 2.0}))
            for step, loss in by.items()
            for seed in (0, 1)
        ]
    )
    text = "\n".join(window.section(signal, curves, _results([0, 200, 400], None), tmp_path))
    line = [l for l in text.splitlines() if "not measured in these runs" in l]
    assert len(line) == 1 and "flow probes are at steps 0, 200, 400, none between step 0 and step 200" in line[0]
    assert "`make sweep-depth` with this commit records them" in line[0]
    assert "Loss read: the curve probe's running training loss" in text
    assert "**plain-56 and resnet-56 part at step 100**" in text
    assert "Per-block GSC at step 0, the last flow probe before it" in text
