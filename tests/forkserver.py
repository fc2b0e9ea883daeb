"""The suite's reslab commands (console scripts, tests/faulty_train.py), started by forking a process that has
imported reslab already.

Each reslab process spends seconds importing torch, Lightning (which imports torch._dynamo) and torchmetrics before it
does anything (reports/bench, "Imports of a run's process"); the suite starts dozens of them. A fork server imports
them once per pytest worker (and start-up environment: `ForkServers`), and each command is a fork of it: a process of
its own (its own pid, exit status, signals, stdout and stderr, working directory and environment) that runs the
script as its `__main__`, as `python script` would (an installed console script calls `sys.exit(main())`), and exits
through the interpreter's normal shutdown (atexit handlers run). What it skips is the interpreter's start and the
imports. Python's `random` reseeds itself in a forked child; what the imports printed is put first on each command's
stderr, as a fresh process has it.

The server never computes with torch: its OpenMP pool is never started, so a child forks with one thread and starts
its own. Tests that check a process's start itself (what it imports: tests/test_imports.py; the bench's fixed cost)
or that signal a process they started (tests/test_launchers.py, test_reliability.py) start real processes themselves,
as a run's ranks (reslab.run.distributed) and joblib's workers are started by reslab and joblib.

Protocol (one request at a time, over the server's stdin/stdout, one JSON object per line):
  -> {"argv": [script, args...] or [python, "-m", module, args...], "env": {...}, "cwd": ..., "out": path, "err": path}
  <- {"pid": child}  then  <- {"status": waitpid status}
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import threading
from importlib import metadata
from pathlib import Path

# The modules of the console scripts the suite runs most; another entry point is imported by its child.
PRELOAD = ("reslab.train", "reslab.report.cli", "reslab.summary", "reslab.reproduce")
# Environment variables read once, when the interpreter or a library starts (prefixes): a fork keeps the server's.
AT_START = ("PYTHON", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "TORCH", "CUDA_", "LD_")


def console_scripts() -> set[str]:
    """reslab's console scripts, as pyproject.toml's [project.scripts] installed them."""
    return {ep.name for ep in metadata.entry_points(group="console_scripts") if ep.name.startswith("reslab-")}


def at_start(env: dict) -> tuple:
    """What of `env` the interpreter and the libraries read once, at their start: a fork keeps its server's."""
    return tuple(sorted((k, v) for k, v in env.items() if k.startswith(AT_START) and k != "PYTHONUNBUFFERED"))


class ForkServers:
    """The client, in a pytest worker: a server per environment the suite starts commands in, as far as the
    interpreter and the libraries read it at their start (`at_start`): the worker's own, and e.g. a project copy first
    on PYTHONPATH (tests/test_add_a_block_doc.py: its server imports that copy). Each is started on first use."""

    def __init__(self) -> None:
        self.servers: dict[tuple, ForkServer] = {}
        self.lock = threading.Lock()
        self.scripts = console_scripts()

    def run(self, argv: list[str], env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        with self.lock:
            server = self.servers.setdefault(at_start(env), ForkServer(env))
        return server.run(argv, env, cwd, timeout)

    def close(self) -> None:
        for server in self.servers.values():
            server.close()


class ForkServer:
    """One server process, started with `env` on first use."""

    def __init__(self, env: dict) -> None:
        self.proc: subprocess.Popen | None = None
        self.env = dict(env)
        self.lock = threading.Lock()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        ready = json.loads(self.proc.stdout.readline() or "{}")
        if ready.get("ready") is not True:
            raise RuntimeError(f"the fork server did not start: {ready!r}")
        # What the imports printed (warnings): a fresh process prints it before anything else, so every command's
        # stderr starts with it here too. A claim about stderr ("one line") cannot pass here and fail for a user.
        self.preamble = ready["stderr"]

    def run(self, argv: list[str], env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
        """`python argv...` in a fork, to its end (argv[0] a script: an installed console script or a file; or the
        interpreter, then `-m module`); its stdout and stderr are captured as subprocess.run does, its return code is
        subprocess's (negative: that signal)."""
        with tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            status = self._fork(argv, env, cwd, out, err, timeout)
            code = os.waitstatus_to_exitcode(status)
            stdout, stderr = out.read_text(), self.preamble + err.read_text()
        return subprocess.CompletedProcess(argv, code, stdout, stderr)

    def _fork(self, argv: list[str], env: dict, cwd: Path, out: Path, err: Path, timeout: float) -> int:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            request = {"argv": argv, "env": env, "cwd": str(cwd), "out": str(out), "err": str(err)}
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            pid = json.loads(self.proc.stdout.readline())["pid"]
            timer = threading.Timer(timeout, lambda: _kill(pid))
            timer.start()
            try:
                status = json.loads(self.proc.stdout.readline())["status"]
            finally:
                timer.cancel()
        return status

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)  # as subprocess.run's timeout does
    except ProcessLookupError:
        pass


def child(request: dict) -> None:
    """In the forked child: become the script's process, then exit as it would (SystemExit leaves the server's loop)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for fd, path in ((1, request["out"]), (2, request["err"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd)
        os.close(f)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv = request["argv"]
    if os.path.basename(argv[0]).startswith("python") and argv[1:2] == ["-m"]:  # not a console script's Hydra -m
        # `python -m module args`: the module as __main__, the working directory first on sys.path and the module's
        # file in sys.argv[0] (run_module's alter_sys), as the interpreter's -m sets them.
        sys.argv = [argv[2], *argv[3:]]
        sys.path[0] = os.getcwd()
        sys.modules.pop(argv[2], None)  # a preloaded module runs as a fresh one does: not imported before __main__
        runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        sys.exit(0)
    sys.argv = argv
    sys.path[0] = os.path.dirname(sys.argv[0])  # a script's own directory, as the interpreter sets it (not tests/)
    # The script itself, as __main__ (what joblib's workers and Lightning look up), as `python script` runs it (an
    # installed console script calls sys.exit(main())).
    runpy.run_path(sys.argv[0], run_name="__main__")
    sys.exit(0)


def preload() -> str:
    """Import PRELOAD; return what the imports wrote to stderr (warnings), which a fresh process would print first."""
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+") as caught:
        os.dup2(caught.fileno(), 2)
        try:
            for name in PRELOAD:
                __import__(name)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        return caught.read()


def serve() -> None:
    out = sys.stdout
    try:
        preamble = preload()
    except Exception as err:  # the client raises it: a test fails with the import's error, not a hang
        print(json.dumps({"ready": False, "error": f"{type(err).__name__}: {err}"}), file=out, flush=True)
        return
    print(json.dumps({"ready": True, "stderr": preamble}), file=out, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(request)  # never returns
        print(json.dumps({"pid": pid}), file=out, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": status}), file=out, flush=True)


if __name__ == "__main__":
    serve()
