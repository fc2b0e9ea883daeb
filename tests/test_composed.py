"""A multirun composes each job's config once (reslab.run.composed): Hydra's sweeper and its basic launcher, which
would compose every job again, get copies of the configs the guard composed, equal to what they would compose."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from reslab.paths import CONF_DIR
from reslab.run import composed, sweep


@pytest.fixture()
def loader():
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def master(loader, *overrides):
    return loader.load_configuration("train", overrides=list(overrides), run_mode=RunMode.MULTIRUN)


def test_the_sweeper_and_the_launcher_get_copies_of_the_guards_configs_without_composing(loader, monkeypatch):
    config = master(loader, "experiment=depth", "profile=smoke", "model.depth=8,14", "seed=0")
    jobs = [(job, loader.load_sweep_config(config, job)) for job in sweep.job_overrides(config)]
    fresh = [OmegaConf.to_container(cfg, resolve=False) for _, cfg in jobs]
    composed.reuse(loader, config, jobs)
    with open_dict(jobs[0][1]):
        jobs[0][1].label_suffix = "x"  # the guard names its jobs after handing them over: the copies stay as composed

    calls = []
    compose = type(loader).load_configuration
    monkeypatch.setattr(type(loader), "load_configuration", lambda *a, **k: calls.append(a) or compose(*a, **k))
    for _ in ("sweeper", "launcher"):
        for (job, cfg), want in zip(jobs, fresh):
            got = loader.load_sweep_config(config, list(job))
            assert got is not cfg and OmegaConf.to_container(got, resolve=False) == want
            with open_dict(got):
                got.hydra.job.num = 99  # as the launcher does: no later copy sees it
    assert calls == [], "no job was composed again"

    loader.load_sweep_config(master(loader, "experiment=depth", "profile=smoke"), list(jobs[0][0]))
    loader.load_sweep_config(config, ["experiment=depth", "profile=smoke", "model.depth=20"])
    assert len(calls) == 3, "another master config (composed itself, then its job) or another job: composed as before"

    composed.forget(loader)
    loader.load_sweep_config(config, list(jobs[0][0]))
    assert len(calls) == 4


def test_only_a_launcher_that_runs_the_jobs_in_this_process_reuses_them(loader):
    assert composed.launches_here(master(loader, "profile=smoke"))
    assert not composed.launches_here(master(loader, "profile=smoke", "hydra/launcher=joblib"))
    assert not composed.launches_here(master(loader, "profile=smoke", "hydra/launcher=slurm"))
