"""The reports' long prose, as Markdown beside the code that fills it in (`string.Template`: `${name}`).

A template is written wrapped for reading; `fill` joins the lines of each paragraph with single spaces, so a
paragraph is one line of the report as before, and keeps blank lines between paragraphs. Numbers never live here:
they are passed in by the section that computed them."""

from __future__ import annotations

from pathlib import Path
from string import Template

HERE = Path(__file__).parent


def fill(name: str, **values) -> str:
    """The template `name` (a path under this folder), unwrapped, with `values` substituted (all must be given)."""
    text = (HERE / name).read_text().strip("\n")
    paragraphs = [" ".join(line.strip() for line in p.split("\n")) for p in text.split("\n\n")]
    return Template("\n\n".join(paragraphs)).substitute(values)
