"""What a net costs is measured, not guessed: exact parameters and FLOPs, images/s from timed steps after
untimed warm-up steps, and the memory a training step adds, measured where earlier allocations cannot hide
it. Tiny nets and one or two timed steps: these check the measurement, not any speed."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from reslab.bench import cost
from reslab.errors import ReslabError
from reslab.models import build_model
from reslab.paths import CONF_DIR
from reslab.summary import count_flops, count_params

TINY = {"name": "resnet", "depth": 8, "widths": [4, 8, 16]}
SMALL = {"name": "resnet", "depth": 8, "widths": [8, 16, 32]}
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_cost_of_a_net_counts_its_parameters_and_flops_exactly():
    got = cost.measure(TINY, CPU, batch_size=4, warmup=1, steps=1, memory_batch=None)
    assert got["params"] == count_params(build_model(TINY))
    assert got["flops"] == count_flops(build_model(TINY)) > 0
    assert got["train_images_per_s"] > 0 and got["infer_images_per_s"] > 0
    assert (got["batch_size"], got["warmup_steps"], got["timed_steps"], got["threads"]) == (4, 1, 1, 1)
    assert "peak_memory_bytes" not in got, "memory_batch=None skips the memory probe"


def test_only_the_timed_steps_set_the_throughput(monkeypatch):
    # Warm-up steps are slow (as first steps are: allocation, kernel choice); the timed ones fast.
    calls = []

    def step(*args):
        calls.append(len(calls))
        time.sleep(0.3 if len(calls) <= 2 else 0.01)

    monkeypatch.setattr(cost, "train_step", step)
    got = cost.throughput(build_model(TINY), CPU, batch_size=10, warmup=2, steps=3)
    assert len(calls) == 2 + 3, "warm-up steps run, then the timed ones"
    assert got["train_images_per_s"] > 10 / 0.1, "the 0.3 s warm-up steps are not in the timing"


def test_a_training_step_updates_the_weights_with_the_runs_optimizer():
    model = build_model(TINY)
    before = [p.detach().clone() for p in model.parameters()]
    opt = cost.optimizer(model, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4})
    x, y = cost.batch(4, CPU, channels_last=False)
    cost.train_step(model, opt, x, y, None)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    assert all(opt.state[p]["momentum_buffer"] is not None for p in model.parameters())


TINY_DENSE = {"name": "densenet", "depth": 10, "growth_rate": 4, "bottleneck": True, "compression": 0.5}


def test_a_training_steps_time_is_split_into_conv_bn_relu_concatenation_and_the_rest():
    res = cost.time_shares(build_model(TINY), CPU, batch_size=4, steps=1)
    dense = cost.time_shares(build_model(TINY_DENSE), CPU, batch_size=4, steps=1)
    for got in (res, dense):
        assert sum(got[k] for k in cost.SHARE_COLUMNS) == pytest.approx(1.0)
        assert min(got["share_conv"], got["share_bn"], got["share_relu"]) > 0 and got["profiled_steps"] == 1
    assert res["share_cat"] == 0, "a ResNet concatenates nothing"
    assert dense["share_cat"] > 0, "a DenseNet concatenates in every dense layer"


@pytest.mark.parametrize(
    "name, group",
    [
        ("aten::mkldnn_convolution", "conv"),
        ("aten::convolution_backward", "conv"),
        ("aten::_slow_conv2d_forward", "conv"),
        ("aten::native_batch_norm_backward", "bn"),
        ("autograd::engine::evaluate_function: NativeBatchNormBackward0", "bn"),
        ("aten::clamp_min", "relu"),
        ("aten::threshold_backward", "relu"),
        ("aten::relu_", "relu"),
        ("aten::cat", "cat"),
        ("autograd::engine::evaluate_function: CatBackward0", "cat"),
        ("aten::add", None),
        ("aten::addmm", None),
        ("aten::avg_pool2d", None),
        ("aten::empty", None),
    ],
)
def test_operators_fall_in_their_group(name, group):
    assert cost.op_group(name) == group


def test_an_operator_without_a_group_counts_for_its_nearest_grouped_ancestor():
    class Ev:  # the fields of torch.autograd.profiler_util.FunctionEvent that group_shares reads
        def __init__(self, name, us, parent=None):
            self.name, self.self_cpu_time_total, self.cpu_parent = name, us, parent

    conv = Ev("aten::mkldnn_convolution", 60.0)
    events = [conv, Ev("aten::empty", 20.0, conv), Ev("aten::add", 20.0)]
    got = cost.group_shares(events)
    assert got["share_conv"] == pytest.approx(0.8) and got["share_other"] == pytest.approx(0.2)


def test_the_flop_count_holds_convolutions_and_matrix_products_only():
    # The block report states what count_flops leaves out (BN, ReLU, pooling, additions, concatenation):
    # true only while torch's FLOP registry holds nothing but convolutions, matrix products and attention.
    from torch.utils.flop_counter import flop_registry

    kinds = ("conv", "mm", "attention", "flex_attention")
    assert flop_registry and all(any(k in str(op) for k in kinds) for op in flop_registry), sorted(
        map(str, flop_registry)
    )


@pytest.mark.slow
def test_cpu_peak_memory_is_measured_in_a_fresh_process_and_grows_with_the_batch():
    small = cost.peak_memory(SMALL, CPU, batch_size=8, threads=1)
    big = cost.peak_memory(SMALL, CPU, batch_size=256, threads=1)
    assert big["memory_method"].startswith("cpu:") and "fresh subprocess" in big["memory_method"]
    assert big["memory_exact"], "the peak mark is reset before the step (Linux), so the rise is the step's own"
    # At batch 256 the stem's output alone is 256 x 8 x 32 x 32 float32 = 8 MiB, and a step keeps several.
    assert big["peak_memory_bytes"] > 8 * 2**20
    assert big["peak_memory_bytes"] > small["peak_memory_bytes"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_peak_memory_is_the_rise_of_max_memory_allocated():
    got = cost.measure(SMALL, torch.device("cuda"), batch_size=32, warmup=1, steps=2, memory_batch=128)
    assert got["memory_method"].startswith("cuda:") and got["memory_exact"]
    # Activations of one step at batch 128: far more than the 8 MiB-per-batch-256 stem output halved.
    assert got["peak_memory_bytes"] > 4 * 2**20 and got["train_images_per_s"] > 0


def fake_run(root, label, model, seed=0, budget="0.27M"):
    """A finished run as reslab-cost reads it: result.json (label, entry) and config.yaml (model)."""
    d = root / "runs/block/smoke" / f"{label}-s{seed}"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"model": model}))
    (d / "result.json").write_text(
        json.dumps(
            {
                "label": label,
                "family": model["name"],
                "variant": {"name": label.rsplit("-", 1)[0], "family": model["name"], "budget": budget},
            }
        )
    )


COST = [
    "reslab-cost",  # as the Makefile runs it
    "study=block",
    "profile=smoke",
    "threads=1",
    "cost.batch_size=4",
    "cost.warmup_steps=1",
    "cost.steps=1",
    "cost.memory_batch=8",
]


def test_reslab_cost_measures_every_net_of_the_study_in_interleaved_repeats(cli, tmp_path):
    fake_run(tmp_path, "resnet-0.27M-8", TINY, seed=0)
    fake_run(tmp_path, "resnet-0.27M-8", TINY, seed=1)  # seeds of one net: measured once per repeat
    fake_run(tmp_path, "wide-0.27M-8", SMALL)
    cli(*COST, "cost.repeats=2")
    rows = pd.read_csv(tmp_path / "runs/block/smoke/cost.csv")
    assert list(zip(rows.repeat, rows.label)) == [
        (0, "resnet-0.27M-8"),
        (0, "wide-0.27M-8"),
        (1, "resnet-0.27M-8"),
        (1, "wide-0.27M-8"),
    ]
    assert set(rows.budget) == {"0.27M"} and set(rows.family) == {"resnet"}
    assert rows.set_index(["label", "repeat"]).params.unstack().nunique(axis=1).eq(1).all()
    # Memory is a count, measured once per net and carried on each of its rows.
    assert rows.peak_memory_bytes.notna().all() and rows.groupby("label").peak_memory_bytes.nunique().eq(1).all()
    assert {"device", "threads", "precision", "channels_last", "memory_method", "git_commit"} <= set(rows.columns)
    # The time shares too: profiled once per net (conf/cost.yaml: cost.profiled_steps), carried on each row.
    assert set(cost.SHARE_COLUMNS) <= set(rows.columns) and rows.share_conv.gt(0).all()
    assert rows.groupby("label").share_conv.nunique().eq(1).all() and set(rows.profiled_steps) == {2}


@pytest.mark.slow
def test_a_rerun_measures_nothing_again_unless_the_nets_or_settings_change(tmp_path, capsys):
    # In-process (the console script's path is the test above): what is checked is the rerun rule, so no step is
    # profiled (torch.profiler's start-up; the profiled shares are the test above's).
    def cost_run(*overrides) -> str:
        args = ("study=block", "cost.warmup_steps=1", "cost.memory_batch=8", "cost.profiled_steps=0", *overrides)
        cost.run(cost_cfg(tmp_path, *args))
        return capsys.readouterr().out

    fake_run(tmp_path, "resnet-0.27M-8", TINY)
    cost_run()
    csv = tmp_path / "runs/block/smoke/cost.csv"
    first = csv.read_bytes()
    assert "measured earlier" in cost_run() and csv.read_bytes() == first
    assert "measured earlier" not in cost_run("cost.force=true")  # forced: measured again
    assert "measured earlier" not in cost_run("cost.steps=2")  # other settings: measured again
    fake_run(tmp_path, "wide-0.27M-8", SMALL)
    assert "measured earlier" not in cost_run("cost.steps=2")  # a net added: all measured again
    assert set(pd.read_csv(csv).label) == {"resnet-0.27M-8", "wide-0.27M-8"}


def cost_cfg(tmp_path, *overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "cost",
            overrides=[
                f"paths.runs={tmp_path / 'runs'}",
                "profile=smoke",
                "threads=1",
                "cost.batch_size=4",
                "cost.warmup_steps=0",
                "cost.steps=1",
                *overrides,
            ],
        )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("cost.repeats=0",), "cost.repeats=0 must be >= 1"),
        (("cost.steps=0",), "cost.steps=0, cost.warmup_steps=0, cost.batch_size=4: need steps >= 1"),
        (("study=nothing",), "no finished runs under '{runs}/nothing/smoke' to measure"),
    ],
)
def test_bad_cost_settings_are_one_line_errors(tmp_path, overrides, message):
    # In-process: the console script turns a ReslabError into its one line (tests/test_cli.py checks that path).
    fake_run(tmp_path, "resnet-0.27M-8", TINY)
    with pytest.raises(ReslabError) as err:
        cost.run(cost_cfg(tmp_path, *overrides))
    assert message.format(runs=tmp_path / "runs") in str(err.value) and "\n" not in str(err.value)


def test_runs_of_one_net_with_different_models_are_refused(tmp_path):
    fake_run(tmp_path, "resnet-0.27M-8", TINY, seed=0)
    fake_run(tmp_path, "resnet-0.27M-8", SMALL, seed=1)
    with pytest.raises(ReslabError, match="runs of 'resnet-0.27M-8' .* have different model configs"):
        cost.study_nets(tmp_path / "runs", "block", "smoke")
