"""The CIFAR nets match the paper where the paper is exact, and every variant is selectable by config."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir

from reslab.errors import ReslabError
from reslab.models import build, build_model, names
from reslab.models.layers import Projection, ResponseTap, ShortcutDropout, ZeroPadShortcut
from reslab.models.resnet import Gate
from reslab.paths import CONF_DIR
from reslab.summary import count_flops, count_params

DEPTHS = (20, 32, 44, 56, 110)
VARIANTS = sorted(p.stem for p in (CONF_DIR / "variant").glob("*.yaml"))


def compose_cfg(*overrides):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_resnet20_option_a_has_the_papers_269722_parameters():
    assert count_params(build("resnet", depth=20, shortcut="A")) == 269_722


@pytest.mark.parametrize("depth", DEPTHS)
def test_plain_and_option_a_nets_have_identical_parameters(depth):
    plain = count_params(build_model(compose_cfg("model=plain", f"model.depth={depth}").model))
    res = count_params(build_model(compose_cfg("model=resnet", f"model.depth={depth}").model))
    assert plain == res


def test_option_a_shortcuts_have_no_parameters():
    model = build("resnet", depth=56, shortcut="A")
    shortcuts = [m for m in model.modules() if isinstance(m, ZeroPadShortcut)]
    assert len(shortcuts) == 27
    assert all(sum(p.numel() for p in m.parameters()) == 0 for m in shortcuts)


def test_option_b_projects_only_where_the_shape_changes_and_c_everywhere():
    b = [m for m in build("resnet", depth=20, shortcut="B").modules() if isinstance(m, Projection)]
    c = [m for m in build("resnet", depth=20, shortcut="C").modules() if isinstance(m, Projection)]
    assert len(b) == 2 and len(c) == 9


def test_zero_pad_shortcut_subsamples_and_pads_with_zeros():
    x = torch.randn(2, 16, 8, 8)
    y = ZeroPadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()


def test_flops_are_counted_by_torch_and_grow_with_depth():
    f20, f56 = count_flops(build("resnet", depth=20)), count_flops(build("resnet", depth=56))
    # ResNet-20 is ~41M multiply-adds = ~82M FLOPs at 2 per multiply-add.
    assert 75e6 < f20 < 90e6 and f56 > 2.5 * f20


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_from_config_and_runs(variant):
    cfg = compose_cfg(f"variant={variant}", "model.depth=8")
    model = build_model(cfg.model)
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and torch.isfinite(out).all()
    assert cfg.variant.description
    from reslab.report.shortcut import VARIANTS as SHORTCUT_STUDY

    # The shortcut study sets each of its variants beside a row of Identity Mappings (shared/reference/published.csv).
    assert cfg.variant.published or variant not in SHORTCUT_STUDY
    params = count_params(model)
    base = count_params(build("resnet", depth=8, shortcut="A"))
    has_weights_on_shortcut = cfg.model.shortcut in ("B", "C") or cfg.model.gate != "none"
    assert (params > base) == has_weights_on_shortcut


def test_gate_bias_starts_at_the_configured_b_g():
    model = build("resnet", depth=8, gate="exclusive", gate_bias=-6.0)
    gates = [m for m in model.modules() if isinstance(m, Gate)]
    assert gates and all(torch.all(g.conv.bias == -6.0) for g in gates)


def test_exclusive_gate_at_minus_6_starts_close_to_the_identity():
    torch.manual_seed(0)
    model = build("resnet", depth=8, gate="exclusive", gate_bias=-6.0).eval()
    block = model.stages[0][0]
    x = torch.randn(2, 16, 8, 8).relu()
    # y = relu((1-g) x + g F(x)) with g ~ sigmoid(-6) ~ 0.0025: the unit passes x almost unchanged.
    assert torch.allclose(block(x), x, atol=0.2)


def test_dropout_shortcut_imposes_the_papers_expected_scale_of_one_half_in_train_and_test():
    # Identity Mappings: dropout "statistically imposes a scale of lambda with an expectation of 0.5 on
    # the shortcut". PyTorch's inverted dropout would impose an expectation of 1.
    torch.manual_seed(0)
    drop = ShortcutDropout(0.5)
    x = torch.ones(200_000)
    train = drop.train()(x)
    assert set(train.unique().tolist()) == {0.0, 1.0} and abs(train.mean().item() - 0.5) < 0.01
    assert torch.equal(drop.eval()(x), 0.5 * x)
    inverted = ShortcutDropout(0.5, rescale=True)
    assert abs(inverted.train()(x).mean().item() - 1.0) < 0.02 and torch.equal(inverted.eval()(x), x)
    model = build("resnet", depth=8, shortcut_dropout=0.5)
    assert sum(isinstance(m, ShortcutDropout) and not m.rescale for m in model.modules()) == 3


def test_relu_before_addition_makes_every_residual_non_negative_so_the_signal_only_grows():
    # Identity Mappings Fig. 4(c): the residual ends in a ReLU, so x_{l+1} = x_l + F(x_l) >= x_l.
    torch.manual_seed(0)
    model = build("resnet", depth=20, order="relu_before_add").train()
    x = model.stem(torch.randn(8, 3, 32, 32))
    for block in model.stages[0]:
        y = block(x)
        assert torch.all(block.branch(x) >= 0) and torch.all(y >= x)
        x = y


def test_norm_none_removes_every_batchnorm():
    model = build("resnet", depth=20, norm="none")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_layer_response_taps_mark_every_3x3_conv():
    model = build("resnet", depth=20)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    taps = [m for m in model.modules() if isinstance(m, ResponseTap)]
    assert len(convs) == len(taps) == 19


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(depth=21), "model.depth=21 is not 6n\\+2"),
        (dict(depth=2), "model.depth=2 is not 6n\\+2"),
        (dict(shortcut="D"), "unknown model.shortcut 'D'; valid choices: none, A, B, C"),
        (dict(block="dense"), "unknown model.block 'dense'; valid choices: basic"),
        (dict(order="sideways"), "unknown model.order 'sideways'"),
        (dict(norm="ln"), "unknown model.norm 'ln'; valid choices: bn, none"),
    ],
)
def test_bad_model_options_name_the_value_and_the_choices(bad, message):
    with pytest.raises(ReslabError, match=message):
        build("resnet", **bad)


def test_unknown_model_name_lists_the_registry():
    with pytest.raises(ReslabError, match="unknown model.name 'vgg'; valid choices: " + ", ".join(names())):
        build("vgg")


def test_zero_init_residual_starts_every_block_as_its_shortcut():
    net = build("resnet", depth=20, shortcut="A", zero_init_residual=True).eval()
    x = torch.randn(2, 16, 32, 32)
    block = net.stages[0][1]
    assert torch.equal(block(x), torch.relu(x))  # branch output 0: relu(identity + 0)
    assert count_params(net) == 269_722  # gamma = 0 is still a parameter: the net is ResNet-20


@pytest.mark.parametrize(
    "opts, message",
    [
        ({"shortcut": "none"}, "a plain net has no shortcut to start as"),
        ({"shortcut": "A", "order": "preact"}, "model.order=preact ends each branch on a conv"),
        ({"shortcut": "A", "norm": "none"}, "model.norm=none has no BN"),
    ],
)
def test_zero_init_residual_is_refused_where_no_branch_ends_on_a_bn(opts, message):
    with pytest.raises(ReslabError, match=message):
        build("resnet", depth=20, zero_init_residual=True, **opts)
