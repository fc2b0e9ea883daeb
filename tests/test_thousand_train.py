"""1,000-layer nets trained for a few steps (reslab.analysis.thousand_train; rules of experiments/thousand-layers.md),
checked on tiny nets and synthetic data: the rules read each outcome as the plan says, a run stops at its first
non-finite gradient without writing it into the weights, and the job resumes and refuses bad input in one line."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from reslab.analysis import thousand_train as tt


def steps_table(family: str, seeds, start: float, end: float, n: int = 200, stop_at=None) -> pd.DataFrame:
    rows = []
    for s in seeds:
        for k in range(n if stop_at is None else stop_at + 1):
            bad = stop_at is not None and k == stop_at
            loss = math.nan if bad else start + (end - start) * k / (n - 1) + 0.01 * ((k * 7 + s) % 5)
            rows.append({"family": family, "depth": 1202, "seed": s, "step": k, "loss": loss, "grads_finite": not bad})
    return pd.DataFrame(rows)


def nets_table(family: str, seeds, errors, stop_at=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "family": family,
            "depth": 1202,
            "seed": list(seeds),
            "stopped": "finite" if stop_at is None else "nonfinite_loss",
            "stopped_at_step": stop_at,
            "test_error": errors,
        }
    )


def test_a_net_whose_loss_falls_and_beats_chance_in_every_seed_trains():
    r = tt.reading(steps_table("resnet", [0, 1, 2], 4.0, 1.9), nets_table("resnet", [0, 1, 2], [70.0, 72.0, 71.0]))
    assert r["reading"] == "trains"
    assert r["t1"]["p"] < r["t1"]["level"] == tt.ALPHA / tt.TESTS and r["t2"]["bound"] < tt.CHANCE


def test_a_net_stopped_by_a_non_finite_gradient_in_every_seed_does_not_train():
    r = tt.reading(
        steps_table("plain", [0, 1, 2], 2.4, 2.4, stop_at=1), nets_table("plain", [0, 1, 2], [np.nan] * 3, stop_at=1)
    )
    assert r["reading"] == "does not train" and r["stopped_at"] == [1, 1, 1]


def test_a_finite_net_at_chance_is_not_shown_to_train():
    r = tt.reading(steps_table("plain", [0, 1, 2], 2.31, 2.30), nets_table("plain", [0, 1, 2], [90.1, 89.0, 91.2]))
    assert r["reading"] == "not shown at this budget"


def test_the_verdict_is_consistent_only_when_the_residual_net_trains_and_the_plain_net_does_not():
    tr, no = ({"reading": x} for x in ("trains", "does not train"))
    unk = tt.reading(steps_table("plain", [0, 1, 2], 2.31, 2.30), nets_table("plain", [0, 1, 2], [90.1, 89.0, 91.2]))
    assert tt.verdict({"resnet": tr, "plain": no}, 1202).startswith("**Consistent")
    assert tt.verdict({"resnet": no, "plain": no}, 1202).startswith("**Contradicted")
    assert tt.verdict({"resnet": no, "plain": tr}, 1202).startswith("**Contradicted")
    assert tt.verdict({"resnet": tr, "plain": unk}, 1202).startswith("**Not separated")


def test_a_net_near_chance_that_a_powered_test_misses_needs_more_steps_not_more_seeds():
    # The loss falls (the excess of the init over ln 10 goes) but the test error stays near chance, with a small sd:
    # T2 had the power to see a net at 80% error, so it is the budget, not the seeds, that leaves it undecided.
    r = tt.reading(steps_table("resnet", [0, 1, 2], 15.0, 2.35), nets_table("resnet", [0, 1, 2], [88.5, 89.0, 89.8]))
    assert r["reading"] == "not shown at this budget" and r["t2_power"] > 0.8
    text = tt.verdict({"resnet": r, "plain": {"reading": "does not train"}}, 1202)
    assert text.startswith("**Not separated") and "resnet-1202's T2 does not reject" in text
    assert "more steps would decide, not more seeds" in text


def test_power_is_not_claimed_for_a_test_without_numbers():
    assert math.isnan(tt.power(0.2, math.nan, 3)) and math.isnan(tt.power(0.2, 1.0, 1))
    assert tt.power(0.2, 0.0, 3) == 1.0


def test_the_recipe_is_the_cpu_profile_scaled_linearly_to_the_batch():
    r = tt.Recipe.scaled_cpu(batch=16, steps=200, test_images=1000)
    assert (r.profile_batch, r.lr, r.warmup_lr, r.warmup_steps) == (
        32,
        pytest.approx(0.0125),
        pytest.approx(0.00125),
        40,
    )
    assert r.lr_at(0) == pytest.approx(0.00125) and r.lr_at(40) == pytest.approx(0.0125)
    assert r.lr_at(149) == pytest.approx(0.0125) and r.lr_at(150) == pytest.approx(0.00125)  # the drop at 75%


@pytest.fixture(scope="module")
def data(synth_archive):
    from reslab.data import load_cifar10
    from reslab.data.loader import Normalizer, split_arrays

    arrays = load_cifar10(str(synth_archive), synth_archive.parent / "cache", download=False)
    tx, ty, ex, ey, _ = split_arrays(arrays, "test", None, None)
    norm = Normalizer.fit(tx, "pixel_mean")
    return {"tx": tx, "ty": ty, "ex": ex, "ey": ey, "norm": norm}


def test_a_run_records_every_step_and_its_test_error(data):
    r = tt.Recipe.scaled_cpu(batch=10, steps=40, test_images=100)
    rows, summary = tt.train_run("resnet", 8, 0, r, data, log=lambda *_: None)
    assert [x["step"] for x in rows] == list(range(40)) and all(x["grads_finite"] for x in rows)
    assert summary["stopped"] == "finite" and summary["images_seen"] == 400 and 0 <= summary["test_error"] <= 100


def test_a_run_stops_at_its_first_non_finite_gradient(data, monkeypatch):
    import dataclasses

    r = dataclasses.replace(tt.Recipe.scaled_cpu(batch=10, steps=40, test_images=100), lr=1e30, warmup_lr=1e30)
    rows, summary = tt.train_run("plain", 8, 0, r, data, log=lambda *_: None)
    assert summary["stopped"] in ("nonfinite_loss", "nonfinite_grad")
    assert summary["stopped_at_step"] == rows[-1]["step"] == summary["steps_trained"] < 40
    assert not rows[-1]["grads_finite"] and all(x["grads_finite"] for x in rows[:-1])
    assert math.isnan(summary["test_error"])


def test_the_job_writes_its_report_resumes_and_refuses_bad_input(synth_archive, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RESLAB_CACHE", str(tmp_path / "cache"))
    args = ["--data", str(synth_archive), "--depth", "8", "--steps", "40", "--batch", "10", "--seeds", "0,1,2"]
    tt.main(args)
    out = tmp_path / "reports" / "mechanism"
    for f in ("thousand_train.csv", "thousand_train_nets.csv", "thousand_train.png", "thousand_train.md"):
        assert (out / f).is_file(), f
    text = (out / "thousand_train.md").read_text()
    assert "## Verdict (computed)" in text and "400 images seen" in text
    nets = pd.read_csv(out / "thousand_train_nets.csv")
    assert len(nets) == 6 and set(nets.family) == {"plain", "resnet"}
    capsys.readouterr()
    tt.main(args)  # every run is read back, none trained again
    assert capsys.readouterr().out.count("done before") == 6
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as e:
        tt.main([*args[:-2], "--families", "plain,dense"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dense" in err[0] and "valid: plain, resnet" in err[0]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_float32_state_is_read_from_the_gradients():
    m = torch.nn.Linear(2, 2)
    m.weight.grad = torch.tensor([[1.0, float("nan")], [0.0, 0.0]])
    assert not tt._finite_grads(m)
    m.weight.grad = torch.zeros(2, 2)
    assert tt._finite_grads(m)
