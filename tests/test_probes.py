"""The gradient and response probes return the numbers a hand calculation gives."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from reslab.models import build
from reslab.probes import gradient_norms, layer_responses, weight_layers
from reslab.probes.gradients import first_last_ratio


def linear_chain(scales: list[float], width: int = 4) -> nn.Sequential:
    layers = []
    for a in scales:
        lin = nn.Linear(width, width, bias=False)
        with torch.no_grad():
            lin.weight.copy_(a * torch.eye(width))
        layers.append(lin)
    return nn.Sequential(*layers)


def test_weight_gradients_of_a_deep_linear_chain_match_the_chain_rule():
    # y = W_L ... W_1 x with W_i = a_i I and loss = sum(y): dL/dW_i = (prod_{j>i} a_j) 1 (prod_{j<i} a_j x)^T,
    # so ||dL/dW_i|| = (prod_{j != i} a_j) * ||1|| * ||x||. With a_i = 2^-i the norm shrinks by exactly
    # a factor 2 per layer towards the input.
    L, width = 8, 4
    scales = [2.0 ** -(i + 1) for i in range(L)]
    model = linear_chain(scales, width)
    x = torch.ones(1, width)
    rows = gradient_norms(model, [(x, None)], loss_fn=lambda out, _y: out.sum())
    total = math.prod(scales)
    for i, row in enumerate(rows):
        expected = total / scales[i] * math.sqrt(width) * math.sqrt(width)
        assert row["layer"] == i
        assert row["grad_norm"] == pytest.approx(expected, rel=1e-5)
        assert row["rel_grad_norm"] == pytest.approx(expected / (scales[i] * math.sqrt(width)), rel=1e-5)
    for lower, upper in zip(rows, rows[1:]):
        assert lower["grad_norm"] / upper["grad_norm"] == pytest.approx(0.5, rel=1e-5)


def test_probe_averages_over_batches():
    model = linear_chain([1.0, 1.0])
    b1, b2 = torch.ones(1, 4), 3 * torch.ones(1, 4)
    rows = gradient_norms(model, [(b1, None), (b2, None)], loss_fn=lambda out, _y: out.sum())
    assert rows[0]["grad_norm"] == pytest.approx((4 + 12) / 2)


def test_layers_are_indexed_from_the_input_side():
    model = build("resnet", depth=8, shortcut="B")
    layers = weight_layers(model)
    assert layers[0][0] == "stem.0" and layers[-1][0] == "fc"
    assert {k for _, _, k in layers} == {"main", "shortcut"}


def test_first_last_ratio_compares_stem_with_last_3x3_conv():
    rows = [
        {"name": "stem.0", "kind": "main", "grad_norm": 1e-3},
        {"name": "stages.0.0.shortcut.0", "kind": "shortcut", "grad_norm": 5.0},
        {"name": "stages.2.0.branch.4", "kind": "main", "grad_norm": 1.0},
        {"name": "fc", "kind": "main", "grad_norm": 100.0},
    ]
    assert first_last_ratio(rows) == pytest.approx(1e-3)


def test_layer_responses_are_the_per_channel_std_at_each_tap():
    torch.manual_seed(0)
    model = build("resnet", depth=8).eval()
    x = torch.randn(64, 3, 32, 32)
    rows = layer_responses(model, x, batch_size=16)
    assert len(rows) == 7  # stem + 2 per block x 3 blocks
    # BN in eval mode with fresh running stats is the identity, so the stem tap is the stem conv's output;
    # ResNet Fig. 7 reads each channel's std over images and positions, summarised over channels.
    with torch.no_grad():
        per_channel = model.stem[0](x).transpose(0, 1).reshape(16, -1).std(1, unbiased=False)
    assert rows[0]["std"] == pytest.approx(per_channel.mean().item(), rel=1e-4)
    assert rows[0]["std_median"] == pytest.approx(per_channel.median().item(), rel=1e-4)


def test_recalibrated_bn_leaves_the_trained_model_untouched():
    torch.manual_seed(0)
    model = build("resnet", depth=8).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = layer_responses(model, torch.randn(32, 3, 32, 32), calib=torch.randn(64, 3, 32, 32) * 3 + 1)
    assert all(r["bn"] == "recalibrated" for r in rows)
    # Recalibrated on inputs of std 3: the stem's BN output is normalised again (per-channel std near 1).
    assert rows[0]["std"] == pytest.approx(1 / 3, rel=0.2)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _conv_bn_tap(channels: int = 2) -> nn.Sequential:
    from reslab.models.layers import ResponseTap

    conv = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return nn.Sequential(conv, nn.BatchNorm2d(channels), ResponseTap())


def test_a_near_constant_channel_is_masked_and_does_not_blow_up_the_masked_mean():
    # Channel 0 is constant on the calibration images, so its recalibrated BN variance is 0 and BN divides it by
    # sqrt(eps): on the eval images (spread 1) its response std is about 1/sqrt(eps) = 316, and the mean over channels
    # with it. Masked, the layer reads its other channel, whose response is its BN scale, 1.
    torch.manual_seed(0)
    calib = torch.randn(64, 2, 8, 8)
    calib[:, 0] = 0.5
    row = layer_responses(_conv_bn_tap(), torch.randn(64, 2, 8, 8), calib=calib)[0]
    assert row["masked"] == 1 and row["channels"] == 2
    assert row["std"] > 100, "unmasked, the constant channel dominates the mean"
    assert row["std_masked"] == pytest.approx(1.0, rel=0.05)
    assert row["gamma_abs_median"] == 1.0


def test_no_channel_is_masked_when_every_channel_varies_or_no_bn_feeds_the_tap():
    from reslab.models.layers import ResponseTap

    torch.manual_seed(0)
    x = torch.randn(32, 2, 8, 8)
    row = layer_responses(_conv_bn_tap(), x, calib=torch.randn(64, 2, 8, 8))[0]
    assert row["masked"] == 0 and row["std_masked"] == pytest.approx(row["std"])
    bare = nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), ResponseTap())
    row = layer_responses(bare, x)[0]
    assert row["masked"] == 0 and row["std_masked"] == pytest.approx(row["std"]) and math.isnan(row["gamma_abs_median"])
