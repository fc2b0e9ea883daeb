"""One run on several devices (`trainer.devices`): Lightning's DDP, in processes that reslab starts itself.

The recipe does not change with the device count: the global batch is `profile.batch_size`, and each of the
`devices` ranks trains on its contiguous 1/devices of every batch of the one-device run, with that batch's
crops and flips (reslab.data.loader). DDP averages the ranks' gradients of their mean losses, which for equal
shares is the gradient of the whole batch's mean loss, so the learning rate stays as it is. What does change:
BatchNorm normalises each rank's share (batch/devices images) unless `trainer.sync_batchnorm` (CUDA only:
torch's SyncBatchNorm has no CPU kernel), and sums are added in another order. A net without BN trains the
one-device run up to float rounding (tests/test_ddp.py); a net with BN trains a neighbouring recipe, and
runinfo keeps it apart (`identity`).

Who does what:
- the Hydra job (the process `reslab-train` started) checks the config, holds the run lock and owns
  `<run>.next` (runinfo.begin/commit), exactly as for one device; it starts one process per device, waits for
  them, forwards SIGINT/SIGTERM to them, and commits what rank 0 wrote;
- every rank runs train.fit whole, with Lightning's plain `ddp` strategy on processes it did not create
  (LOCAL_RANK set: Lightning launches nothing); the per-epoch sums are added over the ranks
  (reslab.training.module), and only rank 0 writes files and prints progress. After training the other ranks end and
  rank 0 evaluates the full eval set and writes the outputs, as a one-device run does.

Why not Lightning's own launchers:
- `ddp` (popen) starts ranks 1.. by re-running the command line. Under a Hydra multirun (`-m`) each re-run is a
  whole sweep of its own (Lightning's Hydra handling only rewrites hydra.run.dir, which a multirun ignores),
  and each rank would take the run lock and clear `<run>.next` while rank 0 trains there.
- `ddp_spawn` runs only trainer.fit in its workers and hands back rank 0's weights: the recorder's rows, the
  probes' rows, global_step and the divergence flag stay in the workers, so everything train.fit does after
  training (the final evaluation, result.json) would have to move into callbacks.
- multiprocessing's `spawn` (ddp_spawn's, or one's own) re-imports the command's __main__ in every worker and,
  in a job of Hydra's joblib launcher, passes the workers loky's start method, which they cannot find.
Here each rank is a fresh interpreter that runs RANK_ENTRY on a pickled setup (the config, the job's Hydra
config, the run's arguments): nothing is re-run, Hydra is not involved, and any launcher (basic, joblib) can
run the job. The ranks report how they ended in files the command reads (`supervise`, `raise_outcome`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
import time
import traceback
from pathlib import Path

from omegaconf import DictConfig

from reslab import io
from reslab.errors import Interrupted, ReslabError
from reslab.run.context import RunContext
from reslab.run.stopping import on_parent_death
from reslab.training.trainer import devices, uses_ddp  # noqa: F401 (train.py asks here)

STRATEGIES = ("auto", "ddp")  # auto: one process for one device, DDP for more; ddp: DDP even for one (a world of one)
GRACE_SECONDS = 10  # a failed rank's peers get this long to stop on SIGTERM before they are killed


class RankFailed(RuntimeError):
    """A rank of a multi-device run ended with an error (its traceback is printed by the rank)."""


def identity(cfg: DictConfig) -> dict:
    """What the device setup adds to a run's identity: nothing for one device, so the keys of the runs trained
    before these knobs existed stand; the knobs themselves otherwise (BN over a share of the batch, the order
    of the sums)."""
    if not uses_ddp(cfg) and not cfg.trainer.get("sync_batchnorm", False):
        return {}
    return {
        "devices": devices(cfg),
        "strategy": str(cfg.trainer.get("strategy", "auto")),
        "sync_batchnorm": bool(cfg.trainer.get("sync_batchnorm", False)),
    }


def describe(cfg: DictConfig) -> dict:
    """The device setup, for result.json."""
    return {
        "devices": devices(cfg),
        "strategy": "ddp" if uses_ddp(cfg) else "single_device",
        "sync_batchnorm": bool(cfg.trainer.get("sync_batchnorm", False)),
    }


def check(cfg: DictConfig, device: str | None) -> None:
    """The device knobs against the batch size and the machine (device None: not this machine, e.g. a cluster
    submission host, where only the config is checked); one line for the first problem."""
    n, batch = devices(cfg), int(cfg.profile.batch_size)
    if batch % n:
        fits = [d for d in range(1, batch + 1) if batch % d == 0]
        raise ReslabError(
            f"trainer.devices={n} does not divide profile.batch_size={batch} (the global batch, shared "
            f"equally among the devices); valid: {', '.join(map(str, fits))}"
        )
    if device == "cuda":
        import torch

        have = torch.cuda.device_count()
        if n > have:
            raise ReslabError(f"trainer.devices={n} but this machine has {have} CUDA device(s); valid: 1 to {have}")
    elif (device or str(cfg.device)) == "cpu" and cfg.trainer.get("sync_batchnorm", False):
        raise ReslabError(
            "trainer.sync_batchnorm=true needs device=cuda (torch's SyncBatchNorm runs on GPUs only); valid here: false"
        )


def shard() -> dict:
    """This process's share of the training batches, as DeviceLoader's arguments (rank 0 of 1 outside DDP).
    Variables of reslab's own: RANK and WORLD_SIZE may describe a job that started this command."""
    return {"rank": int(os.environ.get("RESLAB_RANK", 0)), "world": int(os.environ.get("RESLAB_WORLD", 1))}


