"""The gradient scale coefficient (Philipp, Song & Carbonell, arXiv:1712.05577): a hand computation, an exact
identity, its freedom from scale, the positive controls built for it, and a BN ResNet at init."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn as nn

from reslab.models import build
from reslab.models.layers import ZeroPadShortcut
from reslab.probes import signal
from reslab.probes.controls import EXPLODE_RATE, CenteredAbsChain, IdentityChain, OrderedChain
from reslab.report import flow


def _rows(net: nn.Module, seed: int = 0, n: int = 8) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return signal.backward_signal(net, [(x, y)])


def _gsc(rows: list[dict]) -> dict:
    return signal.summarise_gsc(*([r[k] for r in rows] for k in ("grad_rms", "act_rms", "elements")))


def _per_block(rows: list[dict]) -> np.ndarray:
    return signal.gsc_per_block(*([r[k] for r in rows] for k in ("grad_rms", "act_rms", "elements")))


def test_gsc_matches_a_hand_computation_and_the_whole_net_is_the_product():
    # Point 0 -> 1 keeps the size (d = 8): (2 * 3) / (1 * 1.5) = 4. Point 1 -> 2 halves it (d = 8 -> 4):
    # (1 * 1.5) / (0.5 * 1) * sqrt(8 / 4) = 3 sqrt(2).
    g, a, d = [2.0, 1.0, 0.5], [3.0, 1.5, 1.0], [8, 8, 4]
    assert signal.gsc_per_block(g, a, d) == pytest.approx([4.0, 3 * math.sqrt(2)])
    s = signal.summarise_gsc(g, a, d)
    assert s["blocks"] == 2 and s["gsc"] == pytest.approx(12 * math.sqrt(2))
    assert s["gsc_rate"] == pytest.approx(math.sqrt(12 * math.sqrt(2)))


def test_an_exact_identity_block_has_gsc_one():
    torch.manual_seed(0)
    rows = _rows(IdentityChain(blocks=4))
    assert _per_block(rows) == pytest.approx([1.0] * 4, abs=0) and _gsc(rows)["gsc_rate"] == 1.0


class _ShortcutOnly(nn.Module):
    """stem conv, then a parameter-free zero-pad shortcut that halves the size (option A's first block of a stage)."""

    def __init__(self):
        super().__init__()
        self.stem, self.pad = nn.Conv2d(3, 16, 3, padding=1), ZeroPadShortcut(16, 32, 2)
        self.fc = nn.Linear(32 * 16 * 16, 10)

    def signal_points(self):
        return [("stem", self.stem), ("pad", self.pad)]

    def forward(self, x):
        return self.fc(torch.flatten(self.pad(self.stem(x)), 1))


def test_a_zero_pad_shortcut_reads_as_an_identity_thanks_to_the_size_term():
    """Subsampling and zero channels change neither the relative size of a change nor its direction's share: GSC 1
    up to sampling noise (without the sqrt(d_in / d_out) term it would read sqrt(2) or 1/sqrt(2))."""
    torch.manual_seed(0)
    assert _per_block(_rows(_ShortcutOnly(), n=16))[0] == pytest.approx(1.0, rel=0.1)


def test_the_gsc_ignores_a_scale_that_moves_the_ratio_by_orders_of_magnitude():
    """Scaling a no-BN ReLU net's init (the ratio's positive controls) scales activations and gradients, not the
    relative sensitivity of any block."""
    out = {}
    for scale in (0.5, 2.0):
        torch.manual_seed(0)
        rows = _rows(build("resnet", depth=14, shortcut="none", norm="none", init_scale=scale), n=8)
        out[scale] = (signal.summarise([r["grad_rms"] for r in rows])["ratio"], _gsc(rows)["gsc_rate"])
    assert out[2.0][0] / out[0.5][0] > 1e4
    assert out[2.0][1] == pytest.approx(out[0.5][1], rel=0.05)


def test_positive_control_built_to_explode_reads_exploding():
    torch.manual_seed(0)
    s = _gsc(_rows(CenteredAbsChain(blocks=8)))
    assert signal.gsc_reading(s["gsc_rate"]) == "exploding"
    assert s["gsc_rate"] == pytest.approx(EXPLODE_RATE, rel=0.15)


def test_positive_control_built_to_vanish_reads_vanishing():
    torch.manual_seed(0)
    s = _gsc(_rows(OrderedChain(blocks=8, a=0.5)))
    assert signal.gsc_reading(s["gsc_rate"]) == "vanishing"
    assert s["gsc_rate"] == pytest.approx(0.5, rel=0.15)


def test_a_bn_resnet_at_init_reads_neither():
    torch.manual_seed(0)
    assert signal.gsc_reading(_gsc(_rows(build("resnet", depth=20)))["gsc_rate"]) == "neither"


@pytest.mark.parametrize(
    "rate, expected",
    [
        (0.5, "vanishing"),
        (1 / signal.GSC_RATE_BAND - 1e-3, "vanishing"),
        (1.0, "neither"),
        (signal.GSC_RATE_BAND - 1e-3, "neither"),
        (signal.GSC_RATE_BAND + 1e-3, "exploding"),
        (math.nan, "n/a"),
    ],
)
def test_gsc_readings_use_a_two_sided_band_on_the_per_block_rate(rate, expected):
    assert signal.gsc_reading(rate) == expected


def test_the_rate_band_is_the_ratio_band_over_a_depth_20_net():
    assert signal.GSC_RATE_BAND**9 == pytest.approx(signal.BAND)


def _probe(family, depth, control, statistic, g, a, seed=0):
    return [
        {
            "family": family,
            "norm": "none",
            "depth": depth,
            "init_scale": 1.0,
            "control": control,
            "control_statistic": statistic,
            "init_seed": seed,
            "block": i,
            "grad_rms": gi,
            "act_rms": ai,
            "elements": 64,
            "rel_depth": i / (len(g) - 1),
        }
        for i, (gi, ai) in enumerate(zip(g, a))
    ]


def test_report_reads_both_statistics_and_checks_each_control_by_its_own():
    """A net whose gradient grows 100x toward the input while its activations shrink 100x: the ratio says
    exploding, the GSC (relative terms) neither. The ratio's control is checked by the ratio, the GSC's by the GSC,
    whichever statistic the readings use."""
    rows = pd.DataFrame(
        _probe("plain", 20, "", "", [100, 10, 1], [0.01, 0.1, 1])
        + _probe("plain", 20, "exploding", "ratio", [1e3, 1, 1e-3], [1e-3, 1, 1e3])
        + _probe("control-explode", 2, "exploding", "gsc", [4, 2, 1], [1, 1, 1])
    )
    for statistic in flow.READING_STATISTICS:
        r = flow.signal_readings(flow.signal_summary(rows), statistic)
        net, control = r[~r.control.astype(bool)].iloc[0], r[r.family == "control-explode"].iloc[0]
        assert net.ratio_reading == "exploding" == control.gsc_reading
        assert net.gsc_reading == "neither" and net.gsc_median == pytest.approx(1.0)
        assert net.reading == net[f"{statistic}_reading"]
        assert control.gsc_rate_median == pytest.approx(2.0)
        assert r[r.control.astype(bool)].as_expected.all()


def test_report_reads_the_gsc_rate_since_the_amendment_of_2026_12_04():
    # experiments/depth.md, amendment of 2026-12-04: fixed before the GSC readings of the study's nets; the switch
    # came with the rerun of `make grad-flow` and the rebuilt depth report.
    assert flow.READING_STATISTIC == "gsc"


def test_rows_without_activations_give_no_gsc_and_keep_the_ratio_reading_in_its_own_column():
    # Rows of reslab-gradflow from before the GSC: no GSC, so under the amendment's statistic no reading ("n/a");
    # the ratio, which decides nothing since the amendment of 2026-12-04, still reads them in its column.
    rows = pd.DataFrame(_probe("plain", 20, "", "", [100, 10, 1], [1, 1, 1])).drop(
        columns=["act_rms", "elements", "control_statistic"]
    )
    r = flow.signal_readings(flow.signal_summary(rows)).iloc[0]
    assert math.isnan(r.gsc_rate_median) and r.gsc_reading == "n/a" == r.reading
    assert r.ratio_reading == "exploding"
    assert flow.signal_readings(flow.signal_summary(rows), "ratio").iloc[0].reading == "exploding"


def test_the_report_table_shows_both_statistics_and_every_control_checked(tmp_path):
    rows = pd.DataFrame(
        _probe("plain", 20, "", "", [100, 10, 1], [0.01, 0.1, 1])
        + _probe("plain", 8, "vanishing", "ratio", [1e-3, 1, 1e3], [1, 1, 1])
        + _probe("control-explode", 2, "exploding", "gsc", [4, 2, 1], [1, 1, 1])
        + _probe("control-vanish", 2, "vanishing", "gsc", [0.25, 0.5, 1], [1, 1, 1])
    ).assign(batches=1, batch_size=8)
    rows.to_csv(tmp_path / "signal.csv", index=False)
    lines, readings = flow.signal_section(tmp_path / "signal.csv", tmp_path)
    text = "\n".join(lines)
    assert "| GSC per block, median [min, max] | whole-net GSC | GSC reading | ratio median [min, max]" in text
    for statistic, built in (("ratio", "vanishing"), ("gsc", "exploding"), ("gsc", "vanishing")):
        assert text.count(f"expected {built} ({statistic}): **correct**") == 1
    assert "All positive controls are read as built" in text and "are controls of the ratio only" in text
    assert "readings used below are those of the per-block GSC rate" in text  # the amendment of 2026-12-04
