# reslab: every target creates .venv on first use and reuses it afterwards.
#   make sweep-depth DATA=../shared/data/cifar10-jpeg.tar.gz JOBS=2
#   make sweep-depth LAUNCHER=slurm ARGS='hydra.launcher.partition=gpu'   (conf/hydra/launcher/slurm.yaml)
#   make test
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYS ?= python3.11
VENV       ?= .venv
PY         := $(VENV)/bin/python
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed

PROFILE ?= cpu
DATA    ?=
SEEDS   ?=
JOBS    ?= 1
LAUNCHER ?= local
DEVICE  ?= auto
ARGS    ?=
COST_ARGS ?=
STUDY   ?= depth

# Empty DATA means: the cache dir, then the official download (checksum checked).
DATA_ARG := $(if $(DATA),data.source=$(abspath $(DATA)),)
# Where a sweep's runs go: local (JOBS>1: that many side by side, Hydra's joblib launcher) or slurm (one job array,
# conf/hydra/launcher/slurm.yaml; JOBS>1 caps the runs at once, and each run has its job's CPUs to itself).
LAUNCH_local := $(if $(filter-out 1,$(JOBS)),hydra/launcher=joblib hydra.launcher.n_jobs=$(JOBS),)
LAUNCH_slurm := hydra/launcher=slurm $(if $(filter-out 1,$(JOBS)),hydra.launcher.array_parallelism=$(JOBS),)
$(if $(filter $(LAUNCHER),local slurm),,$(error LAUNCHER=$(LAUNCHER) is not valid; valid: local, slurm))
LAUNCH   := $(LAUNCH_$(LAUNCHER))
RUN_JOBS := $(if $(filter slurm,$(LAUNCHER)),1,$(JOBS))
COMMON   = profile=$(PROFILE) $(if $(SEEDS),seed=$(SEEDS),) jobs=$(RUN_JOBS) device=$(DEVICE) $(DATA_ARG) $(LAUNCH) $(ARGS)

.PHONY: help setup test test-fast lint format test-slurm pilot-depth sweep-depth pilot-shortcut sweep-shortcut pilot-block pilot-block-large pilot-descendants sweep-descendants pilot-head sweep-head sweep-block sweep-block-large sweep-block-followup sweep-shortcut-confirm pilot-budget sweep-budget sweep-budget-plain sweep-budget-step sweep-budget-zero-init sweep-zero-init cost-block reproduce report lesion grad-flow shattered thousand-layers thousand-layers-train mechanism bench summary notebooks dashboard wandb-sync wandb-dashboard clean

help:
	@echo "make sweep-depth  PROFILE=smoke|cpu|quick|paper DATA=<cifar10 source> SEEDS=0,1,2 JOBS=2"
	@echo "make sweep-shortcut, make sweep-block (same variables)   make grad-flow DATA=...   make report"
	@echo "make reproduce STUDY=depth [RUN=resnet-20-s1] (does this code compute the study's bytes? one run retrained and compared)"
	@echo "make bench (images/s, a run's fixed cost, whole sweeps: reports/bench/; a quiet machine, ~15 min)"
	@echo "make test (ruff, then pytest)   make test-fast (the unit layer)   make lint   make format   make test-slurm   make summary ARGS='model=plain model.depth=56'   make clean"
	@echo "make dashboard STUDY=depth PROFILE=cpu (offline, in the terminal)   make wandb-sync STUDY=...   make wandb-dashboard STUDY=..."
	@echo "make sweep-depth LAUNCHER=slurm ARGS='hydra.launcher.partition=gpu'   (conf/hydra/launcher/slurm.yaml)"

setup: $(STAMP)

# Reinstall only when the project's dependencies change; torch is large and stays put.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# Lint and format first (ruff, pyproject.toml [tool.ruff]): seconds, and a failing check names the file and line.
# Then the suite on every core (pytest-xdist): one worker per core, each pinned to its own (tests/conftest.py); a
# module's tests go to one worker (--dist loadscope), so a module's trained fixture is trained once; the longest
# modules go first (tests/conftest.py LONGEST_MODULES; --no-loadscope-reorder keeps that order rather than xdist's
# by test count), so both cores finish together. The slowest tests are listed at the end. TEST_WORKERS=0: one process.
TEST_WORKERS ?= $(shell nproc)
test: $(STAMP) lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15 tests

