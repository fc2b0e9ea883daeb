"""Layer responses (ResNet Fig. 7): std of each 3x3 layer's output after BN, before the ReLU and
the addition. Models mark those points with `ResponseTap`, so this works for any block."""

from __future__ import annotations

import torch
import torch.nn as nn

from reslab.models.layers import ResponseTap


@torch.no_grad()
def layer_responses(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> list[dict]:
    """Std of every tapped response over the images in `x` (eval mode, BN on running stats)."""
    taps = [(n, m) for n, m in model.named_modules() if isinstance(m, ResponseTap)]
    stats = {n: torch.zeros(3, dtype=torch.float64) for n, _ in taps}  # sum, sum of squares, count

    def hook(name):
        def fn(_m, _inp, out):
            o = out.detach().double()
            stats[name] += torch.stack([o.sum(), (o * o).sum(), torch.tensor(float(o.numel()), dtype=torch.float64, device=o.device)]).cpu()
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in taps]
    was_training = model.training
    model.eval()
    try:
        for chunk in x.split(batch_size):
            model(chunk)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    rows = []
    for i, (name, _) in enumerate(taps):
        s, ss, n = stats[name].tolist()
        var = max(ss / n - (s / n) ** 2, 0.0)
        rows.append({"layer": i, "name": name, "std": var ** 0.5})
    return rows
