"""Reliability (issue 12): checked before written, never losing a finished run, one writer per run, resumable
runs, data integrity, one-line rejections, reproducible artefacts."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import run_script
from reslab import io
from reslab.data import load_cifar10, synthetic
from reslab.errors import ReslabError
from reslab.paths import CONF_DIR
from reslab.run import numerics, runinfo

SMOKE = ["profile=smoke", "logger=none", "model.depth=8"]
FAULTY = Path(__file__).with_name("faulty_train.py")
TIMING = {"wall_seconds", "images_per_second", "eval_seconds"}  # result.json fields that are timings
TIMING_COLUMNS = ["seconds", "elapsed"]  # metrics.csv columns that are timings


def config(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def tree(root: Path) -> dict[str, int]:
    """Every path under root with its modification time: what a refused command must leave as it was."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("reslab: error: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return lines[0]


def faulty(
    tmp_path: Path, env: dict, faults: list[str], *train_args, check: bool = True
) -> subprocess.CompletedProcess:
    """reslab-train with faults injected (tests/faulty_train.py), forked as the console scripts are (conftest)."""
    return run_script(FAULTY, *faults, "--", *train_args, env=env, cwd=tmp_path, check=check)


# -- 1, 8: every value is checked before anything is written ---------------------------------------------------

BAD_VALUES = [
    ("profile.epochs=0", "profile.epochs=0 is not valid; valid: an integer >= 1"),
    ("profile.max_steps=-5", "profile.max_steps=-5 is not valid; valid: an integer >= 1 (or null)"),
    ("profile.batch_size=0", "profile.batch_size=0 is not valid; valid: an integer >= 1"),
    ("profile.lr=0", "profile.lr=0 is not valid; valid: a number > 0"),
    ("profile.lr=-0.1", "profile.lr=-0.1 is not valid; valid: a number > 0"),
    ("seed=abc", "seed='abc' is not valid; valid: an integer >= 0"),
    ("seed=1.5", "seed=1.5 is not valid; valid: an integer >= 0"),
    ("jobs=0", "jobs=0 is not valid; valid: an integer >= 1"),
    ("threads=0", "threads=0 is not valid; valid: an integer >= 1 (or null)"),
    ("device=tpu", "unknown device 'tpu'; valid choices: auto, cpu, cuda"),
    ("model.depth=21", "model.depth=21 is not 6n+2"),
    ("data.split=train", "unknown data.split 'train'; valid choices: test, val"),
    ("data.source=/no/such/cifar", "data source '/no/such/cifar' does not exist"),
    ("+profile.warmup.shape=cosine", "unknown profile.warmup.shape 'cosine'; valid choices: constant, linear"),
    ("profile.milestones=[0.5,2]", "profile.milestones=[0.5, 2] is not valid; valid: a list of fractions"),
    ("trainer.precision=fp8", "unknown trainer.precision 'fp8'"),
    ("trainer.checkpoint_every_n_steps=-1", "trainer.checkpoint_every_n_steps=-1 is not valid"),
    ("study=a/b", "study='a/b' is not valid; valid: a plain name"),
    ("logger.log_every_n_steps=0", "logger.log_every_n_steps=0 is not valid; valid: an integer >= 1"),
    ("logger.mode=cloud", "unknown logger.mode 'cloud'; valid choices: offline, online, disabled"),
]


@pytest.mark.parametrize("override, message", BAD_VALUES, ids=[o.lstrip("+") for o, _ in BAD_VALUES])
def test_the_schema_names_the_bad_value_and_what_is_valid(override, message):
    from reslab.run import validate

    with pytest.raises(ReslabError) as err:
        validate.check(config("profile=smoke", "logger=none", override))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_defaults_and_every_profile_pass_the_schema(tmp_path):
    from reslab.run import validate

    for profile in ("smoke", "cpu", "quick", "paper"):
        validate.check(config(f"profile={profile}", f"paths.runs={tmp_path / 'runs'}"))


