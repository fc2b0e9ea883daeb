"""One run on several devices (issue 13): Lightning DDP over two CPU processes (gloo), reslab's own launcher
(src/reslab/run/distributed.py).

What is guaranteed, and tested here: the two ranks together train on exactly the batches, crops and flips of
the one-process run, their sums are added before they are recorded, and DDP averages their gradients. So a net
without BatchNorm trains the one-process run up to float rounding. Not exactly: each rank convolves 25 images
instead of 50 and the two halves of a gradient are added by an all-reduce, so sums are rounded in another
order. The weights, losses, errors and responses of the two runs then differ by about 1e-7 (relative) after
8 steps: RTOL = 1e-5 leaves a hundredfold margin, while a wrong share or a missing reduction moves a loss
by 1e-2 or more. A single step's gradient is only piecewise smooth in the weights (ReLU kinks): those 1e-7
move a few activations across a kink, and a layer's gradient by up to 4e-4 (seen in grad_norms.csv,
updates.csv, signal.csv from the 5th step on, exactly 1e-7 before), hence RTOL_GRAD = 1e-3 for the per-step
gradient probes; one rank's gradient in place of the average would differ by far more.
With BatchNorm each rank normalises its own 25 images (SyncBatchNorm has no CPU kernel): a neighbouring
recipe, not the same run, so only its completeness is tested.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import run_cli, run_script
from reslab.data import DeviceLoader, synthetic
from reslab.data.loader import Normalizer
from reslab.errors import ReslabError
from reslab.paths import CONF_DIR
from reslab.run import runinfo, validate

SMOKE = ["profile=smoke", "logger=none", "model.depth=8", "threads=1"]
FAULTY = Path(__file__).with_name("faulty_train.py")
TIMING = {"wall_seconds", "images_per_second", "eval_seconds"}
TIMING_COLUMNS = {"seconds", "elapsed"}
RTOL = 1e-5
RTOL_GRAD = 1e-3
GRADIENT_PROBES = {"grad_norms.csv", "updates.csv", "signal.csv"}
OUTPUTS = {
    "config.yaml",
    "environment.json",
    "metrics.csv",
    "curves.csv",
    "grad_norms.csv",
    "signal.csv",
    "updates.csv",
    "responses.csv",
    "predictions.npz",
    "model.pt",
    "result.json",
    "timing.json",  # where the process that trained spent its wall time (reslab.run.phases): not compared
}


def config(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_the_ranks_together_train_on_the_one_process_batches_crops_and_flips():
    data = synthetic.make(n_train=40, n_test=10)
    norm = Normalizer.fit(data.train_x, "pixel_mean")

    def loader(**shard):
        return DeviceLoader(data.train_x, data.train_y, norm, batch_size=8, train=True, seed=3, **shard)

    one, ranks = loader(), [loader(rank=r, world=2) for r in range(2)]
    for _ in range(2):  # two epochs: a new order and new draws each
        batches = list(zip(one, *ranks))
        assert len(batches) == 5
        for (x, y), (x0, y0), (x1, y1) in batches:
            assert len(y0) == len(y1) == 4
            assert torch.equal(x, torch.cat([x0, x1])) and torch.equal(y, torch.cat([y0, y1]))
    resumed = loader(rank=1, world=2)
    resumed.resume_at(1, 3)  # a rank resumed from a checkpoint taken after batch 3 of epoch 1
    whole = loader(rank=1, world=2)
    rest = [list(whole) for _ in range(2)][1][3:]
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(list(resumed), rest, strict=True))


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "trainer.devices=3",
            "trainer.devices=3 does not divide profile.batch_size=50 (the global batch, shared equally "
            "among the devices); valid: 1, 2, 5, 10, 25, 50",
        ),
        ("trainer.devices=0", "trainer.devices=0 is not valid; valid: an integer >= 1"),
        ("trainer.strategy=ddp_spawn", "unknown trainer.strategy 'ddp_spawn'; valid choices: auto, ddp"),
        (
            "trainer.sync_batchnorm=true",
            "trainer.sync_batchnorm=true needs device=cuda (torch's SyncBatchNorm runs on "
            "GPUs only); valid here: false",
        ),
    ],
)
def test_a_device_setup_that_cannot_run_is_one_line(override, message):
    with pytest.raises(ReslabError) as err:
        validate.check(config("profile=smoke", "logger=none", "device=cpu", override))
    assert str(err.value) == message


def test_one_device_keeps_the_keys_of_earlier_runs_and_several_devices_get_their_own():
    one = config("profile=smoke")
    ident = runinfo.identity(one, "sum", "cpu", "32-true", 1)
    assert not {"devices", "strategy", "sync_batchnorm"} & set(ident), "one device adds nothing to the identity"
    key = runinfo.RunKey.of(one, "sum", "cpu", "32-true", 1)
    two = runinfo.RunKey.of(config("profile=smoke", "trainer.devices=2"), "sum", "cpu", "32-true", 1)
    assert two.key != key.key


def faulty(tmp_path: Path, env: dict, faults: list[str], *train_args) -> subprocess.CompletedProcess:
    """The command forked like the console scripts (conftest); its ranks are fresh interpreters all the same."""
    return run_script(FAULTY, *faults, "--", *train_args, env=env, cwd=tmp_path, check=False)


def close(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (a is None) == (b is None) and (a is None or math.isclose(a, b, rel_tol=RTOL))
    return a == b


def test_two_processes_train_the_one_process_run_and_resume_where_they_stopped(cli, env, tmp_path, synth_archive):
    # A net without BN, checkpoints every 2 steps; the two-process run is stopped by SIGTERM to the command
    # during step 5 (the ranks stop together after step 6, which saves), then run again to its end.
    common = [*SMOKE, f"data.source={synth_archive}", "model.norm=none", "trainer.checkpoint_every_n_steps=2"]
    cli("reslab-train", *common, "paths.runs=one")
    stopped = faulty(tmp_path, env, ["5:TERM"], *common, "trainer.devices=2", "paths.runs=two")
    assert stopped.returncode == 143, stopped.stderr
    assert "stopped by SIGTERM at step 6" in stopped.stderr
    again = cli("reslab-train", *common, "trainer.devices=2", "paths.runs=two")
    assert again.stdout.count("resuming from") == 1 and again.stdout.count("epoch 2/2") == 1, "rank 0 prints alone"

    one, two = (tmp_path / f"{d}/adhoc/smoke/resnet-8-s0" for d in ("one", "two"))
    assert {p.name for p in two.iterdir()} == {p.name for p in one.iterdir()} == OUTPUTS
    assert not two.with_name(two.name + ".next").exists()
    a, b = (json.loads((d / "result.json").read_text()) for d in (one, two))
    assert set(a) == set(b)
    assert (a["devices"], a["strategy"], b["devices"], b["strategy"]) == (1, "single_device", 2, "ddp")
    assert a["key"] != b["key"], "the device count is part of the run's identity"
    differ = {k for k in a if k not in TIMING | {"key", "devices", "strategy"} and not close(a[k], b[k])}
    assert not differ, {k: (a[k], b[k]) for k in differ}
    for name in ("metrics.csv", "curves.csv", "grad_norms.csv", "signal.csv", "updates.csv", "responses.csv"):
        x, y = (pd.read_csv(d / name) for d in (one, two))
        x, y = (f.drop(columns=sorted(TIMING_COLUMNS & set(f.columns))) for f in (x, y))
        pd.testing.assert_frame_equal(
            x, y, check_exact=False, rtol=RTOL_GRAD if name in GRADIENT_PROBES else RTOL, obj=name
        )
    p, q = (np.load(d / "predictions.npz") for d in (one, two))
    assert np.array_equal(p["pred"], q["pred"]) and np.array_equal(p["label"], q["label"])


def test_a_multirun_of_two_runs_on_two_devices_finishes_both_each_one_wandb_run_that_rank_zero_logs(
    env, tmp_path, synth_archive
):
    # One sweep checks both: every run of a multirun on two devices finishes, and each is one W&B run (not one per
    # rank) whose epoch series are the numbers metrics.csv holds over both ranks.
    from reslab.tracking.wandb_keys import EPOCH_KEYS
    from test_wandb_logging import BANNERS, read_run, series, wandb_env

    proc = run_cli(
        "reslab-train",
        "-m",
        *(o for o in SMOKE if not o.startswith("logger=")),  # the default logger: W&B, offline here
        f"data.source={synth_archive}",
        "trainer.devices=2",
        "seed=0,1",
        "trainer.save_weights=false",
        "probes.responses=false",
        env=wandb_env(env, tmp_path),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not [b for b in BANNERS if b in proc.stdout + proc.stderr], proc.stdout + proc.stderr
    assert proc.stdout.count(" ok: ") == 2
    assert proc.stdout.count("] epoch 2/2 ") == 2, "one progress line per epoch and run: rank 0's"
    assert "[run 1/2 resnet-8 s0] epoch 1/2" in proc.stdout and "[run 2/2 resnet-8 s1] epoch 1/2" in proc.stdout
    runs = tmp_path / "runs/adhoc/smoke"
    assert sorted(p.name for p in runs.iterdir()) == ["_sweeps", "resnet-8-s0", "resnet-8-s1"]
    logged = {r["name"]: r for r in (read_run(d) for d in (tmp_path / "wandb/wandb").glob("offline-run-*"))}
    assert sorted(logged) == ["resnet-8 s0", "resnet-8 s1"], "one W&B run per run, not one per rank"
    for seed in (0, 1):
        run = runs / f"resnet-8-s{seed}"
        assert {p.name for p in run.iterdir()} == OUTPUTS - {"model.pt", "responses.csv"}
        result = json.loads((run / "result.json").read_text())
        assert (result["status"], result["devices"], result["strategy"], result["epochs_done"]) == ("ok", 2, "ddp", 2)
        metrics = pd.read_csv(run / "metrics.csv")
        assert len(metrics) == 2
        assert "trainer.devices=2" in json.loads((run / "environment.json").read_text())["argv"], "the command's"
        wb = logged[f"resnet-8 s{seed}"]
        assert wb["exit_code"] == 0
        for key in EPOCH_KEYS:  # the epoch's numbers over both ranks, as metrics.csv holds them
            assert series(wb, key) == pytest.approx(dict(zip(metrics.step, metrics[key])), rel=1e-6), key
