"""`reslab-train`: one run (or, with -m, a Hydra multirun) from config to runs/<study>/.../result.json."""

from __future__ import annotations

import gc
import logging
import math
import sys
import time
import warnings
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from reslab import io, options
from reslab.data import load_cifar10
from reslab.data.loader import Normalizer, split_arrays
from reslab.data.source import folder_fingerprint, md5sum, resolve
from reslab.errors import Interrupted, ReslabError
from reslab.models import build_model
from reslab.paths import CONF_DIR
from reslab.run import distributed, ladder, phases, runinfo, stopping, validate
from reslab.run.assembly import Loaders, Probes, finish
from reslab.run.context import RunContext
from reslab.run.guard import recorded
from reslab.run.lock import lock_path, run_lock
from reslab.summary import count_flops, count_params
from reslab.tracking.logger import log_result, wandb_run
from reslab.training.device import pick_device, pick_precision, set_threads
from reslab.training.recipe import Recipe
from reslab.training.trainer import make_trainer

log = logging.getLogger("reslab")


def quiet_lightning() -> None:
    # Lightning sets its loggers to INFO when imported; its banners would bury the progress lines.
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)


warnings.filterwarnings("ignore", ".*LeafSpec.*")
warnings.filterwarnings("ignore", ".*litlogger.*")
# reslab starts a run's processes itself (reslab.run.distributed); on a machine with SLURM installed Lightning would ask
# for srun anyway.
warnings.filterwarnings("ignore", ".*The `srun` command is available on your system but is not used.*")


def data_checksum(cfg: DictConfig) -> str:
    path = resolve(cfg.data.source, Path(cfg.data.cache_dir), cfg.data.download)
    return folder_fingerprint(path) if path.is_dir() else md5sum(path)


def total_steps(profile: DictConfig, steps_per_epoch: int) -> int:
    if profile.get("max_steps"):
        return int(profile.max_steps)
    return int(profile.epochs) * steps_per_epoch


def identify(cfg: DictConfig) -> tuple[runinfo.RunKey, str, str]:
    """The run's key on this machine, with the device and precision it trains with (sets torch's thread count,
    which is part of the key)."""
    key_of, device, precision = keyer(cfg)
    return runinfo.RunKey(key_of(cfg)), device, precision


def keyer(cfg: DictConfig):
    """(config -> key on this machine, device, precision): the key of this run and of its siblings
    (reslab.run.ladder)."""
    threads = set_threads(cfg)
    device = pick_device(cfg.device)
    precision = pick_precision(cfg.trainer.precision, device)
    checksum = data_checksum(cfg)
    return (lambda c: runinfo.RunKey.of(c, checksum, device, precision, threads).key), device, precision


def train(cfg: DictConfig) -> dict | None:
    """Train one model as configured; return its result (or the stored one if already done, or None if another
    process is training it). Nothing is written under paths.runs before the config and the data have been checked."""
    validate.check(cfg)
    phases.mark("validate")
    key_of, device, precision = keyer(cfg)
    run_key = runinfo.RunKey(key_of(cfg))
    phases.mark("run key (data checksum)")
    out = runinfo.run_dir(cfg)
    name = f"{runinfo.label(cfg)} s{cfg.seed}"
    probes = OmegaConf.to_container(cfg.probes, resolve=True)
    done = runinfo.finished(out, run_key, probes)
    if done is not None:
        print(f"[{name}] finished earlier ({out}/result.json, same config): skipped", flush=True)
        return done
    data = load_data(cfg)
    phases.mark("data")
    # One writer per run: a second sweep of the same study leaves this run to the process that holds it.
    with run_lock(out) as mine:
        if not mine:
            print(f"[{name}] another process is training {out} (it holds {lock_path(out)}): skipped", flush=True)
            return None
        done = runinfo.finished(out, run_key, probes) or runinfo.recover(out, run_key, probes)
        if done is not None:
            print(f"[{name}] finished by another process ({out}/result.json, same config): skipped", flush=True)
            return done
        work = runinfo.begin(out, run_key.key, probes)
        ladder.start(cfg, key_of, work, name)
        if distributed.uses_ddp(cfg):  # an unusable checkpoint is removed once, here: the ranks all resume or none
            from reslab.run.checkpoint import usable  # imports Lightning: not before a run trains

            usable(work / runinfo.CHECKPOINT)
        run = RunContext(cfg, run_key.key, device, precision, name, out, work)
        result = distributed.launch(fit_logged, load_data, run, data)
        aside = runinfo.commit(out, work)
    if aside is not None:
        print(f"[{name}] the earlier finished run of another config was kept as {aside}", flush=True)
    return result


def load_data(cfg: DictConfig) -> dict:
    """The run's training and eval tensors on the device; a profile that does not fit the data fails here."""
    arrays = load_cifar10(cfg.data.source, cfg.data.cache_dir, cfg.data.download)
    p = cfg.profile
    tx, ty, ex, ey, eval_split = split_arrays(
        arrays, cfg.data.split, p.get("train_subset"), p.get("eval_subset"), cfg.data.subset_seed
    )
    if len(tx) < p.batch_size:
        raise ReslabError(
            f"profile.batch_size={p.batch_size} is larger than the {len(tx)} training images; valid: 1 to {len(tx)}"
        )
    return {
        "arrays": arrays,
        "tx": tx,
        "ty": ty,
        "ex": ex,
        "ey": ey,
        "eval_split": eval_split,
        "norm": Normalizer.fit(tx, cfg.data.normalize),
    }


