"""W&B logging (issue 13): each run is its own offline W&B run that mirrors the run's CSVs under the names of
reslab.tracking.wandb_keys, a failed job of a multirun does not leak into the next, logger=none/csv leave W&B out
entirely,
and a run prints only its own lines."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from conftest import run_script
from reslab.paths import CONF_DIR
from reslab.tracking.logger import job_type, tags, wandb_mode, wandb_run
from reslab.tracking.wandb_keys import (
    EPOCH,
    EPOCH_KEYS,
    GRAD_NORM_PREFIX,
    STEP,
    STEP_LOSS,
    STEP_LR,
    TRAIN_LOSS,
    UPDATE_PREFIX,
    grad_norm_key,
    layer_id,
    update_key,
)

FAULTY = Path(__file__).with_name("faulty_train.py")
EVERY = 2  # logger.log_every_n_steps: two windows per epoch of four steps
TINY = [
    "profile=smoke",
    "model.depth=8",
    "profile.epochs=1",
    "probes.flow_points=2",
    "probes.responses=false",
    "trainer.save_weights=false",
    f"logger.log_every_n_steps={EVERY}",
]
BANNERS = [
    "GPU available",
    "TPU available",
    "HPU available",
    "LOCAL_RANK",
    "💡",
    "litlogger",
    "litmodels",
    "srun",
    "anonymous setting",
    "Tracking run with wandb",
    "Run data is saved locally",
    "wandb sync",
    "wandb leet",
]


def config(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


# -- an offline run read back with nothing but wandb's protobuf records ----------------------------------------------


def records(path: Path):
    """The records of a .wandb file: a 7-byte header, then LevelDB-log blocks of 32 KiB whose chunks (7-byte header:
    crc, length, type FULL=1/FIRST=2/MIDDLE=3/LAST=4) hold serialized wandb Record protos."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, chunk = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        chunk += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(chunk)
            chunk = b""
            yield rec


