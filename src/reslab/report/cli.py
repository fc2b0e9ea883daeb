"""`reslab-report <study> [profile=cpu] [runs=runs] [reports=reports] [name=<study>]`: build reports/<name>/
from runs/<name>/<profile>/ with the report of <study> (name= lets a pilot, e.g. depth-pilot, use it)."""

from __future__ import annotations

import argparse
import importlib

from reslab import options
from reslab.errors import bad_choice, one_line_errors

STUDIES = ("depth", "shortcut", "block")


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="reslab-report", description=__doc__)
    ap.add_argument("study")
    ap.add_argument("overrides", nargs="*", help="profile=..., runs=..., reports=...")
    a = ap.parse_args(argv)
    if a.study not in STUDIES:
        raise bad_choice("study", a.study, STUDIES)
    opts = options.parse(a.overrides, {"profile": "cpu", "runs": "runs", "reports": "reports", "name": a.study})
    module = importlib.import_module(f"reslab.report.{a.study}")
    extra = {"study": opts["name"]} if opts["name"] != a.study else {}
    path = module.build(opts["runs"], opts["reports"], opts["profile"], **extra)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