def is_rank_zero() -> bool:
    return shard()["rank"] == 0


def agreed_signal(trainer, signum: int | None) -> int | None:
    """The stop signal any rank received, on every rank (None if none did): the ranks must stop at the same step,
    or those that go on wait for ever in the next gradient all-reduce. One tiny all-reduce per step under DDP."""
    if trainer.world_size == 1:
        return signum
    import torch
    import torch.distributed as dist

    flag = torch.tensor([signum or 0], device=trainer.strategy.root_device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return int(flag.item()) or None


# -- the launcher ------------------------------------------------------------------------------------------------

RANK_ENTRY = "import sys; from reslab.run.distributed import rank_main; rank_main(sys.argv[1], int(sys.argv[2]))"


def launch(fit, load, run: RunContext, data: dict) -> dict:
    """fit(run, data) in this process for one device; else in one process per device, each loading the data itself
    with load(run.cfg) (the arrays are not shipped to the ranks), and the result that rank 0 wrote to `run.work`."""
    if not uses_ddp(run.cfg):
        return fit(run, data)
    import pickle
    import subprocess

    import torch

    world = devices(run.cfg)
    setup = {
        "threads": torch.get_num_threads(),
        "device": run.device,
        "hydra": hydra_config(),
        "fit": named(fit),
        "load": named(load),
        "run": run,
        "argv": sys.argv,
    }
    with tempfile.TemporaryDirectory(prefix="reslab-ranks-") as tmp:
        reports = Path(tmp)
        with open(reports / "setup.pkl", "wb") as fh:
            pickle.dump(setup, fh)
        env = rank_environment(world, setup["threads"])
        procs: list = []
        try:
            with forwarded_signals(procs) as caught:
                for rank in range(world):
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-c", RANK_ENTRY, str(reports), str(rank)],
                            env=env | {"RESLAB_RANK": str(rank), "LOCAL_RANK": str(rank)},
                        )
                    )
                ended = supervise(procs, reports)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        outcomes = {rank: read_report(reports, rank) for rank in range(world)}
    if all(p.returncode == 0 for p in procs):
        return io.read_json(run.work / "result.json")
    raise_outcome(procs, outcomes, ended, caught)


def named(fn) -> tuple[str, str]:
    """A function by its module's name, also when that module is running as __main__ (`python -m reslab.train`)."""
    module = fn.__module__
    if module == "__main__":
        module = sys.modules["__main__"].__spec__.name
    return module, fn.__qualname__


def by_name(ref: tuple[str, str]):
    import importlib

    return getattr(importlib.import_module(ref[0]), ref[1])