def key_of(item) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(run_dir: Path) -> dict:
    run, history, summary, exit_code = None, [], {}, None
    for rec in records(next(run_dir.glob("run-*.wandb"))):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run = rec.run
        elif kind == "history":
            history.append({key_of(i): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            summary.update({key_of(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "exit":
            exit_code = rec.exit.exit_code
    return {
        "id": run.run_id,
        "name": run.display_name,
        "group": run.run_group,
        "job_type": run.job_type,
        "tags": list(run.tags),
        "config": {i.key: json.loads(i.value_json) for i in run.config.update},
        "history": history,
        "summary": summary,
        "exit_code": exit_code,
        "dir": run_dir,
    }


def series(run: dict, key: str) -> dict:
    """{step: value} of one series."""
    return {row[STEP]: row[key] for row in run["history"] if key in row}


def wandb_env(env: dict, root: Path) -> dict:
    # W&B keeps settings and caches in the home directory unless told otherwise.
    return {
        **env,
        "WANDB_MODE": "offline",
        **{v: str(root / "wandb-home") for v in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR")},
    }


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, synth_archive):
    """A multirun of two tiny runs, W&B offline; the first job fails after training."""
    root = tmp_path_factory.mktemp("wandb-sweep")
    env = wandb_env({**os.environ, "RESLAB_CACHE": str(root / "cache"), "PYTHONUNBUFFERED": "1"}, root)
    args = ["fail-job:0", "--", "-m", *TINY, f"data.source={synth_archive}", "seed=0,1"]
    proc = run_script(FAULTY, *args, env=env, cwd=root, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one of the two jobs failed
    runs = [read_run(d) for d in sorted((root / "wandb/wandb").glob("offline-run-*"))]
    return {"root": root, "proc": proc, "runs": runs}


def test_each_job_has_its_own_wandb_run_even_after_a_failed_job(sweep):
    failed, good = sweep["runs"]
    assert [failed["name"], good["name"]] == ["resnet-8 s0", "resnet-8 s1"]
    assert failed["id"] != good["id"] and failed["dir"] != good["dir"]
    assert failed["exit_code"] == 1 and good["exit_code"] == 0, "each run is finished, the failed one as failed"
    assert series(good, EPOCH) == {4: 1}, "nothing of the failed job is logged into the next job's run"


def test_a_run_is_named_grouped_and_tagged_as_the_reports_name_it(sweep):
    run = sweep["runs"][1]
    assert (run["group"], run["job_type"]) == ("adhoc/smoke", "resnet")
    assert run["tags"] == ["depth:8", "shortcut:A", "profile:smoke", "seed:1"]


def test_the_config_is_logged_flat_so_filters_name_any_value(sweep):
    config = sweep["runs"][1]["config"]
    assert config["model.depth"] == 8 and config["profile.lr"] == 0.1 and config["profile.name"] == "smoke"
    assert config["seed"] == 1 and config["logger.log_every_n_steps"] == EVERY
    assert not [k for k, v in config.items() if isinstance(v, dict) and k != "_wandb"], "no nested sections"


def test_the_series_mirror_the_runs_csvs(sweep):
    run = sweep["runs"][1]
    out = sweep["root"] / "runs/adhoc/smoke/resnet-8-s1"
    metrics = pd.read_csv(out / "metrics.csv")
    for key in EPOCH_KEYS:
        assert series(run, key) == pytest.approx(dict(zip(metrics.step, metrics[key])), rel=1e-6), key

    loss, lr = series(run, STEP_LOSS), series(run, STEP_LR)
    assert sorted(loss) == sorted(lr) == [2, 4]
    # Two windows of two equal batches: their mean is the epoch's training loss.
    assert (loss[2] + loss[4]) / 2 == pytest.approx(metrics[TRAIN_LOSS][0], rel=1e-5)
    assert lr[2] == pytest.approx(0.1) and all(math.isfinite(v) for v in loss.values())

    grads = pd.read_csv(out / "grad_norms.csv")
    for r in grads.itertuples():
        assert series(run, grad_norm_key(layer_id(r.layer, r.name)))[r.step] == pytest.approx(r.grad_norm, rel=1e-6)
    updates = pd.read_csv(out / "updates.csv")
    for r in updates.itertuples():
        assert series(run, update_key(layer_id(r.layer, r.name)))[r.step] == pytest.approx(r.rel_update, rel=1e-6)
    keys = {k for row in run["history"] for k in row}
    assert len({k for k in keys if k.startswith(GRAD_NORM_PREFIX)}) == grads.layer.nunique() == 8
    assert len({k for k in keys if k.startswith(UPDATE_PREFIX)}) == updates.layer.nunique() == 8


def test_the_summary_holds_the_result(sweep):
    run = sweep["runs"][1]
    result = json.loads((sweep["root"] / "runs/adhoc/smoke/resnet-8-s1/result.json").read_text())
    assert run["summary"]["test_error"] == result["test_error"] and run["summary"]["status"] == "ok"


def test_a_run_prints_only_its_own_lines(sweep):
    proc = sweep["proc"]
    assert not [b for b in BANNERS if b in proc.stdout + proc.stderr], proc.stdout + proc.stderr
    assert all(line.startswith("[") for line in proc.stdout.splitlines() if line.strip()), proc.stdout
    assert all(line.startswith("reslab: error: ") for line in proc.stderr.splitlines() if line.strip()), proc.stderr


def test_logger_csv_writes_the_csvs_and_leaves_wandb_out(env, tmp_path, synth_archive):
    # WANDB_MODE=offline in the environment: the logger group alone turns W&B off.
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "reslab.train",
            "logger=csv",
            *TINY,
            "profile.max_steps=1",
            "probes.flow_points=0",
            f"data.source={synth_archive}",
        ],
        env=wandb_env(env, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "runs/adhoc/smoke/resnet-8-s0/metrics.csv").is_file()
    assert not (tmp_path / "wandb").exists()
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "lightning" in imported and not [m for m in imported if m.split(".")[0] == "wandb"]


@pytest.mark.parametrize("logger, environment", [("none", "offline"), ("csv", "offline"), ("wandb", "disabled")])
def test_no_wandb_run_is_made_for_logger_none_or_csv_nor_for_wandb_mode_disabled(logger, environment, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", environment)
    cfg = config(f"logger={logger}")
    assert wandb_mode(cfg) is None
    with wandb_run(cfg, "resnet-20 s0") as run:
        assert run is None


@pytest.mark.parametrize("environment, mode", [(None, "offline"), ("online", "online")])
def test_wandb_runs_offline_unless_the_environment_says_otherwise(environment, mode, monkeypatch):
    if environment is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", environment)
    assert wandb_mode(config()) == mode


def test_job_type_and_tags_name_the_variant_and_the_block():
    shortcut = config("experiment=shortcut", "variant=projection-B", "profile=smoke", "seed=2")
    assert job_type(shortcut) == "projection-B"
    assert tags(shortcut) == ["depth:8", "shortcut:B", "profile:smoke", "seed:2"]
    block = config("experiment=block", "block=densenet-bc-0.27M")
    assert job_type(block) == "densenet-bc-0.27M" and "block:densenet-bc-0.27M" in tags(block)
    assert job_type(config("model=plain")) == "plain"
