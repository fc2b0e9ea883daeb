"""The numerics version: which arithmetic an unchanged config's numbers come from.

A run's config and seed fix its numbers only for one version of the code that trains it: the data order, the
augmentation draws, the initialisation, the step and the evaluation. Any change to that code that moves a run's
numbers bumps VERSION here, deliberately, in the same commit. VERSION is part of a run's identity
(reslab.run.runinfo.identity), so runs of another version are never "finished" for this code (a rerun trains them again
and keeps the old ones aside, reslab.run.runinfo.commit), and a report refuses a study that mixes versions
(reslab.report.consistency). tests/test_numerics.py pins the exact numbers of a smoke run for this VERSION: a change
that moves them fails there until VERSION is bumped and the new numbers are recorded (tests/golden/).

History:
- "unversioned": every run before 2026-12-03 (the committed depth, shortcut, block, block follow-up and pilot
  reports). Not finished for this code: a rerun trains them again.
- 1 (2026-12-03): the code at 0a4be85, where versions began.

What the bisection found (2026-12-03, ResNet-20, seed 1, 1 thread, the shared JPEG copy; experiments/numerics.md):
on one machine the code did not move this config's training numbers between 3167c99 (the depth study's runs),
6ede29f (short run only) and main: a short run is bit for bit alike at all three, and the full cpu config gives
46.46% test / 49.5625% training error at 3167c99 and at 1311d6b alike. The depth study's 46.59 / 49.00 came from
another CPU (an Intel Xeon with AVX-512; this is an AMD EPYC with AVX2): another vector width sums the convolutions
in another order. So runs record their CPU (reslab.run.runinfo.cpu_name) and `reslab-reproduce` checks a study on the
machine at hand; the version counts changes of the code, not of the machine.
"""

VERSION = 1  # bump with every change that moves an unchanged config's numbers; record tests/golden/

# A run written before the version joined the identity carries none; reports name it so.
UNVERSIONED = "unversioned"


def of(result: dict) -> int | str:
    """The numerics version a finished run's result.json records."""
    v = result.get("numerics")
    return UNVERSIONED if v is None or v != v else v  # v != v: NaN, a column pandas filled for an older run
