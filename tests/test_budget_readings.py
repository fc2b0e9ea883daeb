"""Readings of other studies that depended on the 800-iteration budget (issue 24, item 5) say so, computed from the
runs: the exclusive gate at b_g = -6 states how closed it starts and that the ladder does not measure its budget
share."""

from __future__ import annotations

import math

import pandas as pd
import yaml

from reslab.report import paired, shortcut


def gated_run(tmp_path, name, gate, bias):
    d = tmp_path / name
    d.mkdir()
    (d / "config.yaml").write_text(yaml.safe_dump({"model": {"gate": gate, "gate_bias": bias}}))
    return {"label": name, "run_dir": str(d), "steps_planned": 800}


def contrast(worse, mean):
    c = paired.paired("x", "test_error", worse, "identity-A-20", {0: mean, 1: mean + 1}, {0: 0.0, 1: 0.0})
    c.name = f"{worse} vs identity"
    return c


def test_a_nearly_closed_exclusive_gate_reads_as_a_budget_question_the_ladder_does_not_answer(tmp_path):
    df = pd.DataFrame(
        [
            gated_run(tmp_path, "gate-exclusive-b-6-20", "exclusive", -6.0),
            gated_run(tmp_path, "gate-exclusive-b0-20", "exclusive", 0.0),
            gated_run(tmp_path, "gate-shortcut-b-6-20", "shortcut", -6.0),
        ]
    )
    lines = shortcut.gate_budget_lines(df, [contrast(n, 20.0) for n in df.label])
    assert len(lines) == 1, "only the exclusive gate that starts nearly closed"
    assert f"sigmoid(-6) = {1 / (1 + math.exp(6)):.4f}" in lines[0] and "has 800 iterations to open them" in lines[0]
    assert "the budget ladder trains no gated net" in lines[0] and "at the ladder's top rung" in lines[0]
