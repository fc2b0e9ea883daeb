"""Model registry: config name -> builder. A new model file registers itself on import."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from reslab.errors import ReslabError, bad_choice

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def deco(fn):
        if name in _BUILDERS:
            raise RuntimeError(f"model {name!r} registered twice")
        _BUILDERS[name] = fn
        return fn

    return deco


def names() -> list[str]:
    return sorted(_BUILDERS)


def build(name: str, **kwargs) -> nn.Module:
    if name not in _BUILDERS:
        raise bad_choice("model.name", name, names())
    try:
        return _BUILDERS[name](**kwargs)
    except TypeError as err:  # an option this builder does not take, e.g. a typo in an override
        raise ReslabError(f"model {name!r}: {err}") from None
