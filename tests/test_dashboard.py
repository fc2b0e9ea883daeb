"""The W&B dashboards of a study (src/reslab/tracking/dashboard.py, offline_runs.py, workspace.py): its offline runs
found
wherever they lie and shown in `wandb leet`; sync and the saved workspace refused in one line, before any upload,
without a key or a network; and every panel of the workspace charting a key the runs log. Nothing here needs a
W&B account or the network."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from reslab.tracking import dashboard, offline_runs, workspace
from reslab.tracking import wandb_keys as K

# wandb-workspaces 0.4.13 still declares pydantic-1-style validators.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic V1 style:DeprecationWarning")

LAYERS = ("stem.0", "stages.0.0.conv1", "head.2")

# Offline runs logged as the logger logs them (src/reslab/tracking/logger.py and the names of wandb_keys.py): group
# <study>/<profile>, job type the family, config flat with dotted keys, every series against trainer/global_step.
# wandb.init itself rather than a training run: a smoke run costs a minute of this suite, these three seconds.
WRITE_RUNS = textwrap.dedent("""
    import sys
    import wandb
    from reslab.tracking import wandb_keys as K

    root = sys.argv[1]
    layers = sys.argv[2].split(",")
    for save_dir, group, family, depth in [(f"{root}/wandb", "depth/smoke", "plain", 8),
                                           (f"{root}/wandb", "depth/smoke", "resnet", 14),
                                           (f"{root}/elsewhere/deeper", "shortcut/smoke", "identity-A", 8)]:
        run = wandb.init(project="reslab", dir=save_dir, mode="offline", group=group, job_type=family,
                         name=f"{family}-{depth} s0", settings=wandb.Settings(silent=True, x_disable_stats=True),
                         config={"study": group.split("/")[0], "profile.name": "smoke", "model.name": family,
                                 "model.depth": depth, "seed": 0})
        run.define_metric(K.STEP)
        run.define_metric("*", step_metric=K.STEP, step_sync=True)
        for step in range(4):
            run.log({K.STEP_LOSS: 2.3 - 0.1 * step, K.STEP_LR: 0.1, K.STEP: step,
                     **{K.grad_norm_key(l): 0.5 / (1 + step) for l in layers},
                     **{K.update_key(l): 1e-3 for l in layers}})
            if step % 2:
                run.log({K.EPOCH: step // 2, K.TRAIN_ERROR: 80.0 - step, K.TRAIN_LOSS: 2.2, K.TEST_ERROR: 82.0 - step,
                         K.TEST_LOSS: 2.3, K.STEP: step})
        run.finish()
