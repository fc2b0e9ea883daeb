"""The numerics version guards the numbers: an unchanged config's numbers move only with a deliberate bump.

tests/golden/numerics-<CPU kind>.json holds the exact numbers of one smoke run (ResNet-8, synthetic data, one thread)
for reslab.run.numerics.VERSION, per kind of CPU: torch's CPU capability (AVX2, AVX512, ...), which picks the kernels
and
so the order of the float sums (experiments/numerics.md, step 3). Bytes are promised on one kind of CPU, so the
numbers are pinned per kind: the AVX2 file was recorded on an AMD EPYC (2026-12-03), the AVX512 file on an Intel
Xeon with AMX (2026-12-04), both by the same code. A change that moves any of them without a bump fails here; a
deliberate change bumps VERSION (so earlier runs are retrained, never mixed with new ones) and records the new
numbers with `RESLAB_RECORD_GOLDEN=1 make test` (then only this test writes; check the diff of the golden file into
git). On a kind of CPU with no file the test fails and says how to add one: record it only from a commit whose
numbers a known kind has just confirmed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from conftest import cli_env, run_cli
from reslab import reproduce
from reslab.run import numerics

CPU_KIND = torch.backends.cpu.get_cpu_capability()
GOLDEN = Path(__file__).with_name("golden") / f"numerics-{CPU_KIND}.json"
# probes=standard: the config the golden numbers were recorded for (the smoke profile's own probes got smaller later,
# issue 28; its signal, updates and responses files come from the probes' images).
RUN = [
    "profile=smoke",
    "probes=standard",
    "logger=none",
    "model=resnet",
    "model.depth=8",
    "seed=3",
    "threads=1",
    "study=golden",
]


def fingerprint(run: Path) -> dict:
    """What a run computed, exactly (reslab.reproduce.fingerprint: the numbers, metrics without timings, the sha256
    of every numeric artefact), with the version and torch that computed it."""
    return {"version": numerics.VERSION, "torch": torch.__version__, **reproduce.fingerprint(run)}


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory, synth_archive) -> Path:
    project = tmp_path_factory.mktemp("golden")
    run_cli("reslab-train", *RUN, f"data.source={synth_archive}", env=cli_env(project), cwd=project)
    return project / "runs" / "golden" / "smoke" / "resnet-8-s3"


def test_a_smoke_run_computes_exactly_the_numbers_recorded_for_this_numerics_version(golden_run):
    got = fingerprint(golden_run)
    if os.environ.get("RESLAB_RECORD_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert GOLDEN.is_file(), (
        f"no golden numbers for this kind of CPU ({CPU_KIND}; recorded: "
        f"{', '.join(sorted(p.stem.split('-', 1)[1] for p in GOLDEN.parent.glob('numerics-*.json')))}): run this test "
        "on a recorded kind first to confirm the code's numbers, then record this kind's with RESLAB_RECORD_GOLDEN=1"
    )
    want = json.loads(GOLDEN.read_text())
    assert want["version"] == numerics.VERSION, (
        f"reslab.run.numerics.VERSION is {numerics.VERSION} but {GOLDEN.name} holds version {want['version']}'s "
        f"numbers: "
        "record this version's with RESLAB_RECORD_GOLDEN=1"
    )
    assert want["torch"] == got["torch"], (
        f"the golden numbers were recorded with torch {want['torch']}, this is torch {got['torch']}: another torch "
        "computes other numbers; pin torch back, or bump reslab.run.numerics.VERSION and record"
    )
    for part in ("numbers", "metrics", "sha256"):
        assert got[part] == want[part], (
            f"the smoke run's {part} changed under numerics version {numerics.VERSION}: a change to the code moved an "
            "unchanged config's numbers. If deliberate, bump reslab.run.numerics.VERSION (earlier runs are then "
            "retrained) "
            f"and record with RESLAB_RECORD_GOLDEN=1; if not, find the change.\nwant {want[part]}\ngot  {got[part]}"
        )


def test_a_run_records_its_numerics_version(golden_run):
    assert json.loads((golden_run / "result.json").read_text())["numerics"] == numerics.VERSION
