"""Published numbers (copied from shared/reference/published.csv, sources in every row) and the
rule for when ours may be set against them."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def load() -> pd.DataFrame:
    with resources.files("reslab.report").joinpath("published.csv").open() as f:
        return pd.read_csv(f, dtype=str)


def lookup(
    table: pd.DataFrame,
    *,
    model: str,
    depth: int,
    variant: str | None = None,
    source: str | None = None,
    tab: str | None = None,
    dataset: str = "CIFAR-10",
    metric: str = "test_error_pct",
) -> pd.Series | None:
    rows = table[
        (table.model == model) & (table.depth == str(depth)) & (table.dataset == dataset) & (table.metric == metric)
    ]
    if variant is not None:
        rows = rows[rows.variant == variant]
    if source is not None:
        rows = rows[rows.source == source]
    if tab is not None:
        rows = rows[rows.table == tab]
    return rows.iloc[0] if len(rows) else None


def cite(row: pd.Series) -> str:
    return f"{row.source} {row.table}" + (f" ({row.note})" if isinstance(row.note, str) and row.note else "")


def comparability(profile: str, data_checksum: str, data_format: str) -> str | None:
    """None when our runs are like-for-like with the paper; otherwise why they are not."""
    from reslab.data.source import OFFICIAL_MD5

    reasons = []
    if profile != "paper":
        reasons.append(f"the {profile} profile is not the paper's 64k-iteration recipe")
    if data_checksum != OFFICIAL_MD5:
        reasons.append(
            "the data copy is not the official CIFAR-10 files"
            + (" (JPEG re-encoding costs several points of test error)" if data_format == "image-folder" else "")
        )
    return "; ".join(reasons) or None


def as_float(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