""")


@pytest.fixture(scope="module")
def wandb_root(tmp_path_factory) -> Path:
    """Two offline runs of depth/smoke in <root>/wandb/wandb/ (the logger's nesting) and one of shortcut/smoke
    deeper elsewhere."""
    root = tmp_path_factory.mktemp("logs")
    home = tmp_path_factory.mktemp("home")
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "HOME": str(home),
        "WANDB_CONFIG_DIR": str(home / "wandb"),
        "WANDB_CACHE_DIR": str(home / "cache"),
        "WANDB_DATA_DIR": str(home / "data"),
    }
    subprocess.run(
        [sys.executable, "-c", WRITE_RUNS, str(root), ",".join(LAYERS)],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root


def test_offline_runs_are_found_at_any_depth_and_selected_by_study_and_profile(wandb_root):
    assert len(offline_runs.find(wandb_root)) == 3
    runs = offline_runs.select(wandb_root, "depth", "smoke")
    assert sorted(r.job_type for r in runs) == ["plain", "resnet"]
    assert all(
        r.path.parent == (wandb_root / "wandb" / "wandb").resolve() and r.config["model.depth"] in (8, 14) for r in runs
    )
    assert all(r.flat_config for r in runs)
    [other] = offline_runs.select(wandb_root / "elsewhere", "shortcut", "smoke")
    assert other.name == "identity-A-8 s0"


@pytest.mark.parametrize(
    "where, message",
    [
        (
            "root",
            "no offline W&B runs of study=block profile=smoke (group block/smoke) under {root}; "
            "valid (study/profile): depth/smoke, shortcut/smoke",
        ),
        ("missing", "no offline W&B runs of block/smoke: {root}/missing does not exist"),
    ],
)
def test_no_runs_of_the_study_is_one_line_naming_where_it_looked(wandb_root, capsys, where, message):
    path = wandb_root if where == "root" else wandb_root / "missing"
    with pytest.raises(SystemExit) as stop:
        dashboard.main(["dashboard", "block", "profile=smoke", f"dir={path}"])
    assert stop.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reslab: error: ")
    assert message.format(root=wandb_root.resolve()) in err[0]


def screen(fd: int, until, seconds: float) -> str:
    """What the program on the pty's other side has drawn, escape sequences removed, once `until(text)` holds
    or after `seconds`."""
    raw, end = b"", time.monotonic() + seconds
    text = ""
    while time.monotonic() < end and not until(text):
        if select.select([fd], [], [], 0.25)[0]:
            try:
                raw += os.read(fd, 1 << 16)
            except OSError:  # the program has ended
                break
            text = re.sub(
                r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-B]|[=>78])",
                "",
                raw.decode("utf-8", "replace"),
            )
    return text


def test_dashboard_opens_the_study_runs_in_wandb_leet(wandb_root, tmp_path):
    """`reslab-wandb dashboard depth profile=smoke`: leet lists the study's two runs (both selected), charts
    their metrics, shows a run's config and summary; the other study's run is not there; `q` quits cleanly."""
    import fcntl
    import termios

    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "TMPDIR": str(tmp_path),
    }
    pid, fd = pty.fork()
    if pid == 0:  # the child, on the pty: the dashboard
        os.execve(
            sys.executable,
            [
                sys.executable,
                "-m",
                "reslab.tracking.dashboard",
                "dashboard",
                "depth",
                "profile=smoke",
                f"dir={wandb_root}",
            ],
            env,
        )
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))  # a 160x50 terminal
    wanted = ("[2 items]", K.TRAIN_ERROR, K.TEST_ERROR, K.STEP_LOSS, "Config", workspace.DEPTH, "Summary")
    names = ("plain-8 s0", "resnet-14 s0")
    status = None
    try:
        text = screen(fd, lambda t: all(w in t for w in wanted) and any(f"Name: {n}" in t for n in names), 120)
        os.write(fd, b"q")
        deadline = time.monotonic() + 30
        while status is None and time.monotonic() < deadline:
            screen(fd, lambda t: False, 0.5)
            done, code = os.waitpid(pid, os.WNOHANG)
            status = code if done else None
    finally:
        if status is None:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert "2 offline runs of depth/smoke under" in text
    for word in wanted:
        assert word in text, f"{word!r} not on the screen:\n{text[-3000:]}"
    assert any(f"Name: {n}" in text for n in names) and "identity-A" not in text
    assert status is not None and os.waitstatus_to_exitcode(status) == 0, "the dashboard did not quit on q"
    assert not list(tmp_path.glob("reslab-leet-*")), "the view's folder of links was left behind"


@pytest.fixture()
def no_wandb(tmp_path, monkeypatch):
    """No key anywhere wandb looks (an empty home, no netrc, no WANDB_API_KEY); any upload attempt fails the test."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "NETRC", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dashboard, "sync", lambda runs: pytest.fail("wandb sync was called"))
    monkeypatch.setattr(dashboard, "publish", lambda *a: pytest.fail("the workspace was built"))
    return monkeypatch


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("action", ["sync", "workspace"])
@pytest.mark.parametrize("missing", ["key", "network"])
def test_upload_without_key_or_network_is_one_line_before_any_upload(no_wandb, wandb_root, capsys, action, missing):
    if missing == "network":
        no_wandb.setenv("WANDB_API_KEY", "dummy")
        no_wandb.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    t0 = time.monotonic()
    with pytest.raises(SystemExit) as stop:
        dashboard.main([action, "depth", "profile=smoke", f"dir={wandb_root}"])
    assert stop.value.code != 0 and time.monotonic() - t0 < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"reslab: error: reslab-wandb {action} needs "), err
    if missing == "key":
        assert "needs a W&B API key: run `wandb login` or set WANDB_API_KEY" in err[0]
    else:
        assert "does not answer within 3 s (no network?)" in err[0]


