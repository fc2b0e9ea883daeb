"""`reslab-reproduce <study> [profile=cpu] [runs=runs] [run=<name>]`: does this code reproduce a study's run?

Retrains one finished run of the study from its own config.yaml, in a scratch directory
(`<runs>/_reproduce/<study>/<date-time>/`, never the study's), with this checkout's code, then compares what the two
computed: result.json's numbers, the per-epoch metrics without timings, and the bytes of every numeric artefact
(model.pt, predictions, curves, probe tables). The verdict is written beside the study's runs as
`_reproduced.json`; the report states it in its provenance (reslab.report.markdown).

By default the cheapest run (the smallest training wall time) is retrained: one run answers "does main compute
these numbers", and bit for bit on a CPU it either does or it does not. A run of another numerics version is
refused (this code is not expected to compute its numbers: retrain the study), as is one whose identity this
machine cannot give (another thread count, device or data copy): the keys must be equal for the check to mean
anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from reslab import io, options
from reslab.errors import ReslabError, one_line_errors
from reslab.report.results import run_dirs, study_dir
from reslab.run import numerics, runinfo
from reslab.run.runinfo import REPRODUCED as RECORD  # the record is read by reslab.report.markdown
from reslab.run.runinfo import cpu_name, git_commit

NUMBERS = ("train_loss", "train_error", "test_loss", "test_error", "steps")
TIMING_COLUMNS = ("seconds", "elapsed")  # metrics.csv's wall times: the only columns that may differ
FILES = ("model.pt", "predictions.npz", "curves.csv", "grad_norms.csv", "signal.csv", "updates.csv", "responses.csv")
# Columns a probe table gained after numerics version 1 (issue 25: the flow probe's loss on its batches, Fig. 7's masked
# mean): measurements added beside the numbers a version pins, not changes of them. A file's `sha256` is taken without
# them, so a run trained before they existed keeps its fingerprint (and tests/golden's); they are fingerprinted on
# their own (`sha256_added`) and compared where the stored run has them.
ADDED_COLUMNS = {"signal.csv": ("loss",), "responses.csv": ("std_masked", "masked", "gamma_abs_median")}


def _csv_without(path: Path, drop: tuple[str, ...]) -> tuple[bytes, bytes | None]:
    """(the file's bytes without the columns `drop`, the bytes of those columns alone or None if it has none of them),
    cut from the text as written, so the first is byte for byte the file a run wrote before those columns existed."""
    import csv
    import io as _io

    rows = list(csv.reader(_io.StringIO(path.read_text(), newline="")))
    if not rows:
        return path.read_bytes(), None
    cut = [i for i, c in enumerate(rows[0]) if c in drop]
    if not cut:
        return path.read_bytes(), None

    def text(keep) -> bytes:
        out = _io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerows([[c for i, c in enumerate(r) if keep(i)] for r in rows])
        return out.getvalue().encode()

    return text(lambda i: i not in cut), text(lambda i: i in cut)


def fingerprint(run: Path) -> dict:
    """What a run computed, exactly: result.json's numbers (floats as their repr), the per-epoch metrics without
    timings, and the sha256 of every numeric artefact it wrote (byte-reproducible on CPU, docs/guarantees.md)."""
    result = json.loads((run / "result.json").read_text())
    metrics = pd.read_csv(run / "metrics.csv").drop(columns=list(TIMING_COLUMNS), errors="ignore")
    sha, added = {}, {}
    for f in FILES:
        if not (run / f).is_file():
            continue
        body, extra = _csv_without(run / f, ADDED_COLUMNS[f]) if f in ADDED_COLUMNS else ((run / f).read_bytes(), None)
        sha[f] = hashlib.sha256(body).hexdigest()
        if extra is not None:
            added[f] = hashlib.sha256(extra).hexdigest()
    return {
        "numbers": {k: repr(result.get(k)) for k in NUMBERS},
        "metrics": metrics.to_csv(index=False, float_format="%.17g"),
        "sha256": sha,
        "sha256_added": added,  # ADDED_COLUMNS, where the run has them
    }


def differences(original: dict, again: dict) -> list[str]:
    """What differs between two fingerprints, named: [] when the runs are the same bit for bit."""
    out = [
        f"{k} {original['numbers'][k]} vs {again['numbers'][k]}"
        for k in NUMBERS
        if original["numbers"][k] != again["numbers"][k]
    ]
    if original["metrics"] != again["metrics"]:
        out.append("metrics.csv")
    # A file the stored run lacks (model.pt of a run restored from experiments/archive/, which keeps no weights)
    # cannot be compared; one the retrain lacks is a difference.
    for f in sorted(original["sha256"]):
        if original["sha256"][f] != again["sha256"].get(f):
            out.append(f)
    # Columns added after version 1: compared where the stored run has them (a run from before them has none).
    for f in sorted(original.get("sha256_added", {})):
        if original["sha256_added"][f] != again.get("sha256_added", {}).get(f) and f not in out:
            out.append(f"{f} ({', '.join(ADDED_COLUMNS[f])})")
    return out


def pick(dirs: list[Path], name: str | None) -> Path:
    """The run to retrain: the one named, else the cheapest finished one (ties by name, so the choice is stable)."""
    results = {d.name: (d, io.read_json(d / "result.json")) for d in dirs}
    finished = {n: d for n, (d, r) in results.items() if r.get("status") == "ok"}
    if name:
        if name not in finished:
            raise ReslabError(f"run={name!r} is not a finished run of this study; valid: {', '.join(sorted(finished))}")
        return finished[name]
    if not finished:
        raise ReslabError("no finished (status ok) run to reproduce; train the study first")
    return min(finished.values(), key=lambda d: (float(results[d.name][1].get("wall_seconds") or 0), d.name))


def retrain(run: Path, scratch: Path) -> Path:
    """Train the run's config again under `scratch` (its own runs root), in this process; return the new run dir.
    Refused before training when this machine would give the run another identity: the comparison would then
    not mean anything."""
    from reslab import train  # Lightning and the models: only when a run is retrained

    cfg = OmegaConf.load(run / "config.yaml")
    cfg.paths.runs = str(scratch)
    cfg.logger.wandb, cfg.logger.mode = False, "disabled"  # a check, not an experiment: no W&B run
    stored = io.read_json(run / "result.json").get("key")
    here = train.identify(cfg)[0].key
    if here != stored:
        raise ReslabError(
            f"{run.name}: this machine gives its config another identity (key {here}, stored {stored}: "
            "another thread count, device, precision or data copy?); a retrain would not be comparable"
        )
    result = train.train(cfg)
    if result is None:
        raise ReslabError(f"the retrain of {run.name} under {scratch} did not finish")
    return runinfo.run_dir(cfg)


def reproduce(runs: Path, study: str, profile: str, name: str | None = None) -> dict:
    """Retrain one run of the study, compare, write and return the record (module docstring)."""
    dirs = run_dirs(runs, study, profile)
    if not dirs:
        raise ReslabError(
            f"no finished runs under {str(study_dir(runs, study, profile))!r}; run `make sweep-{study} "
            f"PROFILE={profile}` first"
        )
    run = pick(dirs, name)
    stored = io.read_json(run / "result.json")
    if numerics.of(stored) != numerics.VERSION:
        raise ReslabError(
            f"{run.name} is numerics version {numerics.of(stored)}; this code computes version "
            f"{numerics.VERSION} and is not expected to reproduce it: retrain the study "
            f"(`make sweep-{study}`)"
        )
    started = dt.datetime.now()
    scratch = Path(runs) / "_reproduce" / study / started.strftime("%Y%m%dT%H%M%S")
    print(
        f"[reproduce {study}] retraining {run.name} (trained at {stored.get('git_commit')}) under {scratch}", flush=True
    )
    again = retrain(run, scratch)
    first, second = fingerprint(run), fingerprint(again)
    diff = differences(first, second)
    record = {
        "run": run.name,
        "key": stored.get("key"),
        "numerics": numerics.VERSION,
        "trained_at": stored.get("git_commit"),
        "reproduced_at": git_commit(),
        "trained_on": stored.get("cpu") or "not recorded",
        "reproduced_on": cpu_name(),
        "date": started.date().isoformat(),
        "identical": not diff,
        "differences": diff,
        "compared": [
            "result.json numbers (" + ", ".join(NUMBERS) + ")",
            "metrics.csv without timings",
            *sorted(first["sha256"]),
        ],
        "not_compared": sorted(set(second["sha256"]) - set(first["sha256"]))  # absent from the stored run
        + [
            f"{f} ({', '.join(ADDED_COLUMNS[f])})"
            for f in sorted(set(second.get("sha256_added", {})) - set(first.get("sha256_added", {})))
        ],
        "scratch": str(scratch),
    }
    io.write_json(study_dir(runs, study, profile) / RECORD, record)
    return record


@one_line_errors
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        prog="reslab-reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("study")
    ap.add_argument("overrides", nargs="*", help="profile=cpu, runs=runs, run=<run directory name>")
    a = ap.parse_args(argv)
    opts = options.parse(a.overrides, {"profile": "cpu", "runs": "runs", "run": ""})
    rec = reproduce(Path(opts["runs"]), a.study, opts["profile"], opts["run"] or None)
    verdict = "identical, bit for bit" if rec["identical"] else "DIFFERENT: " + ", ".join(rec["differences"])
    print(
        f"[reproduce {a.study}] {rec['run']} (trained at {rec['trained_at']}, retrained at {rec['reproduced_at']}): "
        f"{verdict} -> {study_dir(Path(opts['runs']), a.study, opts['profile']) / RECORD}",
        flush=True,
    )


if __name__ == "__main__":
    main()
