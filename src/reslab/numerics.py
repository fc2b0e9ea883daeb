"""The numerics version: which arithmetic an unchanged config's numbers come from.

A run's config and seed fix its numbers only for one version of the code that trains it: the data order, the
augmentation draws, the initialisation, the step and the evaluation. Any change to that code that moves a run's
numbers bumps VERSION here, deliberately, in the same commit. VERSION is part of a run's identity
(reslab.runinfo.identity), so runs of another version are never "finished" for this code (a rerun trains them again
and keeps the old ones aside, reslab.runinfo.commit), and a report refuses a study that mixes versions
(reslab.report.consistency). tests/test_numerics.py pins the exact numbers of a smoke run for this VERSION: a change
that moves them fails there until VERSION is bumped and the new numbers are recorded (tests/golden/).

History (the first three found by bisecting with one short run of ResNet-20, seed 1, on the JPEG copy; the
bisection is recorded in docs of experiments/numerics.md):
"""

VERSION = 1

# A run written before the version joined the identity carries none; reports name it so.
UNVERSIONED = "unversioned"


def of(result: dict) -> int | str:
    """The numerics version a finished run's result.json records."""
    v = result.get("numerics")
    return UNVERSIONED if v is None or v != v else v  # v != v: NaN, a column pandas filled for an older run
