"""Per-layer gradient norms of conv/linear weights, indexed from the input side (0).

`kind` tells main-path layers (stem, 3x3 convs, classifier) from the shortcut projections and
gates, so that first/last ratios compare like with like: the first main-path layer is the stem
conv and the last is the final 3x3 conv (the classifier is reported but not used in the ratio;
its gradient has another shape and scale).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _kind(name: str) -> str:
    if ".shortcut" in name:
        return "shortcut"
    if ".gate" in name:
        return "gate"
    return "main"


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(name, module, kind) for every conv and linear layer, in registration (= forward) order."""
    return [(n, m, _kind(n)) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def grad_norm_rows(model: nn.Module, layers=None) -> list[dict]:
    """Norms of the gradients currently in `.grad` (after a backward), one row per layer."""
    layers = layers or weight_layers(model)
    have = [(i, n, m, k) for i, (n, m, k) in enumerate(layers) if m.weight.grad is not None]
    if not have:
        return []
    gnorms = torch._foreach_norm([m.weight.grad for _, _, m, _ in have])
    wnorms = torch._foreach_norm([m.weight.detach() for _, _, m, _ in have])
    g = torch.stack(gnorms).float().cpu().tolist()
    w = torch.stack(wnorms).float().cpu().tolist()
    return [
        {
            "layer": i,
            "name": n,
            "kind": k,
            "grad_norm": gi,
            "weight_norm": wi,
            "rel_grad_norm": gi / wi if wi else float("nan"),
        }
        for (i, n, _, k), gi, wi in zip(have, g, w)
    ]


def gradient_norms(model: nn.Module, batches, loss_fn=F.cross_entropy) -> list[dict]:
    """Forward/backward on each (x, y) batch in train mode (BN on batch statistics, as in
    training) and return the per-layer norms averaged over the batches. Weights are not updated."""
    model.train()
    layers = weight_layers(model)
    sums: dict[int, dict] = {}
    n = 0
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        for row in grad_norm_rows(model, layers):
            acc = sums.setdefault(row["layer"], {**row, "grad_norm": 0.0, "rel_grad_norm": 0.0})
            acc["grad_norm"] += row["grad_norm"]
            acc["rel_grad_norm"] += row["rel_grad_norm"]
        n += 1
    model.zero_grad(set_to_none=True)
    rows = []
    for row in sums.values():
        row["grad_norm"] /= n
        row["rel_grad_norm"] /= n
        rows.append(row)
    return sorted(rows, key=lambda r: r["layer"])


def first_last_ratio(rows: list[dict], column: str = "grad_norm") -> float:
    """Gradient norm of the first main-path conv over that of the last 3x3 conv."""
    convs = [r for r in rows if r["kind"] == "main" and not r["name"].startswith("fc")]
    if len(convs) < 2 or not convs[-1][column]:
        return float("nan")
    return convs[0][column] / convs[-1][column]
