"""The final evaluation of a trained net on the whole eval set, with its per-image predictions (for McNemar)."""

from __future__ import annotations

import torch

from reslab.data import DeviceLoader


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DeviceLoader, precision: str) -> dict:
    model.eval()
    loss = errs = n = 0.0
    dtype = torch.bfloat16 if precision.startswith("bf16") else None
    preds, labels = [], []
    for x, y in loader:
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x).float()
        loss += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
        pred = logits.argmax(1)
        errs += (pred != y).sum().item()
        n += len(y)
        preds.append(pred.to(torch.uint8).cpu())
        labels.append(y.to(torch.uint8).cpu())
    return {
        "test_loss": loss / n,
        "test_error": 100 * errs / n,
        "predictions": torch.cat(preds).numpy(),
        "labels": torch.cat(labels).numpy(),
    }
