"""Where a sweep's wall time goes, from the files its runs left: the span from the first run's start to the last
run's end, the runs' pure training time, their final evaluation, what else they did inside the run (probes after
training, saving), and how full the parallel lanes were.

A run's own span is environment.json (written when its training sets up, after the data are loaded) to result.json
(its last write). `wall_seconds` is Lightning's fit and `eval_seconds` the final evaluation; the rest of the run's
span is the work after training (Fig. 7 responses, predictions, weights) and model set-up. Lanes are the most runs
that overlapped in time; lane time outside every run's span is process start-up, imports and data loading, and any
idle tail when fewer runs than lanes are left."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class SweepTime:
    runs: int
    lanes: int  # the most runs that were in flight at once
    span: float  # s, first run's start to last run's end
    training: float  # s, summed over runs
    evaluation: float  # s, summed over runs (final evaluation on the eval set)
    in_run: float  # s, summed spans of the runs (training + evaluation + the rest)

    @property
    def other(self) -> float:
        """Summed in-run time that is neither training nor the final evaluation (probes after training, saving)."""
        return max(0.0, self.in_run - self.training - self.evaluation)

    @property
    def outside(self) -> float:
        """Lane time outside every run: start-up, imports, data loading, an idle tail."""
        return max(0.0, self.span * self.lanes - self.in_run)

    @property
    def per_lane_ratio(self) -> float:
        """Wall time over the training time each lane would need if it only trained (1.0: nothing but training)."""
        return self.span / (self.training / self.lanes) if self.training else float("nan")

    @property
    def summed_ratio(self) -> float:
        """Wall time over the summed training time of the runs (below 1 when runs overlap)."""
        return self.span / self.training if self.training else float("nan")


IDLE_SPLIT = 600.0  # s with no run in flight: what follows is another sweep (another day, another arm)


def run_times(results: pd.DataFrame) -> list[tuple[float, float, float, float, int]]:
    """(start, end, training s, evaluation s, row position) of every run that left both files."""
    rows = []
    for i, (_, r) in enumerate(results.iterrows()):
        env, res = Path(r.run_dir) / "environment.json", Path(r.run_dir) / "result.json"
        if env.is_file() and res.is_file():
            ev = r.get("eval_seconds")
            rows.append(
                (
                    env.stat().st_mtime,
                    res.stat().st_mtime,
                    float(r.get("wall_seconds") or 0.0),
                    float(ev) if pd.notna(ev) else 0.0,
                    i,
                )
            )
    return rows


def split(results: pd.DataFrame, idle: float = IDLE_SPLIT) -> list[pd.DataFrame]:
    """A study's runs as the sweeps that trained them: a run that starts more than `idle` seconds after every earlier
    run has ended begins a new sweep (a study's arms and pilots run on different days into one directory)."""
    groups: list[list[int]] = []
    last_end = None
    for start, end, _, _, i in sorted(run_times(results)):
        if last_end is None or start > last_end + idle:
            groups.append([])
        groups[-1].append(i)
        last_end = end if last_end is None else max(last_end, end)
    return [results.iloc[g] for g in groups]


def measure(results: pd.DataFrame) -> SweepTime | None:
    """The sweep's time budget, or None if the runs lack the files or the timings."""
    rows = run_times(results)
    if not rows:
        return None
    start, end = min(r[0] for r in rows), max(r[1] for r in rows)
    return SweepTime(
        runs=len(rows),
        lanes=max_overlap([(r[0], r[1]) for r in rows]),
        span=end - start,
        training=sum(r[2] for r in rows),
        evaluation=sum(r[3] for r in rows),
        in_run=sum(r[1] - r[0] for r in rows),
    )


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    # An end sorts before a start at the same instant: back-to-back runs on one lane are not counted twice.
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, d in events:
        now += d
        most = max(most, now)
    return max(1, most)


def lines(results: pd.DataFrame) -> list[str]:
    """The report's sweep-time lines, one pair per sweep that trained the runs (none if they lack the files)."""
    parts = split(results)
    out = []
    for i, part in enumerate(parts, 1):
        out += sweep_lines(
            part,
            f" ({i} of {len(parts)}, split where no run was in flight for {IDLE_SPLIT / 60:.0f}+ min)"
            if len(parts) > 1
            else "",
        )
    return out


def sweep_lines(results: pd.DataFrame, which: str) -> list[str]:
    t = measure(results)
    if t is None:
        return []
    m = lambda s: f"{s / 60:.1f} min"  # noqa: E731
    pct = lambda s: f"{100 * s / (t.span * t.lanes):.0f}%"  # noqa: E731
    return [
        f"- Sweep{which} wall time: {m(t.span)} from the first run's start to the last run's end (file times of "
        f"environment.json and result.json), {t.runs} runs, up to {t.lanes} at once; {t.summed_ratio:.2f}x their "
        f"summed training time ({m(t.training)}), {t.per_lane_ratio:.2f}x the training time per lane "
        f"({m(t.training / t.lanes)}: what the sweep would take if every lane only trained).",
        f"- Where the lane time ({t.lanes} x {m(t.span)}) went: training {pct(t.training)}, final evaluation "
        f"{pct(t.evaluation)}, other work inside the runs (Fig. 7 responses, saving, set-up) {pct(t.other)}, outside "
        f"the runs (process start-up, imports, data loading, idle tail) {pct(t.outside)}.",
    ]
