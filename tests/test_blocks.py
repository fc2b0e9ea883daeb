"""The blocks the residual block is compared with are the published ones, and the comparison is at
matched parameter budgets."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from reslab.errors import ReslabError
from reslab.models import build, build_model
from reslab.models.budget import FAMILIES, match, model_yaml
from reslab.models.densenet import DenseLayer
from reslab.models.layers import ResponseTap
from reslab.models.vovnet import EffectiveSE, OSAModule
from reslab.paths import CONF_DIR
from reslab.summary import count_params

# Every new model YAML, small (depth and width) so that the tests stay fast on a CPU.
THIN_VOVNET = ("model.depth={}", "model.stem_channels=8", "model.widths=[4,8,16]", "model.out_channels=[16,32,64]")
SMALL = {
    "densenet": ("model.depth=10", "model.growth_rate=6"),
    "densenet-bc": ("model.depth=16", "model.growth_rate=6"),
    "preact": ("model.depth=8", "++model.widths=[8,16,32]"),
    "bottleneck": ("model.depth=11", "model.widths=[4,8,16]"),
    "vovnet": (THIN_VOVNET[0].format(20),) + THIN_VOVNET[1:],
    "vovnet-v2": (THIN_VOVNET[0].format(38),) + THIN_VOVNET[1:],  # two modules per stage: V2 has its shortcuts
}
BUDGETS = ("0.27M", "0.85M")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets are tiny: a second intra-op thread costs more than it saves, and on a busy machine
    waiting for it costs 100x the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def model_cfg(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides)).model


def small(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(model_cfg(f"model={family}", *SMALL[family]))


# Published parameter counts.


def test_densenet_bc_100_12_has_769162_parameters():
    # Paper Table 2 and the official README (liuzhuang13/DenseNet): 0.8M. Exact count: osmr/imgclsmob,
    # pytorch/README.md, CIFAR-10 table, "DenseNet-BC-100 (k=12) | 4.16 | 769,162" (CIFAR-100: 800,032).
    assert count_params(build_model(model_cfg("model=densenet-bc"))) == 769_162
    assert (
        count_params(build("densenet", depth=100, growth_rate=12, bottleneck=True, compression=0.5, num_classes=100))
        == 800_032
    )


def test_densenet_40_12_has_the_papers_1_0m_parameters():
    # Paper Table 2 / official README: DenseNet (L=40, k=12) 1.0M. With the paper's 16-channel stem
    # the count is 1,019,722; the official code's 2k = 24-channel stem would give 1,059,298 (1.1M).
    params = count_params(build_model(model_cfg("model=densenet")))
    assert params == 1_019_722 and round(params / 1e6, 1) == 1.0
    assert count_params(build("densenet", depth=40, growth_rate=12, stem_channels=24)) == 1_059_298


def test_plain_dense_layers_match_an_independent_implementation():
    # osmr/imgclsmob pytorch/README.md, CIFAR-10: its "DenseNet-40 (k=12)" (599,050) and "DenseNet-100
    # (k=12)" (4,068,490) use a 2k stem and compression 0.5 (pytorchcv densenet_cifar.py).
    assert count_params(build("densenet", depth=40, growth_rate=12, compression=0.5, stem_channels=24)) == 599_050
    assert count_params(build("densenet", depth=100, growth_rate=12, compression=0.5, stem_channels=24)) == 4_068_490


@pytest.mark.parametrize(
    "depth, k, bc, millions",
    [(100, 12, False, 7.0), (100, 24, False, 27.2), (250, 24, True, 15.3), (190, 40, True, 25.6)],
)
def test_the_other_densenets_of_the_papers_table_2(depth, k, bc, millions):
    with torch.device("meta"):  # shapes only
        model = build("densenet", depth=depth, growth_rate=k, bottleneck=bc, compression=0.5 if bc else 1.0)
    assert round(count_params(model) / 1e6, 1) == millions


def test_resnet_164_preact_bottleneck_has_1703258_parameters():
    # Identity Mappings (He et al. 2016b) Table 5: ResNet-164, 1.7M. Exact count: osmr/imgclsmob,
    # chainer_/README.md, CIFAR-10 table, "PreResNet-164(BN) | 3.64 | 1,703,258" (projection shortcuts
    # without BN on the shared pre-activation, as in KaimingHe/resnet-1k-layers resnet-pre-act.lua).
    assert count_params(build_model(model_cfg("model=bottleneck"))) == 1_703_258


def test_resnet_164_post_activation_bottleneck_has_1704154_parameters():
    # osmr/imgclsmob pytorch/README.md, CIFAR-10: "ResNet-164(BN) | 3.68 | 1,704,154".
    assert count_params(build("resnet", depth=164, block="bottleneck", order="post", shortcut="B")) == 1_704_154


def test_preact_yaml_is_the_option_a_resnet_with_its_269722_parameters():
    cfg = model_cfg("model=preact")
    assert cfg.order == "preact" and cfg.shortcut == "A" and cfg.depth == 20
    assert count_params(build_model(cfg)) == 269_722


# Shapes and wiring.


@pytest.mark.parametrize("family", SMALL)
def test_every_new_family_maps_a_batch_of_cifar_images_to_10_logits(family):
    out = small(family)(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("family", SMALL)
def test_every_new_family_trains_one_step(family):
    model = small(family).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([3, 7])
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@pytest.mark.parametrize("family", ["densenet-bc", "vovnet", "bottleneck"])
def test_stages_run_at_32_16_8(family):
    model = small(family).eval()
    x = model.stem(torch.randn(2, 3, 32, 32))
    sizes = []
    for stage in model.stages:
        x = stage(x)
        sizes.append(x.shape[-1])
    assert sizes == [32, 16, 8]


def test_a_dense_layer_appends_k_channels_and_keeps_its_input():
    layer = DenseLayer(24, growth_rate=12, bottleneck=True).eval()
    x = torch.randn(2, 24, 8, 8)
    y = layer(x)
    assert y.shape == (2, 36, 8, 8) and torch.equal(y[:, :24], x)


def test_densenet_bc_transitions_halve_the_channels():
    model = build("densenet", depth=16, growth_rate=12, bottleneck=True, compression=0.5)
    # stem 24 -> +2*12 = 48 -> transition 24 -> +24 = 48 -> 24 -> 48
    convs = [m for m in model.stages[1][0].modules() if isinstance(m, torch.nn.Conv2d)]
    assert (convs[0].in_channels, convs[0].out_channels) == (48, 24)
    assert model.fc.in_features == 48


def test_osa_module_concatenates_input_and_every_layer_once():
    module = OSAModule(cin=32, width=16, cout=64, layers=5)
    assert module.concat[0].in_channels == 32 + 5 * 16 and module.concat[0].out_channels == 64
    assert [layer[0].in_channels for layer in module.layers] == [32, 16, 16, 16, 16]


def test_vovnet_v2_adds_ese_everywhere_and_identity_after_the_first_module_of_each_stage():
    v1, v2 = build_model(model_cfg("model=vovnet", *SMALL["vovnet-v2"])), small("vovnet-v2")
    modules2 = [m for m in v2.modules() if isinstance(m, OSAModule)]
    assert len(modules2) == 6
    assert [m.identity for m in modules2] == [False, True] * 3
    assert all(isinstance(m.gate, EffectiveSE) for m in modules2)
    assert not any(m.identity or isinstance(m.gate, EffectiveSE) for m in v1.modules() if isinstance(m, OSAModule))
    assert count_params(v2) - count_params(v1) == sum(c * c + c for c in (16, 16, 32, 32, 64, 64))


def test_ese_rescales_channels_by_a_hard_sigmoid_gate():
    ese = EffectiveSE(8)
    torch.nn.init.zeros_(ese.fc.weight)
    torch.nn.init.zeros_(ese.fc.bias)
    x = torch.randn(2, 8, 4, 4)
    assert torch.allclose(ese(x), 0.5 * x)  # hardsigmoid(0) = 0.5


def test_vovnet_depth_counts_the_weight_layers_on_the_longest_path():
    # stem + 3 stages x 2 modules x (5 3x3 + 1 concat 1x1) + classifier
    assert model_yaml("vovnet")["depth"] == 1 + 3 * 2 * (5 + 1) + 1
    model = build("vovnet", depth=20, modules_per_stage=[1, 1, 1])
    assert len([m for m in model.modules() if isinstance(m, OSAModule)]) == 3


@pytest.mark.parametrize("family", SMALL)
def test_every_3x3_conv_of_the_new_blocks_is_marked_for_the_response_probe(family):
    model = small(family)
    convs = [
        m
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and not n.startswith("stem")
    ]
    taps = [m for n, m in model.named_modules() if isinstance(m, ResponseTap) and not n.startswith("stem")]
    assert len(convs) == len(taps) > 0


def test_preact_bottleneck_projects_the_shared_preactivation_without_bn():
    model = build("resnet", depth=11, block="bottleneck", order="preact", shortcut="B")
    firsts = [stage[0] for stage in model.stages]
    assert all(
        b.both_preact and not any(isinstance(m, torch.nn.BatchNorm2d) for m in b.shortcut.modules()) for b in firsts
    )


# Budget matching.


@pytest.mark.parametrize("budget", BUDGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_budget_matcher_lands_within_10_percent_with_an_exact_count(family, budget):
    m = match(family, budget)
    assert abs(m.deviation) <= 0.10
    # The exact count is that of the config run through Hydra, as reslab-train would build it.
    assert count_params(build_model(model_cfg(*m.overrides()))) == m.params


def test_budget_matcher_keeps_the_published_shape_where_depth_alone_reaches_the_budget():
    assert match("resnet", "0.27M").config["depth"] == 20 and match("resnet", "0.27M").changed == {}
    assert match("resnet", 850_000).changed == {"depth": 56}
    assert match("densenet-bc", "0.85M").changed == {"depth": 106}


def test_budget_matcher_is_deterministic_and_takes_fixed_options():
    assert match("vovnet-v2", "0.27M") == match("vovnet-v2", "0.27M")
    m = match("vovnet-v2", "0.27M", layers_per_module=3)
    assert m.config["layers_per_module"] == 3 and abs(m.deviation) <= 0.10


def test_budget_matcher_prints_its_choice(capsys):
    from reslab.models.budget import print_match

    print_match(match("densenet-bc", "0.85M"))
    out = capsys.readouterr().out
    assert "densenet-bc at 0.85M: depth=106 -> 849,190 parameters (-0.1%)" in out
    assert "reslab-train model=densenet-bc model.depth=106" in out


def test_model_yaml_reads_the_group_as_hydra_composes_it():
    for family in FAMILIES:
        assert model_yaml(family) == OmegaConf.to_container(model_cfg(f"model={family}"))


# Bad input: one line, naming the bad value.


@pytest.mark.parametrize(
    "name, opts, message",
    [
        ("resnet", dict(block="dense"), "unknown model.block 'dense'; valid choices: basic, bottleneck"),
        ("resnet", dict(block="bottleneck", depth=20 + 1), "model.depth=21 is not 9n\\+2"),
        ("resnet", dict(widths=[16, 0, 64]), "model.widths=\\[16, 0, 64\\]"),
        ("densenet", dict(growth_rate=0), "model.growth_rate=0 must be an integer >= 1"),
        ("densenet", dict(compression=0), "model.compression=0 must be in \\(0, 1\\]"),
        ("densenet", dict(compression=1.5), "model.compression=1.5 must be in \\(0, 1\\]"),
        ("densenet", dict(depth=41), "model.depth=41 does not fit DenseNet"),
        ("densenet", dict(depth=37, bottleneck=True), "model.depth=37 does not fit DenseNet-BC"),
        ("vovnet", dict(widths=[16, -32, 64]), "model.widths=\\[16, -32, 64\\]"),
        ("vovnet", dict(out_channels=[64, 0, 256]), "model.out_channels=\\[64, 0, 256\\]"),
        ("vovnet", dict(version=3), "unknown model.version 3; valid choices: 1, 2"),
        ("vovnet", dict(depth=21), "model.depth=21 does not fit VoVNet"),
        ("vovnet", dict(depth=20, modules_per_stage=[1, 1, 2]), "model.depth=20 does not match modules_per_stage"),
        ("vovnet", dict(layers_per_module=0), "model.layers_per_module=0"),
    ],
)
def test_bad_block_options_name_the_value(name, opts, message):
    with pytest.raises(ReslabError, match=message) as err:
        build(name, **opts)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "family, budget, message",
    [
        ("resnet", 100, "no resnet configuration within \\+-10% of budget 100 parameters; reachable: 5,006 to "),
        ("vovnet", "1e12", "budget 1,000,000,000,000 parameters; reachable: "),
        ("densenet-bc", "abc", "budget 'abc' is not a positive parameter count"),
        ("densenet-bc", -5, "budget -5 is not a positive parameter count"),
        (
            "vgg",
            "0.27M",
            "unknown family 'vgg'; valid choices: resnet, preact, bottleneck, densenet-bc, vovnet, vovnet-v2",
        ),
    ],
)
def test_unreachable_budgets_and_unknown_families_are_one_line_errors(family, budget, message):
    with pytest.raises(ReslabError, match=message) as err:
        match(family, budget)
    assert "\n" not in str(err.value)
