"""ResNet's descendants as blocks of the block study: Wide ResNet, ResNeXt, RoR-3 and DPN are the published
nets (parameter for parameter, against public code), each has a pinned entry at 0.27M and 0.85M that builds,
lands in its budget and trains (forward and backward), bad options are one line, and none of them has
joined the existing block-study sweeps."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from reslab.errors import ReslabError
from reslab.models import build_model, names
from reslab.models.budget import FAMILIES, TOLERANCE, model_yaml, parse_budget
from reslab.paths import CONF_DIR
from reslab.probes.gradients import weight_layers
from reslab.probes.signal import block_outputs
from reslab.summary import count_params

DESCENDANTS = ["wrn", "resnext", "ror", "dpn"]
BUDGETS = ["0.27M", "0.85M"]
ENTRIES = [f"{f}-{b}" for f in DESCENDANTS for b in BUDGETS]
# ResNeXt's claim needs its cardinality-1 net at the budget (experiments/descendants.md): an entry with an option
# held fixed (`reslab-budget resnext 0.27M cardinality=1 --yaml`).
FIXED_ENTRIES = ["resnext-cardinality1-0.27M"]
ENTRIES += FIXED_ENTRIES


def params(name: str, **opts) -> int:
    with torch.device("meta"):  # shapes only: the 68M-parameter ResNeXt costs nothing
        return count_params(build_model({**model_yaml(name), **opts}))


def cfg(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


# Published configurations, parameter for parameter.
#
# How each count was checked: the reference file was taken from a snapshot of its public repository (the commit is
# named), imported in a scratch directory outside this repository (not copied here), instantiated with
# torch (10 classes) and its parameters summed; the number below is that sum, and our builder gives the same.


@pytest.mark.parametrize(
    "depth, k, expected",
    [
        (28, 10, 36_479_194),  # WRN-28-10, the paper's 36.5M
        (16, 4, 2_748_890),  # WRN-16-4, the paper's 2.7M
        (16, 8, 10_961_370),  # WRN-16-8, the paper's 11.0M
        (40, 4, 8_949_210),  # WRN-40-4, the paper's 8.9M
    ],
)
def test_wide_resnet_has_the_parameters_of_the_public_wrn(depth, k, expected):
    # xternalz/WideResNet-pytorch @1171f93d5a9ae28eb5e603e5e7545f488d0df6ab, wideresnet.py: WideResNet(depth, 10, k),
    # instantiated (all four). WRN-28-10 also in pytorchcv 0.0.67 (osmr/imgclsmob) wrn_cifar.wrn28_10_cifar10,
    # instantiated: 36,479,194 as well.
    assert params("wrn", depth=depth, widen_factor=k) == expected


@pytest.mark.parametrize(
    "cardinality, group_width, expected",
    [
        (8, 64, 34_426_698),  # ResNeXt-29 (8 x 64d), the paper's 34.4M (Table 7)
        (16, 64, 68_155_210),  # ResNeXt-29 (16 x 64d), the paper's 68.1M (Table 7)
        (32, 4, 4_775_754),  # ResNeXt-29 (32 x 4d), pytorchcv only (not a row of the paper's Table 7)
    ],
)
def test_resnext_29_has_the_parameters_of_the_public_resnext(cardinality, group_width, expected):
    # prlz77/ResNeXt.pytorch @39fb8d03847f26ec02fb9b880ecaaa88db7a7d16, models/model.py:
    # CifarResNeXt(cardinality, 29, 10, base_width=64, widen_factor=4), instantiated for 8 and 16. pytorchcv 0.0.67
    # resnext_cifar.resnext29_16x64d_cifar10 and resnext29_32x4d_cifar10, instantiated: 68,155,210 and 4,775,754.
    assert params("resnext", cardinality=cardinality, group_width=group_width) == expected


@pytest.mark.parametrize(
    "depth, theirs, expected", [(50, "ror3_56", 762_746), (104, "ror3_110", 1_637_690), (158, "ror3_164", 2_512_634)]
)
def test_ror3_has_the_parameters_of_the_public_ror3(depth, theirs, expected):
    # pytorchcv 0.0.67 (osmr/imgclsmob), models/ror_cifar.py: ror3_56/110/164_cifar10(), instantiated; the same
    # counts are in osmr/imgclsmob's pytorch README. Its names count the 6 shortcut convs too (depth = 6n + 8), so
    # its "RoR-3-110" has 17 blocks per stage: our depth 6 * 17 + 2 = 104. Our defaults (shortcut B, level_shortcut C)
    # are its shortcut types.
    assert params("ror", depth=depth) == expected


DPN4 = dict(
    stem_channels=64,
    widths=[96, 192, 384, 768],
    out_channels=[256, 512, 1024, 2048],
    dense_depths=[16, 32, 24, 128],
    cardinality=32,
)


@pytest.mark.parametrize("depth, blocks, expected", [(26, None, 11_574_842), (92, [3, 4, 20, 3], 34_236_634)])
def test_dpn_has_the_parameters_of_the_public_cifar_dpn(depth, blocks, expected):
    # kuangliu/pytorch-cifar @49b7aa97b0c12fe0d4054e670403a16b6b834ddd, models/dpn.py: DPN26() and DPN92(),
    # instantiated (four stages on 32x32, 32 groups).
    assert params("dpn", depth=depth, blocks_per_stage=blocks, **DPN4) == expected


# The block study's entries.


def test_every_descendant_is_a_registered_model_a_matcher_family_and_two_entries():
    assert set(DESCENDANTS) <= set(names()) and set(DESCENDANTS) <= set(FAMILIES)
    assert sorted(ENTRIES) == sorted(
        p.stem for p in (CONF_DIR / "block").glob("*.yaml") if p.stem.split("-", 1)[0] in DESCENDANTS
    )


def test_no_descendant_joins_the_existing_block_study_sweeps():
    # A study of their own comes later, with its own plan; the running study's design stays as planned.
    for path in sorted((CONF_DIR / "experiment").glob("block*.yaml")):
        nets = str(OmegaConf.load(path).hydra.sweeper.params.block).split(",")
        assert not [n for n in nets if n.rsplit("-", 1)[0] in DESCENDANTS], path.name


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_entry_builds_lands_in_its_budget_and_trains_on_a_batch(entry):
    c = cfg(f"block={entry}")
    torch.manual_seed(0)
    model = build_model(c.model)
    assert count_params(model) == c.variant.params
    assert abs(c.variant.params / parse_budget(c.variant.budget) - 1) <= TOLERANCE
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), "every weight gets a finite gradient"


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_probes_find_blocks_and_file_projections_with_the_shortcuts(entry):
    model = build_model(cfg(f"block={entry}").model)
    points = block_outputs(model)
    assert points[0][0] == "stem" and len(points) > 3
    kinds = [kind for _, _, kind in weight_layers(model)]
    assert kinds[0] == "main" and kinds[-1] == "main" and "shortcut" in kinds


# What each block does, beyond its count.


def test_ror3_with_zero_pad_shortcuts_has_exactly_the_resnets_parameters():
    # The level shortcuts add paths, not weights: RoR-3-20 (A, A) is ResNet-20's 269,722 parameters.
    assert params("ror", shortcut="A", level_shortcut="A") == params("resnet") == 269_722


def test_ror3_level_shortcuts_carry_gradient_to_every_stage_and_the_root():
    torch.manual_seed(0)
    model = build_model(model_yaml("ror"))
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    level = [model.root.shortcut[0], *(stage.shortcut[0] for stage in model.stages)]
    assert all(conv.weight.grad.abs().sum() > 0 for conv in level)


def test_a_dual_path_block_adds_on_one_path_and_concatenates_on_the_other():
    from reslab.models.dpn import DualPathBlock

    block = DualPathBlock(cin=12, width=8, out=8, dense=3, stride=1, cardinality=4, first=False).eval()
    torch.nn.init.zeros_(block.branch[-1].weight)  # the branch's last BN: output 0 + beta
    with torch.no_grad():
        block.branch[-1].bias.copy_(torch.arange(11.0))
    x = torch.rand(2, 12, 4, 4)
    y = block(x)
    assert y.shape == (2, 15, 4, 4), "12 in: 8 residual + 4 dense, plus 3 new dense channels"
    assert torch.allclose(y[:, :8], torch.relu(x[:, :8] + torch.arange(8.0).view(1, 8, 1, 1))), "residual: added"
    assert torch.equal(y[:, 8:12], x[:, 8:12]), "dense: the input's dense channels pass through"
    assert torch.equal(y[:, 12:], torch.arange(8.0, 11.0).view(1, 3, 1, 1).expand(2, 3, 4, 4)), "new: concatenated"


def test_wrn_dropout_sits_between_the_two_convs_and_only_trains():
    torch.manual_seed(0)
    model = build_model({**model_yaml("wrn"), "depth": 10, "widen_factor": 0.5, "dropout": 0.3})
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 3 and all(d.p == 0.3 for d in drops)
    x = torch.randn(2, 3, 32, 32)
    assert not torch.equal(model(x), model(x)), "training: a fresh dropout mask each pass"
    model.eval()
    assert torch.equal(model(x), model(x)), "no dropout at test time"
    assert params("wrn", dropout=0.3) == params("wrn"), "dropout has no weights"


# Bad input: one line, naming the value and what is valid.


@pytest.mark.parametrize(
    "name, opts, message",
    [
        ("wrn", {"widen_factor": 0.3}, "model.widen_factor=0.3 must be a positive multiple of 1/16"),
        ("wrn", {"depth": 20}, "model.depth=20 is not 6n+4 with n >= 1 (WRN-d-k); valid depths: 10, 16, 22, 28"),
        ("wrn", {"dropout": 1.0}, "model.dropout=1.0 must be in [0, 1)"),
        ("resnext", {"depth": 30}, "model.depth=30 is not 9n+2 with n >= 1"),
        ("resnext", {"cardinality": 0}, "model.cardinality=0 must be an integer >= 1"),
        ("ror", {"level_shortcut": "D"}, "model.level_shortcut"),
        ("dpn", {"widths": [20, 48, 96]}, "model.widths=[20, 48, 96] must be multiples of model.cardinality=8"),
        ("dpn", {"depth": 30}, "model.depth=30 does not fit a DPN of 3 stages of equal blocks: depth = 2 + 9m"),
        (
            "dpn",
            {"depth": 26, "blocks_per_stage": [3, 3, 3]},
            "model.depth=26 does not match blocks_per_stage=[3, 3, 3]",
        ),
    ],
)
def test_a_bad_option_is_one_line(name, opts, message):
    with pytest.raises(ReslabError) as err:
        build_model({**model_yaml(name), **opts})
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", DESCENDANTS)
def test_stages_run_at_32_16_8_and_every_3x3_conv_is_marked_for_the_response_probe(name):
    model = build_model(cfg(f"block={name}-0.27M").model).eval()
    sizes = []
    for stage in model.stages:  # a RoR stage is not a plain sequence: its blocks are stage.blocks
        (stage.blocks[-1] if name == "ror" else stage[-1]).register_forward_hook(
            lambda _m, _i, out: sizes.append(out.shape[-1])
        )
    model(torch.randn(2, 3, 32, 32))
    assert sizes == [32, 16, 8]
    convs = [
        n
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and not n.startswith("stem")
    ]
    taps = [n for n, m in model.named_modules() if type(m).__name__ == "ResponseTap" and not n.startswith("stem")]
    assert len(convs) == len(taps) > 0


@pytest.mark.parametrize(
    "family, fixed",
    [
        ("resnext", {"cardinality": 1}),
        ("resnext", {"cardinality": 4}),
        ("wrn", {"dropout": 0.3}),
        ("ror", {"level_shortcut": "A"}),
        ("dpn", {"cardinality": 4}),
    ],
)
def test_the_matcher_holds_a_claims_option_fixed_and_still_lands_in_the_budget(family, fixed):
    # The papers' claims compare variants at equal parameters: cardinality against width (ResNeXt), dropout (WRN),
    # parameter-free level shortcuts (RoR), fewer groups (DPN). The matcher finds each at the budget.
    from reslab.models.budget import match

    for budget in BUDGETS:
        m = match(family, budget, **fixed)
        assert abs(m.deviation) <= TOLERANCE and all(m.config[k] == v for k, v in fixed.items())
