"""User-facing errors: one line, the bad value, the valid choices, a non-zero exit."""

from __future__ import annotations

import functools
import sys
from typing import Callable, Iterable, TypeVar

F = TypeVar("F", bound=Callable)

EXIT_BAD_INPUT = 2


class ReslabError(Exception):
    """An error caused by the user's input; printed as one line, never as a traceback."""


class InputSizeError(ReslabError):
    """A net that takes one input size only (a flatten head: its linear layer reads one feature-map size) was given
    another. One line, like every ReslabError: a command that meets it prints it and exits 2."""


class Interrupted(Exception):
    """A run stopped by SIGINT/SIGTERM after saving its checkpoint; running it again resumes it."""

    def __init__(self, signum: int, step: int, path):
        import signal

        self.signum, self.step, self.path = signum, step, path
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at step {step}, checkpoint {path}; "
            "run the same command again to resume"
        )


def bad_choice(what: str, value, choices: Iterable) -> ReslabError:
    valid = ", ".join(str(c) for c in choices)
    return ReslabError(f"unknown {what} {value!r}; valid choices: {valid}")


def fail(err: BaseException) -> None:
    print(f"reslab: error: {err}", file=sys.stderr, flush=True)
    sys.exit(EXIT_BAD_INPUT)


def one_line_errors(fn: F) -> F:
    """Turn ReslabError into one stderr line and exit 2.

    SystemExit is a BaseException, so it passes through Hydra's own error handler, which would
    otherwise print a trimmed traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ReslabError as err:
            fail(err)

    return wrapper  # type: ignore[return-value]
