"""Models, built by name from config. Every module in this package is imported so that its
`@register` decorators run: adding a model is adding a file (plus a YAML in conf/model/)."""

from __future__ import annotations

import importlib
import pkgutil

from omegaconf import DictConfig, OmegaConf

from reslab.models.registry import build, names, register

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in ("registry",):
        importlib.import_module(f"{__name__}.{_mod.name}")


def build_model(cfg) -> "torch.nn.Module":  # noqa: F821
    """Build from the `model` config group: `name` picks the builder, the rest are its options."""
    opts = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    opts = {k: v for k, v in opts.items() if k not in ("family", "label")}
    return build(opts.pop("name"), **opts)


__all__ = ["build", "build_model", "names", "register"]
