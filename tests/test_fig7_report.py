"""Fig. 7 in the reports (issue 25): near-constant channels masked, a linear axis with seed bands, and the ordering
of residual and plain responses read with its confidence interval, not from three means."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reslab.report import flow, plots


def _responses(values: dict[str, list[list[float]]], masked: bool = True) -> pd.DataFrame:
    """{label: per seed, per layer response} -> the rows of responses.csv as the reports load them."""
    rows = []
    for label, seeds in values.items():
        for seed, layers in enumerate(seeds):
            for layer, v in enumerate(layers):
                row = {"label": label, "seed": seed, "layer": layer, "name": f"l{layer}", "std": v, "std_median": v}
                row |= {"channels": 16, "images": 100, "bn": "recalibrated"}
                if masked:
                    row |= {"std_masked": v, "masked": 0, "gamma_abs_median": v}
                rows.append(row)
    return pd.DataFrame(rows)


def _text(resp, tmp_path, labels=None) -> str:
    labels = labels or sorted(set(resp.label), key=lambda l: (int(l.split("-")[1]), l))
    return "\n".join(flow.response_section(resp, labels, tmp_path, "responses.png"))


def test_a_residual_net_clearly_below_its_plain_twin_at_every_seed_reads_the_papers_ordering(tmp_path):
    resp = _responses(
        {
            "plain-20": [[1.0, 1.0, 1.0], [1.1, 1.1, 1.1], [0.9, 0.9, 0.9]],
            "resnet-20": [[0.5, 0.5, 0.5], [0.61, 0.61, 0.61], [0.39, 0.39, 0.39]],
        }
    )
    text = _text(resp, tmp_path)
    assert "resnet-20 − plain-20: -0.5 [" in text and "*residual smaller*" in text
    assert "The paper's Fig. 7 ordering holds at the one depth compared, each interval below 0." in text
    assert (tmp_path / "responses.png").stat().st_size > 0


def test_differences_of_a_few_hundredths_that_change_sign_across_seeds_are_not_resolved(tmp_path):
    # The case: medians near 1 that differ by about 0.01, no CI. The interval over seeds contains 0.
    resp = _responses(
        {
            "plain-20": [[0.96] * 3, [0.97] * 3, [0.98] * 3],
            "resnet-20": [[0.95] * 3, [0.98] * 3, [0.97] * 3],
            "plain-56": [[0.95] * 3, [0.96] * 3, [0.97] * 3],
            "resnet-56": [[0.97] * 3, [0.95] * 3, [0.96] * 3],
        }
    )
    text = _text(resp, tmp_path)
    assert text.count("seeds, *not resolved at this budget*") == 2
    assert "is not resolved at this budget at 2: whether it holds is not resolved by these runs" in text
    assert "does not hold throughout" not in text
    # The distance of the BN scales from their initial 1 is stated from the same numbers.
    moved = np.median(np.abs(resp.std_masked - 1))
    assert f"moved from their initial 1 by a median of {moved:.3g}" in text


def test_one_nets_outlying_layers_stay_off_the_linear_axis_and_are_named(tmp_path):
    resp = _responses({"plain-110": [[1.0, 2e3, 1.0, 1.0]] * 3, "resnet-110": [[0.9, 0.9, 0.9, 0.9]] * 3})
    bands = plots.response_bands(resp, ["plain-110", "resnet-110"])
    top = plots.response_axis_top(bands)
    assert top == plots.RESPONSE_AXIS_TOP * 0.95  # 3 x the median of the drawn layers, far below 2e3
    text = _text(resp, tmp_path)
    # Named with the BN scale of those layers: a large learned |gamma| reads as a large response (recalibrated BN).
    assert "Off the axis: plain-110, 1 of 4 layers (largest 2e+03; median |gamma| of those layers 2e+03)." in text
    # No channel masked in any run: said outright, so the outliers are not read as masked-away channels.
    assert "No channel of any run drawn meets the masking rule" in text
    resp.loc[resp.index[0], "masked"] = 1
    assert "No channel of any run drawn meets the masking rule" not in _text(resp, tmp_path)


def test_runs_from_before_the_masking_fall_back_to_the_median_over_channels_and_say_so(tmp_path):
    resp = _responses({"plain-20": [[1.0, 1.0]] * 2, "resnet-20": [[0.9, 0.9]] * 2}, masked=False)
    resp["std"] = 500.0  # one near-constant channel per layer inflates the mean over channels, not the median
    assert plots.response_column(resp) == "std_median"
    text = _text(resp, tmp_path)
    assert "predate the masking of near-constant channels" in text and "per layer the median over channels" in text
    assert "| plain-20 | 1 [1, 1] | not recorded | 500 |" in text


def test_the_masked_mean_is_read_where_every_run_records_it():
    resp = _responses({"plain-20": [[1.0]]})
    assert plots.response_column(resp) == "std_masked"
    mixed = pd.concat([resp, _responses({"resnet-20": [[1.0]]}, masked=False)])
    assert plots.response_column(mixed) == "std_median", "one statistic for every net drawn"


def test_a_net_listed_twice_is_drawn_and_read_once(tmp_path):
    # A study of one depth lists it as both its shallowest and its deepest net (reslab.report.depth.fig7_labels).
    resp = _responses({"plain-8": [[1.0], [1.1]], "resnet-8": [[0.5], [0.6]]})
    text = _text(resp, tmp_path, ["plain-8", "plain-8", "resnet-8", "resnet-8"])
    assert text.count("| plain-8 |") == 1 and text.count("resnet-8 − plain-8:") == 1
