"""The lesion study (Veit, Wilber & Belongie, "Residual Networks Behave Like Ensembles of Relatively Shallow
Networks", NeurIPS 2016, arXiv:1605.06431), on a trained net's saved weights, inference only.

- **Deleting a block.** In a residual net the block's residual branch is removed and its shortcut kept: the block
  outputs what its shortcut (and its final activation) make of its input, the paper's "delete an individual
  block" (section 4.1), downsampling blocks included (their option-A shortcut subsamples and zero-pads). In a plain
  net the block is the only path, so deleting it means skipping it (the paper's VGG comparison): only blocks whose
  output has their input's shape can be skipped; a downsampling plain block cannot be deleted at all.
  Both are forward hooks on the trained model (no model code changes, no recalibration of BN, as in the paper).
- **Single deletions:** the test error with each deletable block deleted alone.
- **k random deletions** (the paper's Fig. 5 "remove k blocks"): k = 1..K blocks drawn without replacement among the
  deletable ones, `draws` draws per k from a fixed seed.
- **Effective paths** (the paper's section 5, Fig. 6), residual nets only: a net of n blocks holds C(n, k) paths of
  length k (k residual branches taken, n - k shortcuts). The gradient a length carries is measured by letting the
  loss's gradient flow through k randomly chosen residual branches and through the shortcut alone in the other
  blocks (the others' branch outputs are detached: the forward pass is unchanged); its size is the norm of the
  gradient at the first block's input (the stem's output, shared by every path), averaged over `samples` draws.
  The total gradient of length k is C(n, k) x that mean, and the effective paths are the lengths that hold the
  central 90% of the total.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from reslab.models.resnet import BasicBlock, CifarResNet
from reslab.probes.curves import error_pct

CENTRAL = 0.9  # the share of the total gradient the effective path lengths hold (Veit et al.: "5-17" of 54 blocks)


def blocks(model: nn.Module) -> list[BasicBlock]:
    """The net's blocks in forward order (CIFAR ResNets and their plain twins)."""
    if not isinstance(model, CifarResNet):
        raise TypeError(f"the lesion study reads CIFAR ResNets and plain nets, not {type(model).__name__}")
    return [m for m in model.stages.modules() if isinstance(m, BasicBlock)]


def _same_shape(block: BasicBlock) -> bool:
    convs = [m for m in block.branch.modules() if isinstance(m, nn.Conv2d)]
    return convs[0].in_channels == convs[-1].out_channels and all(c.stride == (1, 1) for c in convs)


def deletable(model: nn.Module) -> list[int]:
    """Indices (forward order) of the blocks that can be deleted: every residual block; a plain block only where
    skipping it keeps the shape."""
    return [i for i, b in enumerate(blocks(model)) if not b.plain or _same_shape(b)]


@contextlib.contextmanager
def deleted(model: nn.Module, which: Iterable[int]) -> Iterator[None]:
    """The model with the blocks `which` deleted, while the context lasts."""
    bs, handles = blocks(model), []
    try:
        for i in which:
            b = bs[i]
            if b.plain:
                if not _same_shape(b):
                    raise ValueError(f"block {i} of a plain net changes the shape: it cannot be skipped")
                handles.append(b.register_forward_hook(lambda m, inp, out: inp[0]))
            else:
                handles.append(b.branch.register_forward_hook(lambda m, inp, out: torch.zeros_like(out)))
        yield
    finally:
        for h in handles:
            h.remove()


