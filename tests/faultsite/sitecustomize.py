"""On PYTHONPATH for the child processes of a faulty command (tests/faulty_train.py): the ranks of a run on several
devices (reslab.run.distributed) and the workers of a sweep run by joblib are fresh interpreters, and get the command's
faults by importing the same file."""

import os
import sys


def _is_joblib_worker() -> bool:
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            return b"LokyProcess" in fh.read()
    except OSError:
        return False


if "RESLAB_TEST_FAULTS" in os.environ and ("RESLAB_RANK" in os.environ or _is_joblib_worker()):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import faulty_train  # noqa: F401