def fit_logged(run: RunContext, data: dict) -> dict | None:
    """fit() inside the run's W&B run (rank 0's only under DDP), in the process that trains; the W&B run is finished
    however fit ends: a failed job leaves no open run."""
    with wandb_run(run.cfg, run.name) as logger:
        return fit(run, data, logger)


def fit(run: RunContext, data: dict, logger=None) -> dict | None:
    """Train in `run.work` (the run's `.next` directory), resuming from its checkpoint if a killed attempt left one;
    write the outputs there, result.json last (rank 0). `run.out` is where the run will live once committed."""
    import lightning as L

    quiet_lightning()
    from reslab.run.checkpoint import usable
    from reslab.tracking.wandb_series import WandbSeries
    from reslab.training.module import Classifier

    cfg, work = run.cfg, run.work
    phases.mark("lock, logger, Lightning import")
    if distributed.is_rank_zero():  # under DDP only rank 0 writes (reslab.run.distributed)
        io.write_text(work / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
        io.write_json(work / "environment.json", runinfo.environment(run.device))
    phases.mark("config and environment written")

    L.seed_everything(int(cfg.seed), workers=False, verbose=False)
    model = build_model(cfg.model)  # built after seeding: the init depends on the seed only
    size = {"params": count_params(model), "flops": count_flops(model)}
    phases.mark("model (built, counted)")
    loaders = Loaders.of(run, data)
    recipe = Recipe.of(cfg, total_steps(cfg.profile, len(loaders.train)))
    module = Classifier(model, recipe)
    if loaders.channels_last:
        module = module.to(memory_format=torch.channels_last)
    probes = Probes.of(run, data, loaders, recipe.total_steps)
    probes.series = WandbSeries.for_run(cfg, logger, probes.recorder, probes.grad, probes.flow)
    resume = usable(work / runinfo.CHECKPOINT)
    phases.time_hooks(probes.callbacks())
    # Per-epoch evaluation of the whole eval set is costly on a CPU; profiles that draw curves with
    # the fixed-set probe turn it off (eval_every_epochs: null) and evaluate the full set once at the end.
    eval_every = int(cfg.profile.get("eval_every_epochs") or 0)
    trainer = make_trainer(
        cfg, run.device, run.precision, recipe.total_steps, len(loaders.train), eval_every, probes.callbacks(), logger
    )
    if resume is not None and trainer.is_global_zero:
        print(f"[{run.name}] resuming from {resume}", flush=True)
    phases.mark("set-up (loaders, probes, trainer)")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*Your `IterableDataset` has `__len__` defined.*")
        warnings.filterwarnings("ignore", ".*`validation_step` but have no `val_dataloader`.*")
        # Lightning cannot see that the Checkpointer restores the loader's position: its warning does not apply.
        warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended before the epoch ended.*")
        trainer.fit(
            module,
            train_dataloaders=loaders.train,
            val_dataloaders=loaders.eval if eval_every else None,
            ckpt_path=resume,
            weights_only=False,  # our own checkpoint: it holds RNG states, not only tensors
        )
    wall = time.perf_counter() - t0
    phases.mark("fit (training steps and the probes' hooks)")
    if not trainer.is_global_zero:  # DDP: training is done; rank 0 evaluates and writes the outputs
        return None
    result = finish(run, data, loaders, recipe, module, probes, trainer.global_step, wall, size)
    phases.write(work)
    log_result(logger, result)
    print(
        f"[{run.name}] {result['status']}: train err {fmt(result['train_error'])}, test err "
        f"{fmt(result['test_error'])}, {wall:.0f}s -> {run.out}",
        flush=True,
    )
    return result


def fmt(v) -> str:
    return f"{v:.2f}%" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def stop(err: Interrupted) -> None:
    """A run stopped by SIGINT/SIGTERM: one line, and the exit status a shell gives a process that signal ended."""
    print(f"reslab: {err}", file=sys.stderr, flush=True)
    sys.exit(128 + err.signum)


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
@recorded
def run(cfg: DictConfig) -> float | None:
    phases.begin_run()
    io.exit_cleanly_on_sigterm()  # temp files and locks are cleaned up on SIGTERM as on Ctrl-C
    with stopping.worker_run():  # in a joblib worker: stops with its sweep, never left behind (reslab.run.stopping)
        try:
            result = train(cfg)
        except Interrupted as err:
            stop(err)
    return result.get("test_error") if result else None


main = options.hydra_entry(run)  # the console script: a misspelt config-group name is one line
# The objects the imports made (torch, Lightning, torch._dynamo, sympy: about a million) live as long as the process.
# Out of the garbage collector's sight they cost nothing in its full collections during a run, nor at exit, where the
# interpreter's last collections took 0.8 s of a 5 s smoke run (the bench's 'commit and exit'). No number changes.
gc.freeze()
phases.mark("imports")  # the run's first phase: the interpreter's start and this module's imports

if __name__ == "__main__":
    main()