def single(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """One row per deletable block: its stage and position, whether it downsamples, the error with it deleted."""
    rows = []
    stage_of = {id(b): s for s, stage in enumerate(model.stages) for b in stage}
    for i in deletable(model):
        b = blocks(model)[i]
        with deleted(model, [i]):
            rows.append(
                {
                    "block": i,
                    "stage": stage_of.get(id(b), -1),
                    "downsampling": not _same_shape(b),
                    "test_error": error_pct(model, x, y),
                }
            )
    return rows


def random_k(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, ks: Iterable[int], draws: int, seed: int = 0
) -> list[dict]:
    """One row per (k, draw): the error with k deletable blocks drawn at random deleted."""
    pool = deletable(model)
    rng = np.random.default_rng(seed)
    rows = []
    for k in ks:
        if k > len(pool):
            continue
        for d in range(draws):
            which = sorted(int(i) for i in rng.choice(pool, size=k, replace=False))
            with deleted(model, which):
                rows.append(
                    {"k": int(k), "draw": d, "deleted": " ".join(map(str, which)), "test_error": error_pct(model, x, y)}
                )
    return rows


def path_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int, seed: int = 0) -> list[dict]:
    """Residual nets: per path length k = 0..n, the mean norm of the gradient at the first block's input when the
    gradient flows through k random residual branches (and the shortcuts), C(n, k), and the total C(n, k) x mean."""
    bs = blocks(model)
    if any(b.plain for b in bs):
        raise ValueError("paths of a plain net: it has one, through every block")
    n, rng = len(bs), np.random.default_rng(seed)
    model.eval()
    feats: dict[str, torch.Tensor] = {}

    def keep(m, inp, out):  # the stem's output: the input of every path
        out.retain_grad()
        feats["h"] = out
        return out

    rows = []
    stem = model.stem.register_forward_hook(keep)
    try:
        for k in range(n + 1):
            norms = []
            for _ in range(samples):
                through = set(int(i) for i in rng.choice(n, size=k, replace=False))
                hooks = [
                    b.branch.register_forward_hook(lambda m, inp, out: out.detach())
                    for i, b in enumerate(bs)
                    if i not in through
                ]
                try:
                    model.zero_grad(set_to_none=True)
                    F.cross_entropy(model(x), y).backward()
                    norms.append(float(feats["h"].grad.norm()))
                finally:
                    for h in hooks:
                        h.remove()
            count = math.comb(n, k)
            mean = float(np.mean(norms))
            rows.append({"length": k, "paths": count, "grad_norm": mean, "total": count * mean})
    finally:
        stem.remove()
    total = sum(r["total"] for r in rows)
    for r in rows:
        r["share"] = r["total"] / total if total else math.nan
    return rows


def effective_lengths(rows: list[dict], central: float = CENTRAL) -> tuple[int, int]:
    """The shortest and longest path lengths of the central `central` share of the total gradient."""
    share = np.array([r["share"] for r in sorted(rows, key=lambda r: r["length"])])
    cum = np.cumsum(share)
    tail = (1 - central) / 2
    lo = int(np.searchsorted(cum, tail, side="right"))
    hi = int(np.searchsorted(cum, 1 - tail, side="left"))
    return lo, min(hi, len(share) - 1)


# Do unneeded blocks become identities? (issue 25 item 4)


@torch.no_grad()
def branch_ratios(model: nn.Module, x: torch.Tensor, batch: int = 500) -> list[dict]:
    """Residual nets: per block, ||F(x)|| / ||h(x)|| per image (F the residual branch's output, h the shortcut's, the
    identity path where the shape is kept), its median and quartiles over the images. A block whose branch is near
    zero against its shortcut is near an identity: the seeds' "unneeded blocks learn to output about zero"."""
    bs = blocks(model)
    if any(b.plain for b in bs):
        raise ValueError("a plain net has no shortcut to compare its blocks with")
    model.eval()
    got: dict[int, dict[str, list[torch.Tensor]]] = {i: {"f": [], "h": []} for i in range(len(bs))}
    hooks = []
    for i, b in enumerate(bs):
        hooks.append(
            b.branch.register_forward_hook(lambda m, inp, out, i=i: got[i]["f"].append(out.flatten(1).norm(dim=1)))
        )
        hooks.append(
            b.shortcut.register_forward_hook(lambda m, inp, out, i=i: got[i]["h"].append(out.flatten(1).norm(dim=1)))
        )
    try:
        for s in range(0, len(x), batch):
            model(x[s : s + batch])
    finally:
        for h in hooks:
            h.remove()
    rows = []
    for i, b in enumerate(bs):
        r = (torch.cat(got[i]["f"]) / torch.cat(got[i]["h"]).clamp_min(1e-12)).numpy()
        q1, med, q3 = np.quantile(r, [0.25, 0.5, 0.75])
        rows.append(
            {
                "block": i,
                "relative_depth": (i + 0.5) / len(bs),
                "downsampling": not _same_shape(b),
                "ratio_median": float(med),
                "ratio_q1": float(q1),
                "ratio_q3": float(q3),
            }
        )
    return rows
