"""`reslab-summary`: one JSON line with a model's parameters and forward cost for one image of the size its config
names (`model.input_size`; 32 where it names none, the CIFAR nets): `macs` multiply-adds and `flops` = 2 x `macs`.

Papers differ in what they call FLOPs: He et al. 2016 count multiply-adds ("3.6 billion FLOPs (multiply-adds)",
section 3.3), torch.utils.flop_counter counts 2 per multiply-add. Both are printed, named for what they are."""

from __future__ import annotations

import json

import hydra
import torch
from omegaconf import DictConfig
from torch.utils.flop_counter import FlopCounterMode

from reslab import options
from reslab.errors import one_line_errors
from reslab.models import build_model
from reslab.paths import CONF_DIR


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: torch.nn.Module, input_size: int = 32) -> int:
    """Forward FLOPs for one 3 x input_size x input_size image as torch.utils.flop_counter counts them
    (a multiply-add is 2 FLOPs; convs and matmuls only, not BN/ReLU/pooling, nor the linear layer's bias).
    A model on the meta device is counted without computing anything."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, 3, input_size, input_size, device=next(model.parameters()).device))
    model.train(was_training)
    return int(counter.get_total_flops())


def input_size(cfg_model) -> int:
    """The image side a model is counted at: its config's `input_size`, else CIFAR's 32."""
    return int(cfg_model.get("input_size") or 32)


def summarize(cfg_model) -> dict:
    model = build_model(cfg_model)
    size = input_size(cfg_model)
    flops = count_flops(model, size)
    # Options that change the counts but are not in every model's config: shown only where set.
    shown = {k: cfg_model.get(k) for k in ("stride_at", "head") if cfg_model.get(k) is not None}
    return {
        "model": cfg_model.name,
        "depth": cfg_model.get("depth"),
        "shortcut": cfg_model.get("shortcut"),
        **shown,
        "params": count_params(model),
        "input": [3, size, size],
        "macs": flops // 2,
        "flops": flops,
    }


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
@one_line_errors
def _main(cfg: DictConfig) -> None:
    print(json.dumps(summarize(cfg.model)), flush=True)


main = options.hydra_entry(_main)  # the console script: a misspelt config-group name is one line

if __name__ == "__main__":
    main()