def test_a_runs_directory_that_cannot_be_written_is_refused(tmp_path):
    from reslab.run import validate

    (tmp_path / "file").write_text("")
    with pytest.raises(ReslabError, match="paths.runs=.* cannot be written: .* is not a directory"):
        validate.check(config("profile=smoke", f"paths.runs={tmp_path / 'file' / 'runs'}"))
    (tmp_path / "runs" / "adhoc").mkdir(parents=True)
    (tmp_path / "runs" / "adhoc" / "smoke").write_text("")  # where the run's folder would go
    with pytest.raises(ReslabError, match="runs/adhoc/smoke' is not a directory"):
        validate.check(config("profile=smoke", f"paths.runs={tmp_path / 'runs'}"))
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        with pytest.raises(ReslabError, match="is not writable"):
            validate.check(config("profile=smoke", f"paths.runs={tmp_path / 'ro' / 'runs'}"))


@pytest.mark.parametrize("override", ["seed=abc", "paths.runs=file/runs"])
def test_a_bad_value_is_one_line_exit_2_and_leaves_every_file_as_it_was(cli, tmp_path, synth_archive, override):
    (tmp_path / "file").write_text("")
    before = tree(tmp_path)
    proc = cli("reslab-train", *SMOKE, f"data.source={synth_archive}", override, check=False)
    assert proc.returncode == 2
    assert override.split("=")[0] in one_error_line(proc)
    assert tree(tmp_path) == before


def test_a_sweep_with_one_bad_job_stops_before_its_first_job(cli, tmp_path, synth_archive):
    before = tree(tmp_path)
    proc = cli("reslab-train", "-m", *SMOKE, f"data.source={synth_archive}", "seed=0,abc", check=False)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "seed='abc' is not valid" in line and "nothing was run" in line
    assert "epoch" not in proc.stdout and tree(tmp_path) == before


def test_a_sweep_whose_jobs_would_share_a_run_directory_is_refused_before_its_first_job(cli, tmp_path):
    # Two data copies under one file name: a label writes a path by its file name, so both jobs would train in one
    # directory (the run lock would skip one, a rerun would supersede the other). The guard refuses the sweep.
    a = synthetic.write(tmp_path / "a" / "cifar-10-python.tar.gz", n_train=100, n_test=20, seed=0)
    b = synthetic.write(tmp_path / "b" / "cifar-10-python.tar.gz", n_train=100, n_test=20, seed=1)
    before = tree(tmp_path)
    proc = cli("reslab-train", "-m", *SMOKE, f"data.source={a},{b}", check=False)
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert (
        f"jobs 1 (data.source={a}) and 2 (data.source={b}) would both train in "
        "runs/adhoc/smoke/resnet-8-sourcecifar-10-python.tar.gz-s0 with different settings" in line
    ), line
    assert "nothing was run" in line and "epoch" not in proc.stdout
    assert tree(tmp_path) == before and not (tmp_path / "runs").exists()


def test_a_failing_job_is_recorded_the_others_go_on_and_nothing_finished_moves(cli, env, tmp_path, synth_archive):
    common = [*SMOKE, f"data.source={synth_archive}", "trainer.save_weights=false", "probes.flow_points=0"]
    cli("reslab-train", *common, "seed=1", "profile.lr=0.05")  # an earlier finished run of job 1, another config
    old = tmp_path / "runs/adhoc/smoke/resnet-8-s1"
    old_result = (old / "result.json").read_text()

    proc = faulty(tmp_path, env, ["fail-job:1"], "-m", *common, "seed=0,1,2", check=False)
    assert proc.returncode == 1
    assert "1 of 3 runs failed" in proc.stderr.splitlines()[-1]
    failed = json.loads((tmp_path / "runs/adhoc/smoke/resnet-8-s1.next/failed.json").read_text())
    assert failed["error"] == "RuntimeError: simulated failure after training" and "Traceback" in failed["traceback"]
    for seed in (0, 2):
        assert json.loads((tmp_path / f"runs/adhoc/smoke/resnet-8-s{seed}/result.json").read_text())["status"] == "ok"
    assert (old / "result.json").read_text() == old_result, "the finished run of job 1 stays where it was"
    assert not list(old.parent.glob("*.stale-*"))


# -- 2, 6, 9: a killed run resumes to the bytes of an uninterrupted one; the finished run it replaces stays ---------


