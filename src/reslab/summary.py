"""`reslab-summary`: one JSON line with a model's parameters and forward FLOPs (one 32x32 image)."""

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
def count_flops(model: torch.nn.Module) -> int:
    """Forward FLOPs for one 3x32x32 image as torch.utils.flop_counter counts them
    (a multiply-add is 2 FLOPs; convs and matmuls only, not BN/ReLU/pooling)."""
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device))
    model.train(was_training)
    return int(counter.get_total_flops())


def summarize(cfg_model) -> dict:
    model = build_model(cfg_model)
    return {"model": cfg_model.name, "depth": cfg_model.get("depth"), "shortcut": cfg_model.get("shortcut"),
            "params": count_params(model), "flops": count_flops(model)}


@hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
@one_line_errors
def _main(cfg: DictConfig) -> None:
    print(json.dumps(summarize(cfg.model)), flush=True)


main = options.hydra_entry(_main)  # the console script: a misspelt config-group name is one line

if __name__ == "__main__":
    main()
