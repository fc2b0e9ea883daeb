"""`key=value` options of the small command-line tools (reslab-report, reslab-reprobe)."""

from __future__ import annotations

from reslab.errors import ReslabError


def parse(overrides: list[str], defaults: dict[str, str]) -> dict[str, str]:
    """`defaults` updated by `key=value` strings; an unknown key or a missing `=` is a one-line error."""
    opts = dict(defaults)
    for o in overrides:
        k, sep, v = o.partition("=")
        if not sep or k not in opts:
            raise ReslabError(f"bad override {o!r}; valid: " + ", ".join(f"{k}=..." for k in opts))
        opts[k] = v
    return opts