def test_a_killed_run_resumes_to_the_bytes_of_an_uninterrupted_one(cli, env, tmp_path, synth_archive):
    # 4 steps per epoch, 3 epochs, a checkpoint every 2 steps: killed in the middle of step 3 (after the
    # checkpoint of step 2, mid-epoch), then stopped by SIGTERM during step 6, which saves at step 7 first.
    common = [*SMOKE, f"data.source={synth_archive}", "profile.epochs=3", "trainer.checkpoint_every_n_steps=2"]
    cli("reslab-train", *common, "paths.runs=whole")
    run = tmp_path / "killed/adhoc/smoke/resnet-8-s0"
    io.write_text(run / "config.yaml", "trainer:\n  deterministic: false\n")  # a finished run of another config
    earlier = io.write_json(run / "result.json", {"key": "another-config", "threads": 1}).read_text()

    for fault, code in (("3:KILL", -signal.SIGKILL), ("6:TERM", 128 + signal.SIGTERM)):
        proc = faulty(tmp_path, env, [fault], *common, "paths.runs=killed", check=False)
        assert proc.returncode == code, proc.stderr
        assert (run / "result.json").read_text() == earlier, "a crash of the new run leaves the old one in place"
        assert (run.with_name(run.name + ".next") / "checkpoint.pt").is_file()
    assert "stopped by SIGTERM at step 7" in proc.stderr and "run the same command again to resume" in proc.stderr

    again = cli("reslab-train", *common, "paths.runs=killed")
    assert "resuming from" in again.stdout
    assert len(list(run.parent.glob("*.stale-*"))) == 1, "the old run is moved aside when the new one commits"
    assert not run.with_name(run.name + ".next").exists() and not (run / "checkpoint.pt").exists()

    whole = tmp_path / "whole/adhoc/smoke/resnet-8-s0"
    a, b = (json.loads((d / "result.json").read_text()) for d in (whole, run))
    assert {k: v for k, v in a.items() if k not in TIMING} == {k: v for k, v in b.items() if k not in TIMING}
    for name in (
        "model.pt",
        "predictions.npz",
        "curves.csv",
        "grad_norms.csv",
        "signal.csv",
        "updates.csv",
        "responses.csv",
    ):
        assert (whole / name).read_bytes() == (run / name).read_bytes(), name
    pd.testing.assert_frame_equal(
        pd.read_csv(whole / "metrics.csv").drop(columns=TIMING_COLUMNS),
        pd.read_csv(run / "metrics.csv").drop(columns=TIMING_COLUMNS),
    )


def test_a_resumed_loader_yields_the_batches_an_uninterrupted_one_yields():
    from reslab.data import DeviceLoader
    from reslab.data.loader import Normalizer

    data = synthetic.make(n_train=40, n_test=10)
    norm = Normalizer.fit(data.train_x, "pixel_mean")

    def loader():
        return DeviceLoader(data.train_x, data.train_y, norm, batch_size=8, train=True, seed=3)

    uninterrupted = loader()
    whole = [list(uninterrupted) for _ in range(2)][1]  # its epoch 1
    resumed = loader()
    resumed.resume_at(1, 3)  # killed after batch 3 of epoch 1
    rest = list(resumed)
    assert len(rest) == 2
    for (x, y), (x0, y0) in zip(rest, whole[3:]):
        assert torch.equal(x, x0) and torch.equal(y, y0)


def test_a_new_run_replaces_a_finished_one_only_when_it_commits(tmp_path):
    run = tmp_path / "runs/s/p/resnet-8-s0"
    io.write_json(run / "result.json", {"key": "old-config-key"})
    work = runinfo.begin(run, "new-config-key")
    assert work == run.with_name("resnet-8-s0.next") and (run / "result.json").is_file()
    io.write_json(work / "result.json", {"key": "new-config-key"})
    aside = runinfo.commit(run, work)
    assert aside.name == "resnet-8-s0.stale-old-conf" and io.read_json(aside / "result.json")["key"] == "old-config-key"
    assert io.read_json(run / "result.json")["key"] == "new-config-key" and not work.exists()