def rank_environment(world: int, threads: int) -> dict:
    """The ranks' environment: this one, the reslab it runs, and Lightning's variables for processes it did not
    create (LOCAL_RANK is added per rank)."""
    import reslab

    src = str(Path(reslab.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ) | {
        "PYTHONPATH": f"{src}{os.pathsep}{path}" if path else src,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "NODE_RANK": "0",
        "RESLAB_WORLD": str(world),
        "RESLAB_PARENT": str(os.getpid()),
        # Lightning sets OMP_NUM_THREADS (and the torch threads) to cores / ranks unless it is set: the thread count
        # is part of the run's identity, and reslab chose it.
        "OMP_NUM_THREADS": str(threads),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hydra_config() -> dict | None:
    """The job's Hydra config, for the ranks ('run i/N' in the progress lines, Hydra's resolvers); as plain
    containers: the launchers' structured configs do not always pickle (joblib's is loaded twice)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from omegaconf import OmegaConf

        return OmegaConf.to_container(HydraConfig.instance().cfg) if HydraConfig.initialized() else None
    except ImportError:
        return None


@contextlib.contextmanager
def forwarded_signals(procs: list):
    """SIGINT and SIGTERM sent to this process go to the ranks, which stop at the next step after saving a
    checkpoint (reslab.run.checkpoint); the signals caught are yielded."""
    caught: list[int] = []

    def forward(signum, frame):
        caught.append(signum)
        for p in procs:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signum)

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, forward)
        except ValueError:  # not the main thread: whoever owns it decides
            pass
    try:
        yield caught
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def supervise(procs: list, reports: Path) -> list[int]:
    """Wait for every rank to end; return the ranks in the order they ended. A rank that fails leaves the others
    waiting for it in their next collective: they are stopped (SIGTERM, then SIGKILL after GRACE_SECONDS). A rank
    stopped by a signal is not a failure: the others stop at the same step (agreed_signal)."""
    ended: list[int] = []
    failed_at = None
    while len(ended) < len(procs):
        time.sleep(0.2)
        for rank, p in enumerate(procs):
            if rank in ended or p.poll() is None:
                continue
            ended.append(rank)
            stopped = (read_report(reports, rank) or {}).get("kind") in ("interrupted", "signal")
            if p.returncode != 0 and not stopped and failed_at is None:
                failed_at = time.monotonic()
                for q in procs:
                    if q.poll() is None:
                        q.terminate()
        if failed_at is not None and time.monotonic() - failed_at > GRACE_SECONDS:
            for q in procs:
                if q.poll() is None:
                    q.kill()
    return ended


def read_report(reports: Path, rank: int) -> dict | None:
    try:
        return io.read_json(reports / f"rank{rank}.json")
    except (OSError, ValueError):
        return None


def raise_outcome(procs: list, outcomes: dict, ended: list[int], caught: list[int]):
    """The failure of a multi-device run as the one-device run would raise it."""
    for rank in sorted(outcomes, key=lambda r: r != 0):  # rank 0 first: its report names the checkpoint it saved
        o = outcomes[rank] or {}
        if o.get("kind") == "interrupted":
            raise Interrupted(o["signum"], o["step"], Path(o["path"]))
    if caught:  # stopped before training started (or after it ended): the signal's usual effect, here
        signal.raise_signal(caught[0])
    first = next((r for r in ended if procs[r].returncode != 0), ended[-1])
    o = outcomes[first] or {}
    if o.get("kind") == "reslab":
        raise ReslabError(o["message"])
    if o.get("kind") == "signal":
        signal.raise_signal(o["signum"])
    what = o.get("message") or exit_reason(procs[first].returncode)
    raise RankFailed(f"rank {first} of {len(procs)} failed: {what}")


def exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


# -- a rank ----------------------------------------------------------------------------------------------------


def rank_main(reports: str, rank: int) -> None:
    """One rank (a fresh interpreter, RANK_ENTRY): the job's Hydra config and thread count, then train.fit whole;
    its outcome goes to `reports`/rank<r>.json for the command to read."""
    die_with_parent(int(os.environ["RESLAB_PARENT"]))
    io.exit_cleanly_on_sigterm()
    reports = Path(reports)
    outcome: dict = {"kind": "ok"}
    try:
        import pickle
        import warnings

        import torch

        with open(reports / "setup.pkl", "rb") as fh:
            setup = pickle.load(fh)
        sys.argv = setup["argv"]  # the command's, as environment.json records it
        torch.set_num_threads(setup["threads"])
        if setup["hydra"] is not None:
            from hydra.core.hydra_config import HydraConfig
            from omegaconf import OmegaConf

            HydraConfig.instance().cfg = OmegaConf.create(setup["hydra"])
        if setup["device"] == "cuda":
            torch.cuda.set_device(rank)
        # The per-epoch numbers are added over the ranks before they are logged (reslab.training.module).
        warnings.filterwarnings("ignore", ".*sync_dist=True.*")
        run = setup["run"]
        by_name(setup["fit"])(run, by_name(setup["load"])(run.cfg))
    except Interrupted as err:
        outcome = {"kind": "interrupted", "signum": err.signum, "step": err.step, "path": str(err.path)}
    except ReslabError as err:
        outcome = {"kind": "reslab", "message": str(err)}
    except KeyboardInterrupt:
        outcome = {"kind": "signal", "signum": int(signal.SIGINT)}
    except io.Terminated:
        outcome = {"kind": "signal", "signum": int(signal.SIGTERM)}
    except BaseException as err:
        traceback.print_exc()
        outcome = {"kind": "error", "message": f"{type(err).__name__}: {err} (rank {rank}'s traceback is above)"}
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    io.write_json(reports / f"rank{rank}.json", outcome)
    sys.stdout.flush()
    sys.exit(0 if outcome["kind"] == "ok" else 1)


def die_with_parent(parent: int) -> None:
    """End this rank when the command that started it dies, however it dies (SIGKILL included): its run lock is
    gone with it, and another process may take the run over."""
    on_parent_death(signal.SIGKILL)  # where it cannot, an orphaned rank ends at its next collective's timeout
    if os.getppid() != parent:  # it died before the call above
        os._exit(1)
