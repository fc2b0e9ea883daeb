"""The suite's fork server (tests/forkserver.py) runs a console script as a fresh interpreter would: same exit code,
stdout and stderr, in the working directory and environment given; an environment that changes what Python imports
gets a server of its own."""

from __future__ import annotations

import os

from conftest import BIN, FORKS, run_argv, run_cli
from forkserver import at_start


def test_a_forked_command_exits_and_prints_as_a_fresh_one(env, tmp_path):
    args = ["model.depth=21", "logger=none"]  # a bad value: one line on stderr, exit 2
    forked = run_cli("reslab-train", *args, env=env, cwd=tmp_path, check=False)
    fresh = run_cli("reslab-train", *args, env=env, cwd=tmp_path, check=False, fresh=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.args == fresh.args
    assert not list(tmp_path.glob("runs")), "neither wrote anything"


def test_python_dash_m_is_forked_as_the_interpreter_runs_a_module(env, tmp_path):
    # What `python -m` sets: __name__, sys.argv (the module's file first), sys.path[0] (the working directory).
    (tmp_path / "reslab_probe.py").write_text(
        "import sys\nprint(__name__, sys.argv, sys.path[0])\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n"
    )
    argv = [str(BIN / "python"), "-m", "reslab_probe", "a=1", "--b"]
    forked = run_argv(argv, env, tmp_path, check=False, fresh=False)
    fresh = run_argv(argv, env, tmp_path, check=False, fresh=True)
    assert forked.returncode == fresh.returncode == 3
    assert forked.stdout == fresh.stdout == f"__main__ {[str(tmp_path / 'reslab_probe.py'), 'a=1', '--b']} {tmp_path}\n"
    assert forked.stderr.endswith("to stderr\n") and fresh.stderr == "to stderr\n"


def test_a_command_runs_in_the_directory_and_environment_it_is_given(env, tmp_path):
    seen = ["+seen_env=${oc.env:RESLAB_PROBE}", "+seen_cwd=${hydra:runtime.cwd}"]
    args = ["--cfg", "job", "--resolve", "logger=none", *seen]  # Hydra prints the resolved config, trains nothing
    proc = run_cli("reslab-train", *args, env={**env, "RESLAB_PROBE": "42"}, cwd=tmp_path)
    assert "seen_env: '42'" in proc.stdout and f"seen_cwd: {tmp_path}" in proc.stdout
    assert "RESLAB_PROBE" not in os.environ and os.getcwd() != str(tmp_path), "nothing changed in this process"


def test_an_environment_that_changes_what_python_imports_gets_a_server_of_its_own(env):
    assert at_start(env) == at_start({**env, "RESLAB_CACHE": "/elsewhere", "PYTHONUNBUFFERED": "0"})
    for changed in ("PYTHONPATH", "PYTHONHASHSEED", "OMP_NUM_THREADS"):
        assert at_start({**env, changed: "7"}) != at_start(env), changed
    # tests/test_add_a_block_doc.py runs a project copy this way: its block exists only there.
    assert "reslab-train" in FORKS.scripts and "python" not in FORKS.scripts, "of the console scripts, reslab's"