def test_a_key_in_netrc_and_a_listening_host_pass_the_checks(no_wandb, tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        no_wandb.setenv("WANDB_BASE_URL", url)
        assert not dashboard.has_api_key()
        (tmp_path / ".netrc").write_text(
            f"machine 127.0.0.1:{server.getsockname()[1]}\n  login user\n  password {'k' * 40}\n"
        )
        assert dashboard.has_api_key()
        assert dashboard.reachable(url, 3)
    assert not dashboard.reachable(url, 3)


# What the runs log, by the names of src/reslab/tracking/wandb_keys.py; the config key is the Hydra one.
CONTRACT = {
    "history": {
        K.STEP,
        *K.EPOCH_KEYS,
        K.STEP_LOSS,
        K.STEP_LR,
        *(K.grad_norm_key(l) for l in LAYERS),
        *(K.update_key(l) for l in LAYERS),
    },
    "config": {workspace.DEPTH, "study", "profile.name", "seed"},
}


def test_every_workspace_panel_charts_a_key_the_runs_log(wandb_root):
    ws = workspace.build("depth/smoke", "offline-test", "reslab")
    keys = {key for _, _, key in workspace.panel_keys(ws)}
    assert {K.STEP, K.TRAIN_ERROR, K.TEST_ERROR, workspace.DEPTH} <= keys and len(ws.sections[0].panels) == 3
    assert workspace.unlogged(ws, CONTRACT) == []
    # The same check against what offline runs actually logged (their transaction logs)...
    assert workspace.unlogged(ws, offline_runs.logged_keys(offline_runs.select(wandb_root, "depth", "smoke"))) == []
    # ...and it bites: runs without gradient norms or without the depth in their config fail it.
    bare = {"history": CONTRACT["history"] - {K.grad_norm_key(l) for l in LAYERS}, "config": {"study"}}
    missing = workspace.unlogged(ws, bare)
    assert len(missing) == 2 and "grad_norm/" in missing[0] + missing[1] and "model.depth" in missing[0] + missing[1]


def test_workspace_shows_the_study_only_by_family_and_the_depth_as_logged():
    spec = (
        workspace.build("depth/smoke", "offline-test", "reslab")
        ._to_model()
        .model_dump(by_alias=True, exclude_none=True)
    )
    section = spec["spec"]["section"]
    assert section["runSets"][0]["filters"]["filters"] == [
        {"key": {"section": "run", "name": "group"}, "op": "=", "value": "depth/smoke", "disabled": False}
    ]
    errors, gradients = section["panelBankConfig"]["sections"]
    curves, scatter = errors["panels"][:2], errors["panels"][2]["config"]
    assert all(p["config"]["groupBy"] == "jobType" and p["config"]["xAxis"] == K.STEP for p in curves)
    assert (scatter["xAxis"], scatter["yAxis"]) == ("config:model.depth.value", "summary:test_error")
    assert gradients["panels"][0]["config"]["metricRegex"] == "grad_norm/.*"
    # A config logged as nested dicts (model -> depth) is addressed the nested way.
    nested = workspace.build("depth/smoke", "offline-test", "reslab", flat_config=False)._to_model()
    assert (
        nested.model_dump(by_alias=True)["spec"]["section"]["panelBankConfig"]["sections"][0]["panels"][2]["config"][
            "xAxis"
        ]
        == "config:model.value.depth"
    )


PUBLISH = dashboard.publish


def test_building_the_workspace_again_updates_the_view_it_saved(no_wandb, wandb_root, capsys):
    """`reslab-wandb workspace` past its checks (a key, a host that answers), W&B itself replaced: the first
    build saves a new view, the second updates that view; no warning, since the runs log every panel's key."""
    import wandb_workspaces.workspaces as ws

    saved = []

    def save(self):  # what Workspace.save does, without the server: a new view gets a name and an id
        saved.append(self._internal_id)
        if not self._internal_id:
            self._internal_name, self._internal_id = "nw-view1-v", "id1"
        return self

    no_wandb.setattr(ws.Workspace, "save", save)
    no_wandb.setattr(ws.Workspace, "url", property(lambda self: f"https://wandb.test/{self._internal_name}"))
    no_wandb.setenv("WANDB_API_KEY", "dummy")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        no_wandb.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        no_wandb.setattr(dashboard, "publish", PUBLISH)  # the real one, past no_wandb's guard
        for _ in range(2):
            with pytest.raises(SystemExit) as stop:
                dashboard.main(["workspace", "depth", "profile=smoke", f"dir={wandb_root}", "entity=offline-test"])
            assert stop.value.code == 0
    out = capsys.readouterr()
    assert saved == ["", "id1"] and "warning" not in out.err
    assert out.out.splitlines() == ["workspace of depth/smoke: https://wandb.test/nw-view1-v"] * 2
