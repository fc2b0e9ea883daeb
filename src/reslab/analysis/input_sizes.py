"""A trained net's error at other input sizes: its eval images (the test set, for a run of the test split)
centre-cropped to 24x24, as they are (32x32), and zero-padded to 40x40.

`python -m reslab.analysis.input_sizes <run dir> [sizes=24,32,40] [data=<cifar10 source>]` prints one JSON line per
size, read from the run's config.yaml and model.pt (data= where the run's data source has moved).
`python -m reslab.analysis.input_sizes --write <study dir>` (runs/<study>/<profile>) does it for every finished run
with weights and writes each run's input_sizes.json (SIZES), which the head report reads (reslab.report.head); a run
that has one is skipped.

It tests "global average pooling lets the input size vary" (issue 26): a GAP head has no weight tied to the
feature map's size, so the net runs at any size; a flatten head's linear layer reads one feature-map shape, so the
net refuses any other input size in one line (reslab.errors.InputSizeError). A refusal is that size's outcome, not
the tool's failure: its row carries the line (`refused`) instead of an error rate.

At the size the net was trained at (32x32, "as trained") the row is the run's own final evaluation (result.json's
test_error: the same net, images and normalisation), not a second pass over the same images; `--write` loads the
data once per source for all the study's runs.

Order of operations: normalise at 32x32 as the run did (the paper's per-pixel mean is a 32x32 image), then crop or
pad. Padding adds zeros after normalisation, i.e. the training mean, as the training augmentation's 4-pixel padding
does (reslab.data.loader.random_crop_flip), so a padded border is what the net saw at the edges in training.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from reslab import io, options
from reslab.errors import InputSizeError, ReslabError, one_line_errors
from reslab.probes.curves import error_pct

SIZES = (24, 32, 40)
SIZES_FILE = "input_sizes.json"  # a run's errors at SIZES (`--write`), read by reslab.report.head


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size window of (N, C, H, W) images (the extra row/column, if odd, is cut at the end)."""
    h, w = x.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"cannot crop {h}x{w} images to {size}x{size}")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def zero_pad(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) images in the middle of a size x size field of zeros (the extra row/column, if odd, at the end)."""
    h, w = x.shape[-2:]
    if size < max(h, w):
        raise ValueError(f"cannot pad {h}x{w} images to {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top))


def resize(x: torch.Tensor, size: int) -> tuple[torch.Tensor, str]:
    """The images at size x size, and how they got there: centre crop, as they are, or zero pad."""
    side = x.shape[-1]
    if size < side:
        return centre_crop(x, size), "centre crop"
    if size > side:
        return zero_pad(x, size), "zero pad"
    return x, "as trained"


def errors_at_sizes(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, sizes=SIZES, known: dict[int, float] | None = None
) -> list[dict]:
    """One row per size: the images' transform and the error in %, or the net's one-line refusal. `known`: errors
    already measured on these images at a size (the run's final evaluation at its own size), used as they are."""
    rows = []
    for size in sizes:
        xs, how = resize(x, int(size))
        row = {"size": int(size), "transform": how}
        if known and int(size) in known:
            row["test_error"] = float(known[int(size)])
            row["from"] = "the run's final evaluation (result.json)"
            rows.append(row)
            continue
        try:
            row["test_error"] = error_pct(model, xs, y)
        except InputSizeError as refusal:
            row["refused"] = str(refusal)
        rows.append(row)
    return rows


def load_run(run: Path, source: str | None = None) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A finished run's net (config.yaml + model.pt) and its eval images, normalised as in training."""
    from reslab.data.loader import Normalizer, split_arrays
    from reslab.models import build_model

    run = Path(run)
    if not (run / "config.yaml").is_file() or not (run / "model.pt").is_file():
        raise ReslabError(
            f"run={str(run)!r} has no config.yaml and model.pt; valid: the directory of a finished run "
            "trained with trainer.save_weights=true"
        )
    cfg = OmegaConf.load(run / "config.yaml")
    model = build_model(cfg.model)
    model.load_state_dict(torch.load(run / "model.pt", map_location="cpu", weights_only=True))
    arrays = _arrays(str(source or cfg.data.source), str(cfg.data.cache_dir))
    tx, _, ex, ey, _ = split_arrays(
        arrays, cfg.data.split, cfg.profile.get("train_subset"), cfg.profile.get("eval_subset"), cfg.data.subset_seed
    )
    return model, Normalizer.fit(tx, cfg.data.normalize)(ex), ey.long()


@functools.lru_cache(maxsize=2)
def _arrays(source: str, cache_dir: str):
    """The decoded data of a source, loaded once per process (a study's runs share it)."""
    from reslab.data import load_cifar10

    return load_cifar10(source, cache_dir, False)


def study_runs(study_dir: Path) -> list[Path]:
    """The finished runs with weights under runs/<study>/<profile>/ (not a sweep record, a pending or superseded
    attempt)."""
    return sorted(
        p
        for p in Path(study_dir).iterdir()
        if (p / "result.json").is_file()
        and (p / "model.pt").is_file()
        and not p.name.startswith("_")
        and not p.name.endswith(".next")
        and ".stale-" not in p.name
    )


def trained_error(run: Path, x: torch.Tensor) -> dict[int, float]:
    """{the side the run was trained and evaluated at: its final test error}, from its result.json, when that
    evaluation covered exactly these images (a diverged run has none: it is measured here instead)."""
    result = io.read_json(Path(run) / "result.json")
    err, n = result.get("test_error"), result.get("eval_images")
    if result.get("status") != "ok" or err is None or (n is not None and int(n) != len(x)):
        return {}
    return {int(x.shape[-1]): float(err)}


def write_sizes(study_dir: Path, sizes=SIZES, source: str | None = None) -> list[Path]:
    """Each run's input_sizes.json, for the runs that lack one; run i of N on stdout."""
    todo = [r for r in study_runs(study_dir) if not (r / SIZES_FILE).is_file()]
    for i, run in enumerate(todo, 1):
        model, x, y = load_run(run, source)
        rows = errors_at_sizes(model.eval(), x, y, sizes, known=trained_error(run, x))
        io.write_text(run / SIZES_FILE, json.dumps(rows, indent=1) + "\n")
        print(f"[sizes {i}/{len(todo)}] {run.name}", flush=True)
    return todo


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m reslab.analysis.input_sizes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "run", help="a finished run's directory, e.g. runs/adhoc/cpu/resnet-20-s0 (with --write: a study's)"
    )
    ap.add_argument("--write", action="store_true", help="every run of a study dir: write its input_sizes.json")
    ap.add_argument("overrides", nargs="*", help="sizes=24,32,40, data=<cifar10 source>")
    a = ap.parse_args(argv)
    opts = options.parse(a.overrides, {"sizes": ",".join(map(str, SIZES)), "data": ""})
    try:
        sizes = [int(s) for s in opts["sizes"].split(",") if s]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ReslabError(f"sizes={opts['sizes']!r} is not valid; valid: a comma-separated list of image sides >= 1")
    if a.write:
        if not Path(a.run).is_dir():
            raise ReslabError(f"run={a.run!r} is not a directory; valid with --write: a study dir, e.g. runs/head/cpu")
        write_sizes(Path(a.run), sizes, opts["data"] or None)
        return
    model, x, y = load_run(Path(a.run), opts["data"] or None)
    for row in errors_at_sizes(model, x, y, sizes):
        print(json.dumps({"run": str(a.run), **row}), flush=True)


if __name__ == "__main__":
    main()
