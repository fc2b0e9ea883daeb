"""`reslab-report <study> [profile=cpu] [runs=runs] [reports=reports] [name=<study>]`: build reports/<name>/
from runs/<name>/<profile>/ with the report of <study> (name= lets a pilot, e.g. depth-pilot, use it).

A pilot's report (a name with "-pilot") goes to reports/archive/<name>/: it sized and fixed a plan and decides
nothing, so it stays on the record beside the superseded reports, out of the way of the live ones; its relative
links are adjusted to the extra folder."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from reslab import io, options
from reslab.errors import bad_choice, one_line_errors
from reslab.report import markdown

PILOT, ARCHIVE = "-pilot", "archive"

STUDIES = (
    "depth",
    "shortcut",
    "block",
    "descendants",
    "head",
    "budget",
    "budget-pilot",
    "zero-init",
    "lesion",
    "convergence",
    "imagenet",
)  # imagenet: counted from the models, no runs


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="reslab-report", description=__doc__)
    ap.add_argument("study")
    ap.add_argument("overrides", nargs="*", help="profile=..., runs=..., reports=...")
    a = ap.parse_args(argv)
    if a.study not in STUDIES:
        raise bad_choice("study", a.study, STUDIES)
    module = importlib.import_module(f"reslab.report.{a.study.replace('-', '_')}")
    own = getattr(module, "OPTIONS", {})  # a study's own options, e.g. budget's control=
    default_profile = "budget" if a.study.startswith("budget") or a.study == "lesion" else "cpu"
    opts = options.parse(
        a.overrides, {"profile": default_profile, "runs": "runs", "reports": "reports", "name": a.study, **own}
    )
    extra = {"study": opts["name"]} if opts["name"] != a.study else {}
    extra |= {k: opts[k] for k in own if opts[k] is not None}
    pilot = PILOT in opts["name"]
    reports = Path(opts["reports"]) / ARCHIVE if pilot else Path(opts["reports"])
    path = module.build(opts["runs"], reports, opts["profile"], **extra)
    if pilot:  # written for reports/<name>/: one folder deeper now
        io.write_text(path, markdown.relink(path.read_text(), 1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
