"""On PYTHONPATH for the ranks of a faulty run on several devices (tests/faulty_train.py): they are fresh
interpreters started by reslab.distributed, and get the command's faults by importing the same file."""

import os
import sys

if "RESLAB_RANK" in os.environ and "RESLAB_TEST_FAULTS" in os.environ:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import faulty_train  # noqa: F401
