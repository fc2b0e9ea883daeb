"""A sweep's wall time is accounted for from its runs' files: span, lanes, training, evaluation, the rest."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from reslab.report import sweep_time


def fake_runs(tmp_path, spans):
    """Run dirs whose environment.json / result.json carry the given (start, end) file times."""
    rows = []
    for i, (start, end, wall, ev) in enumerate(spans):
        d = tmp_path / f"r{i}"
        d.mkdir()
        for name, t in (("environment.json", start), ("result.json", end)):
            (d / name).write_text("{}")
            os.utime(d / name, (t, t))
        rows.append({"run_dir": str(d), "wall_seconds": wall, "eval_seconds": ev})
    return pd.DataFrame(rows)


def test_two_lanes_of_back_to_back_runs(tmp_path):
    # Lane 1: 0-100, 100-200; lane 2: 10-110. Each run trains 80 s and evaluates 10 s.
    runs = fake_runs(tmp_path, [(1000, 1100, 80, 10), (1100, 1200, 80, 10), (1010, 1110, 80, 10)])
    t = sweep_time.measure(runs)
    assert t.lanes == 2  # back-to-back runs on one lane are not an overlap
    assert t.span == pytest.approx(200)
    assert t.training == pytest.approx(240) and t.evaluation == pytest.approx(30)
    assert t.other == pytest.approx(300 - 240 - 30)
    assert t.outside == pytest.approx(2 * 200 - 300)
    assert t.per_lane_ratio == pytest.approx(200 / 120)
    assert t.summed_ratio == pytest.approx(200 / 240)


def test_the_report_lines_split_the_whole_lane_time(tmp_path):
    runs = fake_runs(tmp_path, [(0, 100, 60, 20), (0, 90, 60, 20)])
    text = "\n".join(sweep_time.lines(runs))
    assert "up to 2 at once" in text
    shares = [int(s) for s in pd.Series(text.split("%")).str.extract(r"(\d+)$")[0].dropna()]
    assert sum(shares) == pytest.approx(100, abs=2)  # training + evaluation + in-run rest + outside


def test_runs_without_their_files_give_no_lines(tmp_path):
    assert (
        sweep_time.lines(
            pd.DataFrame({"run_dir": [str(tmp_path / "gone")], "wall_seconds": [1.0], "eval_seconds": [1.0]})
        )
        == []
    )


def test_runs_of_one_study_trained_on_different_days_are_separate_sweeps(tmp_path):
    # A pilot's main arm (two lanes, 0-200) and, a day later, its large arm (86,400 on): one study directory, two
    # sweeps; the day between them is neither sweep's wall time.
    day = 86_400
    runs = fake_runs(
        tmp_path, [(0, 100, 80, 10), (10, 200, 150, 10), (day, day + 300, 250, 20), (day + 5, day + 290, 250, 20)]
    )
    first, second = sweep_time.split(runs)
    assert len(first) == 2 and len(second) == 2
    assert sweep_time.measure(first).span == pytest.approx(200)
    assert sweep_time.measure(second).span == pytest.approx(300)
    text = "\n".join(sweep_time.lines(runs))
    assert "Sweep (1 of 2, split where no run was in flight for 10+ min) wall time: 3.3 min" in text
    assert "Sweep (2 of 2, split where no run was in flight for 10+ min) wall time: 5.0 min" in text
    # Runs within the idle limit of each other stay one sweep.
    (tmp_path / "near").mkdir()
    assert len(sweep_time.split(fake_runs(tmp_path / "near", [(0, 100, 80, 10), (500, 600, 80, 10)]))) == 1
