"""A budget ladder: runs of one net and seed at several training budgets that pay for the longest budget once.

With warmup-stable-decay (reslab.training.schedule), a run of budget B has, until its decay starts at s(B), exactly the
lr of a
run of any budget B' >= B; its data order, augmentation and random states depend on the seed alone. So the run of
B' passes through the state the run of B has at s(B): if it keeps a checkpoint there, the run of B starts from that
checkpoint and trains only its decay, and it ends with the bytes it would have had if trained alone (a test checks
this). k budgets then cost the longest run plus k - 1 decays, not the sum of k runs.

`ladder.budgets` (conf/train.yaml) lists the rungs; a run's own budget is `profile.max_steps`, one of them. Every run
of a ladder keeps, in `<run>/ladder/`, its checkpoint at each rung's decay start that it passes at the stable lr
(its own included, so a later, larger rung continues from the top one instead of starting over). A run then starts
from the latest kept checkpoint it can use: found, in the study's folder among finished runs, by the key of the
stable phase (the run's identity without its budget and decay, kept in every ladder run's result), so rungs of other
decay shapes or fractions share one trunk too. None is needed: without one the run trains from step 0,
to the same bytes, at full cost. What a run started from is in its `ladder.json` and its result.

The kept checkpoints hold what a resumed run needs (weights, optimizer, lr schedule, loop counters, loader position,
random states, the epoch's running sums), not the probes' rows: a run that starts at step g records its probes and
curves from g on (probes do not change the numbers; a test checks that too). The ladder is not part of a run's
identity: it changes what a run costs, not what it computes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from reslab import io
from reslab.errors import ReslabError
from reslab.training.schedule import decay_start

KEPT = "ladder"  # in a run: the kept checkpoints, step-<g>.pt
RECORD = "ladder.json"  # in a run: its stable phase's key and where it started (null: from step 0)


def budgets(cfg: DictConfig) -> list[int]:
    ladder = cfg.get("ladder") or {}
    return sorted(int(b) for b in (ladder.get("budgets") or []))


def on(cfg: DictConfig) -> bool:
    return bool(budgets(cfg))


def check(cfg: DictConfig) -> None:
    """A ladder needs WSD, a budget in steps, and that budget among its rungs; one line naming what is wrong."""
    rungs = budgets(cfg)
    if not rungs:
        return
    if any(b < 1 for b in rungs):
        raise ReslabError(f"ladder.budgets={rungs} is not valid; valid: a list of step counts >= 1")
    p = cfg.profile
    if not p.get("decay"):
        raise ReslabError(
            f"ladder.budgets={rungs} needs a warmup-stable-decay profile (profile.decay); "
            f"profile {p.name!r} has none; valid: a profile with profile.decay, or ladder.budgets=[]"
        )
    if p.get("max_steps") not in rungs:
        raise ReslabError(
            f"profile.max_steps={p.get('max_steps')!r} is not a rung of ladder.budgets={rungs}; "
            f"valid: one of {', '.join(map(str, rungs))}"
        )


def fraction(cfg: DictConfig) -> float:
    return float(cfg.profile.decay.fraction)


def keep_steps(cfg: DictConfig) -> list[int]:
    """The rungs' decay starts this run passes at its stable lr (its own included): where it keeps a checkpoint."""
    if not on(cfg):
        return []
    own = decay_start(int(cfg.profile.max_steps), fraction(cfg))
    return sorted({s for s in (decay_start(b, fraction(cfg)) for b in budgets(cfg)) if 0 < s <= own})


def keep_paths(cfg: DictConfig, work: Path) -> dict[int, Path]:
    """step -> file for the Checkpointer; `{step}` becomes the step it is taken at (one later at an epoch's end)."""
    return {s: work / KEPT / "step-{step}.pt" for s in keep_steps(cfg)}


def stable(cfg: DictConfig) -> DictConfig:
    """This run's config without its budget and decay: what fixes its stable phase. Runs that share it are the same
    run, step for step, until the earlier of their decay starts, whatever their budgets, decay shapes or fractions."""
    other = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(other):
        other.profile.max_steps = None
        other.profile.decay = None
    return other


def kept(run: Path) -> dict[int, Path]:
    out = {}
    for f in (run / KEPT).glob("step-*.pt"):
        try:
            out[int(f.stem.split("-", 1)[1])] = f
        except ValueError:
            continue
    return out


def source(cfg: DictConfig, stable_key: str, here: Path) -> tuple[Path, int] | None:
    """(checkpoint, step) this run can start from: the latest one kept by a finished run in `here` with this run's
    stable phase (`stable_key`), at a step g where both have had the stable lr all along: g <= s + 1 for both decay
    starts s (the first decay step still has the stable lr; the lr of the steps after g comes from this run's own
    schedule, reslab.training.module). None if there is none: the run trains from step 0."""
    if not on(cfg):
        return None
    last_ok = decay_start(int(cfg.profile.max_steps), fraction(cfg)) + 1
    best = None
    for result in sorted(here.glob("*/result.json")):
        try:
            stored = io.read_json(result)
        except (OSError, ValueError):
            continue
        if (stored.get("ladder") or {}).get("stable_key") != stable_key or stored.get("status") != "ok":
            continue
        theirs = (stored.get("lr_decay") or {}).get("start_step", -1) + 1
        for step, path in kept(result.parent).items():
            if step <= min(last_ok, theirs) and (best is None or step > best[1]):
                best = (path, step)
    return best


def seed(src: Path, checkpoint: Path) -> None:
    """Write the kept checkpoint `src` as the run's resume point, without the probes' and recorder's rows (the run
    records its own from its start on)."""
    from reslab.run.checkpoint import Checkpointer

    state = torch.load(src, map_location="cpu", weights_only=False)
    state["callbacks"] = {
        k: v for k, v in state.get("callbacks", {}).items() if k.startswith(Checkpointer.__qualname__)
    }
    io.save_torch(checkpoint, state)


def record(work: Path, stable_key: str, start: tuple[Path, int] | None, runs: Path) -> dict:
    src = None
    if start is not None:
        path, step = start
        src = {"from": str(path.relative_to(runs)) if path.is_relative_to(runs) else str(path), "step": int(step)}
    rec = {"stable_key": stable_key, "start": src}
    io.write_json(work / RECORD, rec)
    return rec


def recorded(run: Path) -> dict | None:
    f = run / RECORD
    return io.read_json(f) if f.is_file() else None


def started(run: Path) -> dict | None:
    return (recorded(run) or {}).get("start")


def start(cfg: DictConfig, key_of: Callable[[DictConfig], str], work: Path, name: str) -> None:
    """A fresh attempt of a ladder's run starts from the latest checkpoint another rung kept for it; a resumed
    attempt keeps the record its first attempt wrote. `key_of`: config -> its run key on this machine."""
    from reslab.run import runinfo

    if not on(cfg) or ((work / runinfo.CHECKPOINT).is_file() and recorded(work)):
        return
    stable_key = key_of(stable(cfg))
    found = source(cfg, stable_key, runinfo.run_dir(cfg).parent)
    if found is not None:
        seed(found[0], work / runinfo.CHECKPOINT)
        print(f"[{name}] budget ladder: starts at step {found[1]} from {found[0]}", flush=True)
    record(work, stable_key, found, Path(cfg.paths.runs))