def test_a_killed_attempt_is_kept_for_its_config_and_cleared_for_another(tmp_path):
    run = tmp_path / "runs/s/p/resnet-8-s0"
    work = runinfo.begin(run, "k1")
    (work / "checkpoint.pt").write_bytes(b"state")
    assert (runinfo.begin(run, "k1") / "checkpoint.pt").is_file()
    assert not (runinfo.begin(run, "k2") / "checkpoint.pt").exists()


# -- 3: one writer per run ----------------------------------------------------------------------------------------


def test_a_run_locked_by_one_writer_cannot_be_locked_by_another(tmp_path):
    from reslab.run.lock import run_lock

    run = tmp_path / "runs/s/p/resnet-8-s0"
    with run_lock(run) as first:
        with run_lock(run) as second:
            assert first and not second
    with run_lock(run) as again:
        assert again, "the lock is released with its holder"
    assert list(run.parent.iterdir()) == [], "and its file removed: runs/ lists runs"


def test_two_concurrent_sweeps_train_each_run_once(env, tmp_path, synth_archive):
    args = [
        str(Path(sys.executable).parent / "reslab-train"),
        "-m",
        "experiment=depth",
        *SMOKE[:2],
        f"data.source={synth_archive}",
        "model.depth=8",
        "seed=0,1",
        "threads=1",
        "trainer.save_weights=false",
        "probes.flow_points=0",
        "probes.responses=false",
    ]
    procs = [
        subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    stdout = "".join(o for o, _ in outs)
    runs = tmp_path / "runs/depth/smoke"
    # Exactly the runs (and each sweep's record of what it asked for), nothing half-written beside them.
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == [
        "_sweeps",
        "plain-8-s0",
        "plain-8-s1",
        "resnet-8-s0",
        "resnet-8-s1",
    ]
    assert len(list((runs / "_sweeps").iterdir())) == 2
    assert stdout.count(" ok: ") == 4, "each run trained exactly once, by one of the two sweeps"
    assert stdout.count("skipped") == 4, "and skipped by the other (finished, or held by the first)"
    keys = {
        json.loads((d / "result.json").read_text())["key"] for d in runs.iterdir() if d.is_dir() and d.name != "_sweeps"
    }
    assert len(keys) == 4


# -- 5: the identity covers what changes the numbers ----------------------------------------------------------------


def test_thread_count_and_deterministic_kernels_are_part_of_the_identity():
    cfg = config("profile=smoke")
    key = runinfo.RunKey.of(cfg, "sum", "cpu", "32-true", threads=1)
    assert key.key != runinfo.RunKey.of(cfg, "sum", "cpu", "32-true", threads=2).key
    assert (
        key.key
        != runinfo.RunKey.of(
            config("profile=smoke", "trainer.deterministic=true"), "sum", "cpu", "32-true", threads=1
        ).key
    )


def test_a_run_of_another_numerics_version_is_not_finished_for_this_code(tmp_path, monkeypatch):
    cfg = config("profile=smoke")
    key = runinfo.RunKey.of(cfg, "sum", "cpu", "32-true", threads=2)
    run = tmp_path / "run"
    io.write_json(run / "result.json", {"key": key.key, "numerics": numerics.VERSION, "probes": None})
    assert runinfo.finished(run, key) is not None
    monkeypatch.setattr(numerics, "VERSION", numerics.VERSION + 1)
    bumped = runinfo.RunKey.of(cfg, "sum", "cpu", "32-true", threads=2)
    assert bumped.key != key.key, "the numerics version is part of the identity"
    assert runinfo.finished(run, bumped) is None, "a run of an older numerics is trained again, not skipped"
    unversioned = key_of_identity_without_numerics(cfg)
    io.write_json(run / "result.json", {"key": unversioned, "threads": 2, "probes": None})
    assert runinfo.finished(run, key) is None, "nor is a run written before numerics had versions"


def key_of_identity_without_numerics(cfg) -> str:
    ident = runinfo.identity(cfg, "sum", "cpu", "32-true", 2)
    ident.pop("numerics")
    return runinfo.key_of(ident)


# -- 7: data integrity ----------------------------------------------------------------------------------------------


def test_a_corrupt_cache_is_rebuilt_not_trusted(tmp_path, synth_archive, monkeypatch):
    first = load_cifar10(str(synth_archive), tmp_path / "cache")
    cache = next((tmp_path / "cache").glob("cifar10-*.pt"))
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit, inside the training images
    cache.write_bytes(bytes(raw))
    decoded = []
    from reslab.data import source

    read = source._read
    monkeypatch.setattr(source, "_read", lambda *a: decoded.append(a) or read(*a))
    second = load_cifar10(str(synth_archive), tmp_path / "cache")
    assert decoded, "the damaged cache was decoded again"
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.test_y, second.test_y)


