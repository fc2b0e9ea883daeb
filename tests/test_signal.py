"""The size-free backward-signal statistic: a hand computation, the readings, the positive controls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from reslab.models import build
from reslab.probes import signal


class Chain(nn.Module):
    """h0 = a*x (stem), h1 = b*h0 (one block); loss = sum(h1): dL/dh1 = 1 and dL/dh0 = b by hand."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.stem = nn.Linear(1, 1, bias=False)
        self.stages = nn.Sequential(nn.Sequential(nn.Linear(1, 1, bias=False)))
        with torch.no_grad():
            self.stem.weight.fill_(a)
            self.stages[0][0].weight.fill_(b)

    def forward(self, x):
        return self.stages(self.stem(x))


def test_block_output_gradients_match_a_hand_computation():
    net = Chain(a=3.0, b=-0.25)
    rows = signal.backward_signal(net, [(torch.ones(4, 1), None)], loss_fn=lambda out, _y: out.sum())
    assert [r["name"] for r in rows] == ["stem", "stages.0.0"]
    assert rows[0]["grad_rms"] == pytest.approx(0.25) and rows[1]["grad_rms"] == pytest.approx(1.0)
    assert signal.summarise([r["grad_rms"] for r in rows])["ratio"] == pytest.approx(0.25)
    assert net.stem.weight.grad is None, "the probe leaves no gradients behind"


def test_summary_of_a_geometric_profile():
    rms = 10.0 ** np.linspace(2, 0, 11)  # 100x larger at the input side, two decades over the net
    s = signal.summarise(rms)
    assert s["ratio"] == pytest.approx(100) and s["slope"] == pytest.approx(-2)


@pytest.mark.parametrize(
    "ratio, expected",
    [
        (1e-3, "vanishing"),
        (0.099, "vanishing"),
        (0.5, "neither"),
        (1.0, "neither"),
        (9.9, "neither"),
        (10.1, "exploding"),
        (1e6, "exploding"),
        (math.nan, "n/a"),
    ],
)
def test_readings_use_a_two_sided_band(ratio, expected):
    assert signal.reading(ratio) == expected


def _ratio(**opts) -> float:
    torch.manual_seed(0)
    net = build("resnet", depth=20, **opts)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
    return signal.summarise([r["grad_rms"] for r in signal.backward_signal(net, [(x, y)])])["ratio"]


def test_positive_control_down_scaled_init_without_bn_vanishes():
    assert signal.reading(_ratio(shortcut="none", norm="none", init_scale=0.5)) == "vanishing"


def test_positive_control_up_scaled_init_without_bn_explodes():
    assert signal.reading(_ratio(shortcut="none", norm="none", init_scale=2.0)) == "exploding"


def test_he_init_without_bn_keeps_the_signal_within_the_band():
    assert signal.reading(_ratio(shortcut="none", norm="none")) == "neither"
