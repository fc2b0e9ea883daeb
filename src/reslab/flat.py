"""Nested dicts as dotted keys ("model.depth", "profile.lr"): one flattener for the config a run logs to W&B, the
items of the offline W&B runs, and the recipe a report compares across runs."""

from __future__ import annotations


def flatten(value, prefix: str = "", keep_empty: bool = True) -> dict:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}` (under `prefix.` if given). An empty dict is a value of its own
    (`keep_empty`), or, for a comparison of recipes where an empty section means no setting, nothing."""
    if isinstance(value, dict) and value:
        out: dict = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k), keep_empty))
        return out
    if isinstance(value, dict) and (not keep_empty or not prefix):
        return {}
    return {prefix: value}
