"""`python -m reslab.analysis.lesion_run <run dir>... [images=1000 draws=10 kmax=10 samples=5 data=<cifar10 source>]`:
the lesion study (reslab.probes.lesion; experiments/lesion.md) on finished runs' saved weights, inference only.

Each run gets three files beside its results, written once (a run that has them is skipped, so an interrupted
pass resumes): lesion_single.csv (each deletable block deleted alone), lesion_random.csv (k random blocks deleted,
`draws` draws per k) and, for residual nets, lesion_paths.csv (the gradient per path length) and branch_ratios.csv
(||F(x)|| / ||h(x)|| per block: do unneeded blocks become identities?). The images are the
first `images` of the run's eval set (the test set for a run of the test split), the same for every run.
`reslab-report lesion` reads them."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd
import torch

from reslab import io, options
from reslab.analysis.input_sizes import error_pct, load_run
from reslab.errors import ReslabError, one_line_errors
from reslab.probes import lesion

# 1,000 images and 10 draws: experiments/lesion.md, amendment of 2026-12-04 (the plan's 2,000 and 20 cost ~1.5 h of both
# cores for the 12 nets, four times this).
DEFAULTS = {"images": "1000", "draws": "10", "kmax": "10", "samples": "5", "data": "", "seed": "0"}
FILES = ("lesion_single.csv", "lesion_random.csv")
PATHS = "lesion_paths.csv"
RATIOS = "branch_ratios.csv"
PATH_IMAGES = 128  # images per gradient sample: the gradient's size, not an error rate, is read


def lesion_one(run: Path, opts: dict) -> dict:
    model, x, y = load_run(run, opts["data"] or None)
    n = int(opts["images"])
    x, y = x[:n], y[:n]
    seed = int(opts["seed"])
    intact = error_pct(model, x, y)
    # Each row says on how many images and in how many draws it was measured, so the report states what was run.
    single = pd.DataFrame(lesion.single(model, x, y)).assign(intact_error=intact, images=len(y))
    rand = pd.DataFrame(lesion.random_k(model, x, y, range(1, int(opts["kmax"]) + 1), int(opts["draws"]), seed))
    rand = rand.assign(images=len(y), draws=int(opts["draws"]))
    out = {
        "run": str(run),
        "intact_error": intact,
        "blocks": len(lesion.blocks(model)),
        "deletable": len(lesion.deletable(model)),
    }
    if not any(b.plain for b in lesion.blocks(model)):
        paths = pd.DataFrame(lesion.path_gradients(model, x[:PATH_IMAGES], y[:PATH_IMAGES], int(opts["samples"]), seed))
        io.save_with(run / PATHS, lambda f: paths.to_csv(f, index=False))
        out["effective_lengths"] = lesion.effective_lengths(paths.to_dict("records"))
        ratios = pd.DataFrame(lesion.branch_ratios(model, x))
        io.save_with(run / RATIOS, lambda f: ratios.to_csv(f, index=False))
    # The two files that mark a run done, last: an interrupted pass redoes the run.
    io.save_with(run / FILES[1], lambda f: rand.assign(intact_error=intact).to_csv(f, index=False))
    io.save_with(run / FILES[0], lambda f: single.to_csv(f, index=False))
    return out


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m reslab.analysis.lesion_run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("runs", nargs="+", help="finished runs' directories (with model.pt); key=value options after them")
    a = ap.parse_args(argv)
    dirs = [r for r in a.runs if "=" not in r]
    opts = options.parse([r for r in a.runs if "=" in r], DEFAULTS)
    for key in ("images", "draws", "kmax", "samples", "seed"):
        if not opts[key].isdigit() or (key != "seed" and int(opts[key]) < 1):
            raise ReslabError(f"{key}={opts[key]!r} is not valid; valid: an integer >= 1")
    missing = [d for d in dirs if not (Path(d) / "model.pt").is_file()]
    if missing:
        raise ReslabError(
            f"run={missing[0]!r} has no model.pt; valid: the directory of a finished run with its weights"
        )
    torch.set_num_threads(max(1, torch.get_num_threads()))
    start = time.time()
    for i, d in enumerate(dirs, 1):
        run = Path(d)
        if all((run / f).is_file() for f in FILES):
            print(f"[{i}/{len(dirs)}] {run}: done before, skipped", flush=True)
            continue
        out = lesion_one(run, opts)
        left = (time.time() - start) / i * (len(dirs) - i)
        print(f"[{i}/{len(dirs)}] " + json.dumps(out) + f" | ETA {left / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
