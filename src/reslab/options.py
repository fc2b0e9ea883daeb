"""`key=value` options of the small command-line tools (reslab-report, reslab-reprobe), and the check of
config-group names given to the Hydra tools (reslab-train, reslab-cost)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable

from reslab import io
from reslab.errors import ReslabError, bad_choice, fail
from reslab.paths import CONF_DIR

SIMPLE_NAME = re.compile(r"[\w.\-]+")


def parse(overrides: list[str], defaults: dict[str, str]) -> dict[str, str]:
    """`defaults` updated by `key=value` strings; an unknown key or a missing `=` is a one-line error."""
    opts = dict(defaults)
    for o in overrides:
        k, sep, v = o.partition("=")
        if not sep or k not in opts:
            raise ReslabError(f"bad override {o!r}; valid: " + ", ".join(f"{k}=..." for k in opts))
        opts[k] = v
    return opts


def check_config_groups(argv: list[str], conf_dir: Path = CONF_DIR) -> None:
    """A one-line error for `group=name` where conf/<group>/name.yaml does not exist, e.g. `block=densnet-bc-0.27M`
    (Hydra's own message runs to a dozen lines). Sweeps `group=a,b` are checked name by name; anything that
    is not a plain name (choice(...), glob(...), interpolations) is left to Hydra."""
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if not sep or arg.startswith("~") or not key or not (conf_dir / key).is_dir():
            continue
        names = value.split(",")
        if not all(SIMPLE_NAME.fullmatch(n) for n in names):
            continue
        valid = sorted({p.stem for p in (conf_dir / key).glob("*.yaml")} | plugin_configs(key))
        for name in names:
            if name != "null" and name not in valid:
                raise bad_choice(key, name, valid)


def plugin_configs(group: str) -> set[str]:
    """Names Hydra's plugins give a group of Hydra's own (hydra/launcher: basic, joblib, submitit_slurm, ...)."""
    if not group.startswith("hydra/"):
        return set()
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # imports the installed plugins, which put their configs in the store
    try:
        return {Path(name).stem for name in ConfigStore.instance().list(group)}
    except OSError:  # not a group the store knows
        return set()


def hydra_entry(hydra_main: Callable) -> Callable:
    """The console entry of a Hydra tool: config-group names are checked before Hydra composes."""

    def entry():
        io.whole_lines()  # a sweep's launcher and its workers share the terminal
        try:
            check_config_groups(sys.argv[1:])
        except ReslabError as err:
            fail(err)
        return hydra_main()

    entry.__doc__ = hydra_main.__doc__
    return entry