def test_sigterm_while_the_cache_is_written_leaves_no_temp_file(env, tmp_path, synth_archive):
    script = (
        "import os, signal, sys, time, torch\n"
        "def save(obj, f):\n"
        "    f.write(b'half'); f.flush(); os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)\n"
        "torch.save = save\n"
        "from reslab.train import main\n"
        f"sys.argv = ['reslab-train', 'profile=smoke', 'logger=none', 'data.source={synth_archive}']\n"
        "main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "no temp file, no cache, no run"


def test_an_image_folder_with_a_missing_class_or_a_wrong_size_is_refused(tmp_path):
    from PIL import Image

    root = synthetic.write_image_folder(tmp_path / "tree", synthetic.make(n_train=20, n_test=10))
    for f in (root / "test" / "cat").iterdir():
        f.unlink()
    (root / "test" / "cat").rmdir()
    with pytest.raises(ReslabError, match=r"test/ lacks the classes \['cat'\] that train/ has"):
        load_cifar10(str(root), tmp_path / "cache")
    (root / "train" / "cat").rename(root / "test" / "cat")
    (root / "train" / "cat").mkdir()
    Image.new("RGB", (40, 40)).save(root / "train" / "cat" / "big.png")
    with pytest.raises(
        ReslabError, match=r"image 'train/cat/big.png': expected 32x32 RGB images, got shape \(3, 40, 40\)"
    ):
        load_cifar10(str(root), tmp_path / "cache")


def test_a_truncated_archive_is_named_as_such(tmp_path, synth_archive):
    cut = tmp_path / "cifar-10-python.tar.gz"
    cut.write_bytes(synth_archive.read_bytes()[: synth_archive.stat().st_size // 2])
    with pytest.raises(ReslabError, match=r"^truncated archive .*cifar-10-python.tar.gz': it ends after"):
        load_cifar10(str(cut), tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*"))


# -- 8: a full disk ---------------------------------------------------------------------------------------------------


def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path):
    target = io.write_text(tmp_path / "result.json", "old\n")

    def fills(path):
        path.write_text("new, half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(ReslabError, match="no space left on the device writing .*result.json") as err:
        io.save_with(target, fills)
    assert "\n" not in str(err.value)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_disk_that_fills_during_a_run_is_one_line_and_nothing_half_written(env, tmp_path, synth_archive):
    proc = faulty(tmp_path, env, ["enospc:model.pt"], *SMOKE, f"data.source={synth_archive}", check=False)
    assert proc.returncode == 2 and "no space left on the device writing" in one_error_line(proc)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp") or p.name in ("model.pt", "result.json")]


# -- 9: reproducible artefacts ------------------------------------------------------------------------------------


def test_weights_are_saved_byte_identically_whatever_the_file_name(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    a = io.save_weights(tmp_path / "a" / "model.pt", model)
    b = io.save_weights(tmp_path / "b.pt", model.to(memory_format=torch.channels_last))
    assert a.read_bytes() == b.read_bytes()
    assert (
        io.save_npz(tmp_path / "a.npz", x=torch.arange(5).numpy()).read_bytes()
        == io.save_npz(tmp_path / "b.npz", x=torch.arange(5).numpy()).read_bytes()
    )


def test_files_are_created_with_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        for path in (
            io.write_text(tmp_path / "a.json", "{}"),
            io.save_with(tmp_path / "b.csv", lambda p: p.write_text("x")),
        ):
            assert path.stat().st_mode & 0o777 == 0o640, path
    finally:
        os.umask(old)
