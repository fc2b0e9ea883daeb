"""The block study compares block types at matched parameter budgets: every net is the matcher's choice,
pinned, within ±10% of its budget and named by family and budget; bad input is one line; the report's
verdicts follow the plan's rules; and the whole study runs from `reslab-train -m experiment=block` to
`reslab-report block` on synthetic data."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import TINY
from reslab import options
from reslab.errors import ReslabError
from reslab.models import build_model
from reslab.models.budget import block_yaml, entry_name, match, parse_budget
from reslab.models.budget import main as budget_main
from reslab.paths import CONF_DIR
from reslab.report import block, paired, plots
from reslab.run import runinfo
from reslab.summary import count_params

ENTRIES = sorted(p.stem for p in (CONF_DIR / "block").glob("*.yaml"))
FAMILIES = ["resnet", "preact", "bottleneck", "densenet-bc", "vovnet", "vovnet-v2"]
# ResNet's descendants have entries too (tests/test_descendants.py), for a study of their own: not in these sweeps.
DESCENDANTS = ["wrn", "resnext", "ror", "dpn"]
STUDY_ENTRIES = [e for e in ENTRIES if e.rsplit("-", 1)[0] in FAMILIES]


def cfg(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


# The study's nets.


def test_the_two_arms_together_sweep_six_families_at_two_budgets_over_seeds_0_1_2():
    main = OmegaConf.load(CONF_DIR / "experiment" / "block.yaml").hydra.sweeper.params
    large = OmegaConf.load(CONF_DIR / "experiment" / "block-large.yaml").hydra.sweeper.params
    nets = main.block.split(",") + large.block.split(",")
    assert sorted(nets) == STUDY_ENTRIES and len(set(nets)) == len(nets)
    assert STUDY_ENTRIES == sorted(f"{f}-{b}" for f in FAMILIES for b in ("0.27M", "0.85M"))
    others = sorted(set(ENTRIES) - set(STUDY_ENTRIES))
    descendants = [f"{f}-{b}" for f in DESCENDANTS for b in ("0.27M", "0.85M")] + ["resnext-cardinality1-0.27M"]
    assert others == sorted(descendants), "not in these sweeps"
    # The main arm holds every net of the 0.27M budget and ResNet-56, claim (a)'s decisive comparator.
    assert set(main.block.split(",")) == {f"{f}-0.27M" for f in FAMILIES} | {"resnet-0.85M"}
    assert main.seed == large.seed == "0,1,2"
    assert cfg("experiment=block").profile.name == cfg("experiment=block-large").profile.name == "cpu"
    assert cfg("experiment=block").study == cfg("experiment=block-large").study == "block"


def test_the_pilot_is_a_study_of_its_own():
    assert cfg("experiment=block", "study=block-pilot").study == "block-pilot"


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_net_is_the_matchers_choice_pinned_within_10_percent(entry):
    c = cfg(f"block={entry}")
    v = c.variant
    fixed = OmegaConf.to_container(v.fixed) if v.get("fixed") else {}  # options held fixed: asked again
    m = match(v.family, v.budget, **fixed)
    pinned = OmegaConf.to_container(c.model, resolve=True)
    assert {k: pinned[k] for k in m.changed} == m.changed, "pinned = what the matcher chooses now"
    assert all(m.config.get(k, v) == v for k, v in pinned.items()), "and the rest is the family's YAML"
    assert (CONF_DIR / "block" / f"{entry}.yaml").read_text() == block_yaml(
        m,
        v.budget,
        " ".join(["reslab-budget", v.family, v.budget, *(f"{k}={x}" for k, x in fixed.items()), "--yaml"]),
        fixed,
    ), "the entry is the matcher's output, unedited"
    assert entry == entry_name(v.family, v.budget, fixed) == v.name
    with torch.device("meta"):
        params = count_params(build_model(c.model))
    assert params == v.params == m.params and abs(params / parse_budget(v.budget) - 1) <= 0.10


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_run_directory_names_family_and_budget(entry):
    c = cfg("experiment=block", f"block={entry}", "seed=1")
    name, budget = entry.rsplit("-", 1)
    assert runinfo.run_dir(c).name == f"{name}-{budget}-{c.model.depth}-s1"
    family = c.variant.family
    assert name.split("-")[: len(family.split("-"))] == family.split("-"), "the name starts with the family"
    assert runinfo.family(c) == family or c.model.name == family


# Bad input: one line, naming the value and what is valid.


def test_an_unknown_block_is_one_line_naming_the_valid_ones(cli):
    with pytest.raises(ReslabError, match="unknown block 'densnet-bc-0.27M'; valid choices: bottleneck-0.27M, "):
        options.check_config_groups(["-m", "experiment=block", "block=resnet-0.27M,densnet-bc-0.27M", "seed=0,1"])
    options.check_config_groups(
        ["block=resnet-0.27M", "hydra/launcher=joblib", "model.depth=20", "~variant", "block=choice(a,b)"]
    )  # not plain group names: left to Hydra
    proc = cli("reslab-train", "block=vovnet-0.5M", "logger=none", check=False)
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(err) == 1, proc.stderr
    assert err[0].startswith("reslab: error: unknown block 'vovnet-0.5M'; valid choices: ") and "vovnet-0.27M" in err[0]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (("block=densenet-bc-0.27M", "model.growth_rate=0"), "model.growth_rate=0 must be an integer >= 1"),
        (("block=densenet-bc-0.85M", "model.growth_rate=-12"), "model.growth_rate=-12 must be an integer >= 1"),
        (("block=vovnet-0.27M", "model.widths=[12,0,48]"), "model.widths=[12, 0, 48] is not a list of channel counts"),
        (("block=resnet-0.85M", "+model.widths=[16,32,-64]"), "model.widths=[16, 32, -64] is not a list"),
        (("block=vovnet-v2-0.27M", "model.stem_channels=0"), "model.stem_channels=0 must be an integer >= 1"),
    ],
)
def test_a_growth_rate_or_width_below_one_is_one_line(overrides, message):
    # reslab-train builds the model before it touches data: this is the error its one line carries.
    with pytest.raises(ReslabError) as err:
        build_model(cfg(*overrides).model)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "args, message",
    [
        (["densenet-bc", "1k"], "no densenet-bc configuration within +-10% of budget 1,000 parameters; reachable: "),
        (["vovnet-v2", "1e9"], "no vovnet-v2 configuration within +-10% of budget 1,000,000,000 parameters"),
        (["densenet", "0.27M"], "unknown family 'densenet'; valid choices: resnet, preact, bottleneck, densenet-bc"),
        (
            ["densenet-bc", "0.27M", "growth_rate=0"],
            "model.growth_rate=0 cannot be fixed: the matcher chooses depth, growth_rate",
        ),
        (["vovnet", "0.27M", "layers_per_module=0"], "model.layers_per_module=0 must be an integer >= 1"),
        (["resnet", "0.27M", "widths=[16,0,64]"], "model.widths=[16, 0, 64] cannot be fixed"),
    ],
)
def test_reslab_budget_bad_input_is_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        budget_main(args)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2 and len(err) == 1 and message in err[0], err


def test_reslab_budget_prints_the_choice_and_its_entry(capsys):
    budget_main(["densenet-bc", "0.85M"])
    assert "densenet-bc at 0.85M: depth=106 -> 849,190 parameters (-0.1%)" in capsys.readouterr().out
    budget_main(["densenet-bc", "0.27M", "--yaml"])
    assert capsys.readouterr().out == (CONF_DIR / "block" / "densenet-bc-0.27M.yaml").read_text()


# The report's rules, on made-up numbers.


def contrast(name, worse, better, diffs, base=20.0):
    c = paired.paired(
        name,
        "test_error",
        worse,
        better,
        {s: base + d for s, d in enumerate(diffs)},
        {s: base for s in range(len(diffs))},
    )
    paired.decide_family([c], "claims")
    return c


def nets(**flops_and_memory):
    return pd.DataFrame(
        [
            {
                "label": k,
                "family": k.rsplit("-", 1)[0],
                "budget": k.rsplit("-", 1)[1],
                "params": 260_000 if k.endswith("0.27M") else 850_000,
                "flops": f,
                "peak_memory_bytes": m,
            }
            for k, (f, m) in flops_and_memory.items()
        ]
    )


def speeds(ratio_by_repeat: list[float], a="vovnet-0.27M", b="densenet-bc-0.27M"):
    rows = []
    for r, ratio in enumerate(ratio_by_repeat):
        rows += [
            {"label": b, "repeat": r, "train_images_per_s": 100.0, "infer_images_per_s": 400.0},
            {"label": a, "repeat": r, "train_images_per_s": 100.0 * ratio, "infer_images_per_s": 400.0 * ratio},
        ]
    return pd.DataFrame(rows)


TWO = nets(**{"vovnet-0.27M": (70e6, 300e6), "densenet-bc-0.27M": (210e6, 900e6)})


def test_vovnet_as_accurate_faster_in_every_repeat_and_lighter_supports_claim_b():
    fams = {"claims": [contrast("B1 at 0.27M", "vovnet-0.27M", "densenet-bc-0.27M", [0.1, -0.2, 0.05, 0.0])]}
    assert fams["claims"][0].verdict == "no practical difference"
    text = "\n".join(block.claim_b(fams, TWO, speeds([1.5, 1.4, 1.6])))
    assert "**faster**" in text and "**lighter**" in text and "**Claim (b) → supported** (over 1 budget(s))" in text


def test_one_repeat_below_the_speed_threshold_leaves_claim_b_open():
    fams = {"claims": [contrast("B1 at 0.27M", "vovnet-0.27M", "densenet-bc-0.27M", [0.1, -0.2, 0.05, 0.0])]}
    text = "\n".join(block.claim_b(fams, TWO, speeds([1.5, 1.05, 1.6])))
    assert "→ **inconclusive**; training" in text and "**Claim (b) → inconclusive**" in text


def test_vovnet_decided_worse_contradicts_claim_b_whatever_its_speed():
    fams = {"claims": [contrast("B1 at 0.27M", "vovnet-0.27M", "densenet-bc-0.27M", [5.0, 6.0, 5.5, 6.5])]}
    assert fams["claims"][0].verdict == "supported"  # the paired test: VoVNet worse, as claim (b) denies
    text = "\n".join(block.claim_b(fams, TWO, speeds([2.0, 2.0, 2.0])))
    assert "worse: the claim fails" in text and "**Claim (b) → contradicted**" in text


def test_claim_b_without_a_cost_measurement_is_not_decided():
    fams = {"claims": [contrast("B1 at 0.27M", "vovnet-0.27M", "densenet-bc-0.27M", [0.1, -0.2, 0.05, 0.0])]}
    text = "\n".join(block.claim_b(fams, TWO, None))
    assert "**not measured** (run `reslab-cost`)" in text and "**Claim (b) → inconclusive**" in text


A = nets(
    **{
        "resnet-0.85M": (250e6, 1),
        "densenet-bc-0.27M": (210e6, 1),
        "resnet-0.27M": (80e6, 1),
        "densenet-bc-0.85M": (630e6, 1),
    }
)


def test_densenet_as_good_with_fewer_weights_and_flops_partly_supports_claim_a():
    fams = {"claims": [contrast("A2", "resnet-0.85M", "densenet-bc-0.27M", [0.3, -0.1, 0.2, 0.0])]}
    text = "\n".join(block.claim_a(fams, A, None))
    assert (
        "**Claim (a) → partly supported on parameter and conv-FLOP counts: as good as ResNet with fewer weights and "
        "fewer conv-FLOPs (0.31x the parameters, 0.84x the FLOPs), not better; speed and memory not measured "
        "(run `reslab-cost`).**"
    ) in text


def test_densenet_better_with_fewer_weights_but_more_flops_contradicts_claim_a():
    heavy = A.assign(flops=A.flops.where(A.label != "densenet-bc-0.27M", 300e6))
    fams = {"claims": [contrast("A2", "resnet-0.85M", "densenet-bc-0.27M", [5.0, 6.0, 5.5, 6.5])]}
    text = "\n".join(block.claim_a(fams, heavy, None))
    assert (
        "**Claim (a) → contradicted: DenseNet-BC with fewer weights needs more conv-FLOPs (1.20x); speed and "
        "memory not measured (run `reslab-cost`).**"
    ) in text


def test_claim_a_headline_states_the_measured_speed_and_memory_beside_the_counts():
    # DenseNet-BC better with fewer weights and FLOPs, but on this CPU at 0.42x ResNet's training throughput in the
    # median repeat and 2.8x its peak memory: the headline says both, computed from the measurement.
    agg = A.assign(
        peak_memory_bytes=A.label.map({"densenet-bc-0.27M": 2.8e9, "resnet-0.85M": 1e9}),
        share_conv=0.4,
        share_bn=0.2,
        share_relu=0.2,
        share_cat=0.1,
        share_other=0.1,
    )
    cost = speeds([0.40, 0.42, 0.45], a="densenet-bc-0.27M", b="resnet-0.85M").assign(device="cpu (2 cores, 2 threads)")
    fams = {"claims": [contrast("A2", "resnet-0.85M", "densenet-bc-0.27M", [5.0, 6.0, 5.5, 6.5])]}
    text = "\n".join(block.claim_a(fams, agg, cost))
    assert (
        "**Claim (a) → supported on parameter and conv-FLOP counts (0.31x the parameters, 0.84x the FLOPs); "
        "on this CPU 2.4x slower to train and 2.8x the peak memory.**"
    ) in text
    assert "Not counted: BatchNorm, ReLU, pooling, the residual additions and the concatenations" in text
    assert (
        "training images/s 0.42 [0.40, 0.45] over repeats → slower" in text
        and "peak training-step memory 2.80 → heavier" in text
    )
    assert "densenet-bc-0.27M: conv 40%, BN 20%, ReLU 20%, concatenation 10%, other 10%" in text
    # Within 10% in every repeat and the same memory: said so, not called slower.
    same = speeds([0.97, 1.0, 1.03], a="densenet-bc-0.27M", b="resnet-0.85M").assign(device="cpu (2 cores)")
    text = "\n".join(block.claim_a(fams, agg.assign(peak_memory_bytes=1e9), same))
    assert (
        "on this CPU as fast to train (1.00x, within 10% in every repeat) and about the same peak memory (1.00x).**"
        in text
    )
    # Where cost.csv records the CPU (a study may hold runs of two), the headline names it.
    named = cost.assign(cpu="Intel(R) Xeon(R) Processor, AVX512")
    text = "\n".join(block.claim_a(fams, agg, named))
    assert "on Intel(R) Xeon(R) Processor, AVX512 2.4x slower to train" in text


def test_the_log_axes_of_the_pareto_plot_have_few_plain_labels_that_do_not_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    # Training images/s from 28 to 600 (under two decades): matplotlib's own minor labels ran into each other.
    pts = pd.DataFrame(
        {
            "label": [f"n{i}" for i in range(6)],
            "family": ["resnet", "densenet-bc"] * 3,
            "budget": ["0.27M"] * 6,
            "params": [255e3, 270e3, 280e3, 800e3, 850e3, 870e3],
            "train_ips": [28.0, 85.0, 120.0, 190.0, 320.0, 600.0],
            "test_error_mean": [43.0, 45.0, 44.0, 53.0, 40.0, 47.0],
            "test_error_std": [1.0] * 6,
        }
    )
    colors, markers = block.styles(pts)
    fig = plots.pareto(
        pts,
        [("params", "parameters (log)", True), ("train_ips", "images/s (log)", True)],
        {"params": [], "train_ips": []},
        colors,
        markers,
        None,
    )
    canvas = FigureCanvasAgg(fig)  # the returned figure is closed (no pyplot canvas): draw it on its own
    canvas.draw()
    renderer = canvas.get_renderer()
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels(which="both") if t.get_visible() and t.get_text()]
        assert 2 <= len(labels) <= 6, [t.get_text() for t in labels]
        assert all("times" not in t.get_text() and "^" not in t.get_text() for t in labels), "plain numbers"
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), [t.get_text() for t in labels]


def test_the_pareto_front_keeps_only_nets_no_other_beats_on_both_axes():
    pts = pd.DataFrame(
        {
            "label": ["a", "b", "c", "d"],
            "params": [1, 2, 3, 2],
            "test_error_mean": [30.0, 20.0, 25.0, 20.0],
            "speed": [9.0, 5.0, 1.0, 6.0],
        }
    )
    assert block.pareto_front(pts, "params") == ["a", "b", "d"]  # c: b is smaller and better; b, d tie
    assert block.pareto_front(pts, "speed", higher_is_better=True) == ["a", "d"]


def test_a_net_without_an_entry_joins_the_budget_its_parameters_fall_in():
    budgets = {"0.27M": 270_000.0, "0.85M": 850_000.0}
    assert block.nearest_budget(272_710, budgets) == "0.27M"
    assert block.nearest_budget(790_000, budgets) == "0.85M"
    assert block.nearest_budget(500_000, budgets) == block.OFF_BUDGET


@pytest.mark.parametrize(
    "lo, hi, verdict",
    [
        (1.2, 1.5, "faster"),
        (0.5, 0.85, "slower"),
        (0.95, 1.05, "no practical difference"),
        (1.05, 1.3, "inconclusive"),
        (math.nan, math.nan, "not measured"),
    ],
)
def test_a_speed_ratio_is_called_only_when_every_repeat_clears_10_percent(lo, hi, verdict):
    assert block.ratio_verdict(lo, hi, block.SPEED_RATIO, "faster", "slower") == verdict


def test_the_published_copy_holds_the_shared_reference_and_adds_only_cited_rows():
    shared = Path("/work/shared/reference/published.csv")
    if not shared.is_file():
        pytest.skip("no shared/reference here")
    ours = Path(block.__file__).with_name("published.csv").read_text().splitlines()
    theirs = shared.read_text().splitlines()
    assert ours[: len(theirs)] == theirs  # the shared rows, unchanged and first
    added = pd.read_csv(io.StringIO("\n".join([ours[0], *ours[len(theirs) :]])), dtype=str)
    assert added.source.notna().all() and added.table.notna().all()  # each names its source and table
    # The descendants' rows (ResNeXt, WRN, RoR, DPN) say what was checked (the parameter count against public code, or
    # that it was not); the other added rows are He et al.'s ImageNet Table 1 (multiply-adds).
    desc = added[added.model.isin(DESCENDANTS)]
    assert set(desc.model) == set(DESCENDANTS) and all("count" in note for note in desc.note), list(desc.note)
    assert set(added.model) - set(DESCENDANTS) == {"resnet"} and set(added[added.model == "resnet"].source) == {
        "He2016-ResNet"
    }


# The whole study, tiny (conftest.TINY).

# Two steps of 25 images and tiny probes: DenseNet-BC-52 is the costliest net at this budget.
SMOKE = [
    "profile=smoke",
    "logger=none",
    "trainer.save_weights=false",
    *TINY,
    "probes.grad_norms=false",
    "probes.response_calib_images=20",
]


def test_smoke_block_study_goes_from_the_sweep_to_the_report(cli, tmp_path, synth_archive):
    cli(
        "reslab-train",
        "-m",
        "experiment=block",
        "block=resnet-0.27M,densenet-bc-0.27M",
        "seed=0,1",
        f"data.source={synth_archive}",
        *SMOKE,
    )
    runs = tmp_path / "runs/block/smoke"
    # One directory per run, beside the sweep's record of what it asked for (the report's completeness line).
    assert {p.name for p in runs.iterdir()} == {
        "resnet-0.27M-20-s0",
        "resnet-0.27M-20-s1",
        "densenet-bc-0.27M-52-s0",
        "densenet-bc-0.27M-52-s1",
        "_sweeps",
    }
    cli(
        "reslab-cost",  # as the Makefile runs it
        "study=block",
        "profile=smoke",
        "cost.batch_size=4",
        "cost.warmup_steps=1",
        "cost.steps=1",
        "cost.repeats=2",
        "cost.memory_batch=8",
    )
    assert len(pd.read_csv(runs / "cost.csv")) == 4
    cli("reslab-report", "block", "profile=smoke")
    out = tmp_path / "reports/block"
    report = (out / "README.md").read_text()
    for section in (
        "## Verdicts (computed by the decision rule)",
        "### Claim (a):",
        "### Claim (b):",
        "## Results per net",
        "## Learning curves",
        "## Gradient flow per block",
        "## Ours vs published (DenseNet, and ResNet at our depths)",
    ):
        assert section in report, section
    assert "CPU-sized study (`smoke` profile)" in report and "Seeds:** 0, 1" in report and "commit" in report
    assert "Seeds:** 0, 1 (2 per net)" in report, "the seeds per net are counted from the runs"
    assert "| resnet | 0.27M | resnet-0.27M-20 | 269,722 |" in report
    assert "| densenet-bc | 0.27M | densenet-bc-0.27M-52 | 264,586 |" in report
    assert "A1 at 0.27M, equal weights: resnet-0.27M-20 − densenet-bc-0.27M-52" in report and "Holm" in report
    assert "**Claim (a) → not tested.**" in report, "A2 needs both budgets"
    assert "Huang2017-DenseNet Table 2" in report and "Cost measured by `reslab-cost`" in report
    assert "not counted: BatchNorm, ReLU, pooling" in report, "the report says what the FLOP count leaves out"
    assert "train step time % (conv / BN / ReLU / concat / other)" in report, "reslab-cost profiled a training step"
    assert "![paired differences](paired_differences.png)" in report
    for f in (
        "pareto.png",
        "curves.png",
        "paired_differences.png",
        "runs.csv",
        "results.csv",
        "contrasts.csv",
        "cost.csv",
    ):
        assert (out / f).stat().st_size > 0, f
    contrasts = pd.read_csv(out / "contrasts.csv")
    assert list(contrasts.name) == ["A1 at 0.27M"] and (contrasts.p_holm >= contrasts.p).all()
    # McNemar: one exact test per seed, only in its secondary section, never in a verdict line.
    assert list(pd.read_csv(out / "mcnemar.csv").seed) == [0, 1] and "p_mcnemar" not in contrasts.columns
    assert "McNemar" not in report.split("### McNemar per seed")[0]
    results = pd.read_csv(out / "results.csv").set_index("label")
    assert results.loc["densenet-bc-0.27M-52", "peak_memory_bytes"] > 0 and np.isfinite(results.train_ips).all()
    assert len(pd.read_csv(out / "runs.csv")) == 4