# The edit-test loop: the unit layer only (no test that trains or starts a process: tests/conftest.py SLOW_FIXTURES).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not slow" --durations=5 tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Rewrites the tree as `make lint` wants it (imports sorted, unused ones removed, formatted).
format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Opt-in, root: a single-node Slurm cluster on this machine (tests/slurm/cluster.sh installs Debian's slurm-wlm and
# munge if missing and stops what it started), a smoke sweep submitted to it through submitit, its report.
test-slurm: $(STAMP)
	RESLAB_SLURM=1 $(PY) -m pytest tests/test_slurm.py

sweep-depth: $(STAMP)
	$(BIN)/reslab-train -m experiment=depth $(COMMON)
	$(BIN)/reslab-report depth profile=$(PROFILE)

# The depth study's pilot (experiments/depth.md, 2026-11-25): another training subset (subset_seed=1),
# seed 100, depths 20 and 110, candidates name:lr:warm-up lr:warm-up steps:warm-up shape. D was chosen.
PILOT_CANDIDATES := lr0.05:0.05:0.005:40:constant lr0.1:0.1:0.01:40:constant warm100:0.05:0.005:100:constant \
                    lr0.025:0.025:0.0025:40:constant linwarm:0.025:0.0025:100:linear
pilot-depth: $(STAMP)
	@for c in $(PILOT_CANDIDATES); do IFS=: read -r name lr wlr wsteps shape <<< "$$c"; \
	  $(BIN)/reslab-train -m study=depth-pilot-$$name profile=cpu profile.lr=$$lr profile.warmup.lr=$$wlr \
	    profile.warmup.steps=$$wsteps profile.warmup.shape=$$shape data.subset_seed=1 seed=100 \
	    profile.eval_subset=2000 model=plain,resnet model.depth=20,110 jobs=$(RUN_JOBS) device=$(DEVICE) $(DATA_ARG) \
	    $(LAUNCH) $(ARGS) && $(BIN)/reslab-report depth name=depth-pilot-$$name || exit 1; done

# The budget study (experiments/budget.md, issue 24): budget ladders under the `budget` profile (full 50k/10k, WSD).
# In each study the longest rung trains first (the trunks); the other rungs then start from the checkpoints it kept.
BUDGET_COMMON = $(if $(SEEDS),seed=$(SEEDS),) jobs=$(RUN_JOBS) device=$(DEVICE) $(DATA_ARG) $(LAUNCH) $(ARGS)
# Its pilot: the paper's 45k/5k split, seed 150, ResNet-20/56, one study per candidate name:lr:warm-up steps:shape
# (from lr 0.0025), each with linear and 1-sqrt decays.
PILOT_BUDGET := constant-lr0.025:0.025:40:constant linear-lr0.025:0.025:400:linear \
                constant-lr0.05:0.05:40:constant linear-lr0.05:0.05:400:linear
pilot-budget: $(STAMP)
	@for c in $(PILOT_BUDGET); do IFS=: read -r name lr steps shape <<< "$$c"; \
	  set="experiment=budget-pilot study=budget-pilot-$$name profile=budget profile.lr=$$lr \
	       profile.warmup.steps=$$steps profile.warmup.shape=$$shape $(BUDGET_COMMON)"; \
	  $(BIN)/reslab-train -m $$set profile.max_steps=3200 && \
	  $(BIN)/reslab-train -m $$set profile.max_steps=800 && \
	  $(BIN)/reslab-train -m $$set profile.decay.shape=sqrt profile.max_steps=3200,800 || exit 1; done
	$(BIN)/reslab-report budget-pilot

sweep-budget: $(STAMP)
	$(BIN)/reslab-train -m experiment=budget profile=budget profile.max_steps=6400 $(BUDGET_COMMON)
	$(BIN)/reslab-train -m experiment=budget profile=budget profile.max_steps=3200,1600,800 $(BUDGET_COMMON)

sweep-budget-plain: $(STAMP)
	$(BIN)/reslab-train -m experiment=budget-plain profile=budget profile.max_steps=3200 $(BUDGET_COMMON)
	$(BIN)/reslab-train -m experiment=budget-plain profile=budget profile.max_steps=800 $(BUDGET_COMMON)

sweep-budget-step: $(STAMP)
	$(BIN)/reslab-train -m experiment=budget-step profile=budget-step $(BUDGET_COMMON)

# Arm 5 (experiments/budget.md): zero-initialised residual branches on the ladder's top rung, seeds 400-402.
sweep-budget-zero-init: $(STAMP)
	$(BIN)/reslab-train -m experiment=budget variant=zero-init profile=budget profile.max_steps=6400 $(BUDGET_COMMON)

# The initialisation control (cpu profile; experiments/budget.md).
sweep-zero-init: $(STAMP)
	$(BIN)/reslab-train -m experiment=zero-init $(COMMON)
	$(BIN)/reslab-report zero-init profile=$(PROFILE)

# One study in three multiruns (experiments/shortcut.md): the deeper arm first (its runs are the
# longest), every variant at depth 20, then the H1 pair's extra seeds.
sweep-shortcut: $(STAMP)
	$(BIN)/reslab-train -m experiment=shortcut-deep $(COMMON)
	$(BIN)/reslab-train -m experiment=shortcut $(COMMON)
	$(BIN)/reslab-train -m experiment=shortcut-h1 $(COMMON)
	$(BIN)/reslab-report shortcut profile=$(PROFILE)

# The shortcut study's fresh-seed confirmation of H1 and H3 (experiments/shortcut.md, amendment of 2026-12-03): the
# deeper arm first (its runs are the longest), seeds 200-207, its own study and report (reports/shortcut-confirm/).
sweep-shortcut-confirm: $(STAMP)
	$(BIN)/reslab-train -m experiment=shortcut-confirm-h3 $(COMMON)
	$(BIN)/reslab-train -m experiment=shortcut-confirm-h1 $(COMMON)
	$(BIN)/reslab-report shortcut profile=$(PROFILE) name=shortcut-confirm

# The shortcut study's pilot (experiments/shortcut.md, 2026-11-25): another training subset
# (subset_seed=1), seeds 100 and 101, every variant at depth 20 and the H3 pair at depth 56.
PILOT_SHORTCUT = study=shortcut-pilot profile=$(PROFILE) data.subset_seed=1 seed=100,101 jobs=$(RUN_JOBS) \
                 device=$(DEVICE) $(DATA_ARG) $(LAUNCH) $(ARGS)
pilot-shortcut: $(STAMP)
	$(BIN)/reslab-train -m experiment=shortcut-deep variant=identity-A,preact $(PILOT_SHORTCUT)
	$(BIN)/reslab-train -m experiment=shortcut $(PILOT_SHORTCUT)
	$(BIN)/reslab-report shortcut profile=$(PROFILE) name=shortcut-pilot

# Question 3 (experiments/block.md): the main arm, 6 block families at ~0.27M parameters plus ResNet-56 (conf/block/,
# pinned from the budget matcher) x the plan's seeds; then the cost of each net, measured after the sweep and alone,
# so that no parallel run disturbs the timings (runs/block/<profile>/cost.csv); then the report.
sweep-block: $(STAMP)
	$(BIN)/reslab-train -m experiment=block $(COMMON)
	$(BIN)/reslab-cost study=block profile=$(PROFILE) device=$(DEVICE) $(COST_ARGS)
	$(BIN)/reslab-report block profile=$(PROFILE)

# The large arm: the other five families at ~0.85M (about 60 more minutes on 2 cores); same study and report.
sweep-block-large: $(STAMP)
	$(BIN)/reslab-train -m experiment=block-large $(COMMON)
	$(BIN)/reslab-cost study=block profile=$(PROFILE) device=$(DEVICE) $(COST_ARGS)
	$(BIN)/reslab-report block profile=$(PROFILE)

# Claim (a)'s follow-up (experiments/block.md, amendment of 2026-11-30): the A2/A1 nets on seven fresh seeds, its own
# study and report (reports/block-followup/), about 55 min on 2 cores.
sweep-block-followup: $(STAMP)
	$(BIN)/reslab-train -m experiment=block-followup $(COMMON)
	$(BIN)/reslab-cost study=block-followup profile=$(PROFILE) device=$(DEVICE) $(COST_ARGS)
	$(BIN)/reslab-report block profile=$(PROFILE) name=block-followup

# The cost step alone (e.g. again on another device: DEVICE=cuda); COST_ARGS='cost.repeats=5 ...' (conf/cost.yaml).
cost-block: $(STAMP)
	$(BIN)/reslab-cost study=block profile=$(PROFILE) device=$(DEVICE) $(COST_ARGS)
	$(BIN)/reslab-report block profile=$(PROFILE)

# The block study's pilot (experiments/block.md): another training subset (subset_seed=1), seeds 100 and 101,
# every net of the study; its cost too (the time the cost step takes, and the spread of its repeats).
PILOT_BLOCK = study=block-pilot profile=$(PROFILE) data.subset_seed=1 seed=100,101 jobs=$(RUN_JOBS) device=$(DEVICE) \
              $(DATA_ARG) $(LAUNCH) $(ARGS)
pilot-block: $(STAMP)
	$(BIN)/reslab-train -m experiment=block $(PILOT_BLOCK)
	$(BIN)/reslab-cost study=block-pilot profile=$(PROFILE) device=$(DEVICE) $(COST_ARGS)
	$(BIN)/reslab-report block profile=$(PROFILE) name=block-pilot

# ResNet's descendants (issue 26 item 4; experiments/descendants.md): the pilot on another training subset and seeds.
pilot-descendants: $(STAMP)
	$(BIN)/reslab-train -m experiment=descendants study=descendants-pilot profile=$(PROFILE) data.subset_seed=1 \
	  seed=600,601 jobs=$(RUN_JOBS) device=$(DEVICE) $(DATA_ARG) $(LAUNCH) $(ARGS)
	$(BIN)/reslab-report block profile=$(PROFILE) name=descendants-pilot

# GAP vs flatten (issue 26 item 2; experiments/head.md): the pilot on another training subset and seeds, then the
# confirmatory sweep of the plan's seeds; the head report (verdicts on parameters, overfitting and input size).
# Its second part (experiments/head.md, 2026-12-05): the flatten head underfit at the cpu profile's lr, so the scaled
# flatten head (same function class, GAP-sized steps on the logits) on the same subset and seeds.
pilot-head: $(STAMP)
	$(BIN)/reslab-train -m experiment=head study=head-pilot profile=$(PROFILE) data.subset_seed=1 seed=500,501 \
	  jobs=$(RUN_JOBS) device=$(DEVICE) $(DATA_ARG) $(LAUNCH) $(ARGS)
	$(BIN)/reslab-train -m experiment=head study=head-pilot profile=$(PROFILE) data.subset_seed=1 seed=500,501 \
	  +model.head=flatten-scaled jobs=$(RUN_JOBS) device=$(DEVICE) $(DATA_ARG) $(LAUNCH) $(ARGS)
	$(PY) -m reslab.analysis.input_sizes --write runs/head-pilot/$(PROFILE) $(if $(DATA),data=$(abspath $(DATA)),)
	$(BIN)/reslab-report head profile=$(PROFILE) name=head-pilot

# Its confirmatory run (the plan's fresh seeds, conf/experiment/descendants.yaml), the cost step alone, the report.
sweep-descendants: $(STAMP)
	$(BIN)/reslab-train -m experiment=descendants $(COMMON)
	$(BIN)/reslab-cost study=descendants profile=$(PROFILE) device=$(DEVICE) $(COST_ARGS)
	$(BIN)/reslab-report descendants profile=$(PROFILE)

# Its confirmatory run (experiments/head.md, plan of 2026-12-05: 8 fresh seeds) and the head report.
sweep-head: $(STAMP)
	$(BIN)/reslab-train -m experiment=head $(COMMON)
	$(PY) -m reslab.analysis.input_sizes --write runs/head/$(PROFILE) $(if $(DATA),data=$(abspath $(DATA)),)
	$(BIN)/reslab-report head profile=$(PROFILE)

# The large arm's nets in the same pilot (same subset and seeds), before the large arm's confirmatory run.
pilot-block-large: $(STAMP)
	$(BIN)/reslab-train -m experiment=block-large $(PILOT_BLOCK)
	$(BIN)/reslab-cost study=block-pilot profile=$(PROFILE) device=$(DEVICE) $(COST_ARGS)
	$(BIN)/reslab-report block profile=$(PROFILE) name=block-pilot

# Does this code compute a study's numbers? One of its runs retrained from its config.yaml in a scratch directory and
# compared bit for bit (reslab.reproduce; RUN=<run dir name> picks it, else the cheapest), then the study's report,
# which states the outcome. The report kind is the study's first word (shortcut-confirm -> shortcut).
RUN ?=
reproduce: $(STAMP)
	$(BIN)/reslab-reproduce $(STUDY) profile=$(PROFILE) $(if $(RUN),run=$(RUN),)
	$(BIN)/reslab-report $(firstword $(subst -, ,$(STUDY))) profile=$(PROFILE) name=$(STUDY)

report: $(STAMP)
	$(BIN)/reslab-report depth profile=$(PROFILE)
	@if [ -d runs/shortcut/$(PROFILE) ]; then $(BIN)/reslab-report shortcut profile=$(PROFILE); fi
	@if [ -d runs/block/$(PROFILE) ]; then $(BIN)/reslab-report block profile=$(PROFILE); fi
	@if [ -d runs/shortcut-confirm/$(PROFILE) ]; then $(BIN)/reslab-report shortcut profile=$(PROFILE) name=shortcut-confirm; fi
	$(BIN)/reslab-report convergence name=depth profile=$(PROFILE)
	@if [ -d runs/budget/budget ]; then $(BIN)/reslab-report budget && $(BIN)/reslab-report convergence name=budget profile=budget; fi
	@if ls -d runs/budget-pilot-*/budget >/dev/null 2>&1; then $(BIN)/reslab-report budget-pilot; fi
	@if [ -d runs/zero-init/$(PROFILE) ]; then $(BIN)/reslab-report zero-init profile=$(PROFILE); fi

grad-flow: $(STAMP)
	$(BIN)/reslab-gradflow device=$(DEVICE) $(DATA_ARG) $(ARGS)
	$(BIN)/reslab-report depth profile=$(PROFILE)

# The lesion study (experiments/lesion.md; Veit et al. 2016) on the budget study's rung of LESION_STEPS steps: delete
# blocks of the trained nets (inference only), then reports/lesion/. Each run's lesion files are written once.
LESION_STEPS ?= 3200
lesion: $(STAMP)
	$(BIN)/python -m reslab.analysis.lesion_run $(wildcard runs/budget/budget/*-steps$(LESION_STEPS)-s[0-9]*) \
	  $(if $(DATA),data=$(abspath $(DATA)),) $(ARGS)
	$(BIN)/reslab-report lesion steps=$(LESION_STEPS)

# Issue 25's mechanism probes at initialisation, no data and no training, into reports/mechanism/: shattered gradients
# (Balduzzi et al. 2017; plain vs residual x depth 20/56/110 x BN or not, minutes on a CPU) and ResNet-1202 and its
# plain twin in float32 (about 2 GB of memory and a minute or two per net on a CPU). ARGS='--help' lists the options.
shattered: $(STAMP)
	$(PY) -m reslab.analysis.shattered --device $(if $(filter auto,$(DEVICE)),cpu,$(DEVICE)) $(ARGS)

thousand-layers: $(STAMP)
	$(PY) -m reslab.analysis.thousand_layers --device $(if $(filter auto,$(DEVICE)),cpu,$(DEVICE)) $(ARGS)

# ResNet-1202 and plain-1202 trained for 200 steps at batch 16, 3 seeds (issue 25 item 7; experiments/thousand-layers.md):
# real data, so DATA is needed. Tens of minutes on 2 cores, nearly all of it ResNet-1202; an interrupted job resumes
# at the next run (runs/thousand-train/). `make mechanism` reads its files where they exist.
thousand-layers-train: $(STAMP)
	$(PY) -m reslab.analysis.thousand_train --data $(abspath $(or $(DATA),$(error DATA= is needed: a CIFAR-10 copy, e.g. ../shared/data/cifar10-jpeg.tar.gz))) \
	  --device $(if $(filter auto,$(DEVICE)),cpu,$(DEVICE)) $(ARGS)

# Issue 25's pieces tied together: the two probes at initialisation, then the depth report (its mechanism paragraph)
# and reports/mechanism/README.md, one computed verdict per seed claim from the files the measurements wrote (the
# lesion study's too, where `make lesion` has run). About 15 minutes on 2 cores, most of it ResNet-1202.
mechanism: shattered thousand-layers
	$(BIN)/reslab-report depth profile=$(PROFILE)
	$(PY) -m reslab.analysis.mechanism profile=$(PROFILE)

# Random CIFAR-shaped data (speed does not depend on the pixels): no DATA needed. ARGS='bench.steps=1 bench.repeats=1'
# checks that it runs; the figures need a machine where nothing else runs.
bench: $(STAMP)
	$(BIN)/reslab-bench device=$(DEVICE) $(ARGS)

summary: $(STAMP)
	$(BIN)/reslab-summary $(ARGS)

# notebooks/*.py (jupytext percent format) are the source, and what `make test` executes on smoke runs; this writes
# each as an .ipynb beside it (ignored by git), keeping the outputs of one that is already there.
notebooks: $(STAMP)
	$(BIN)/jupytext --update --to ipynb notebooks/*.py

# A study's offline W&B runs (group <study>/<profile>, found at any depth under the logger's dir): in W&B's terminal
# UI, offline; uploaded (explicit run paths); one saved W&B workspace. See conf/dashboard.yaml and reslab-wandb -h.
dashboard: $(STAMP)
	$(BIN)/reslab-wandb dashboard $(STUDY) profile=$(PROFILE)

wandb-sync: $(STAMP)
	$(BIN)/reslab-wandb sync $(STUDY) profile=$(PROFILE)

wandb-dashboard: $(STAMP)
	$(BIN)/reslab-wandb workspace $(STUDY) profile=$(PROFILE)

clean:
	rm -rf runs outputs multirun wandb .pytest_cache
	@echo "kept .venv and the decoded-data cache (.cache); remove them by hand if you want"
