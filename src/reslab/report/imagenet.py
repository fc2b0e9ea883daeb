"""`reslab-report imagenet`: the ImageNet ResNets of He et al. 2016 (Table 1), counted, beside the paper's numbers.

No runs: every number is computed here from the models (reslab.models.imagenet_resnet) at 224x224, on the meta device
(shapes only, so the whole table takes seconds), except the paper's, which come from published.csv with their source,
and torchvision's own figures, read from the installed torchvision's weight metadata where it is installed.

What is counted: multiply-adds (MACs) of convolutions and the linear layer, as torch.utils.flop_counter counts them
(it reports 2 FLOPs per multiply-add; reslab.summary prints both). The paper's "FLOPs" are multiply-adds too: "Our
34-layer baseline has 3.6 billion FLOPs (multiply-adds)" (section 3.3). BN, ReLU, pooling and the shortcut additions
are not counted by either.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import pandas as pd
import torch

from reslab import io, models
from reslab.models.imagenet_resnet import LAYOUTS, STRIDE_AT
from reslab.report import published
from reslab.run.runinfo import git_commit
from reslab.summary import count_flops, count_params

SIZE = 224
DEPTHS = tuple(LAYOUTS)


@functools.lru_cache(maxsize=None)
def counts(depth: int, stride_at: str = "paper", shortcut: str = "B") -> dict:
    """Parameters and multiply-adds of one ImageNet ResNet at 224x224, built on the meta device (kept: a net's counts
    do not change within a process)."""
    with torch.device("meta"):
        model = models.build("imagenet-resnet", depth=depth, stride_at=stride_at, shortcut=shortcut)
    return {"params": count_params(model), "macs": count_flops(model, SIZE) // 2}


def torchvision_figures(depth: int) -> dict | None:
    """torchvision's published figures for its resnet<depth> (v1.5, option B): `num_params` and `_ops` (its "GFLOPS",
    which are multiply-adds in units of 10^9) of the IMAGENET1K_V1 weights' metadata; None without torchvision."""
    try:
        import torchvision.models as tvm
    except ImportError:
        return None
    meta = getattr(tvm, f"ResNet{depth}_Weights").IMAGENET1K_V1.meta
    return {"params": int(meta["num_params"]), "gmacs": float(meta["_ops"])}


def table() -> pd.DataFrame:
    pub = published.load()
    rows = []
    for depth in DEPTHS:
        block, stages = LAYOUTS[depth]
        by = {s: counts(depth, s) for s in STRIDE_AT}
        params = {c["params"] for c in by.values()}
        assert len(params) == 1, f"stride placement changed the parameters of ResNet-{depth}: {params}"
        paper = published.lookup(
            pub, model="resnet", depth=depth, dataset="ImageNet", metric="macs_g", source="He2016-ResNet", tab="Table 1"
        )
        tv = torchvision_figures(depth)
        rows.append(
            {
                "depth": depth,
                "block": block,
                "stages": "[" + ",".join(map(str, stages)) + "]",
                "params": params.pop(),
                "macs_paper": by["paper"]["macs"],
                "macs_v1.5": by["v1.5"]["macs"],
                "macs_paper_A": counts(depth, "paper", "A")["macs"],
                "published_gmacs": published.as_float(paper.value) if paper is not None else None,
                "published_decimals": len(paper.value.partition(".")[2]) if paper is not None else None,
                "published_source": f"{paper.source} {paper.table}" if paper is not None else "",
                "torchvision_params": tv["params"] if tv else None,
                "torchvision_gmacs": tv["gmacs"] if tv else None,
            }
        )
    return pd.DataFrame(rows)


COLUMNS = {"macs_paper": "paper", "macs_v1.5": "v1.5", "macs_paper_A": "option A"}


def agreement(r: dict) -> str:
    """Which of our counts, rounded as the paper rounds (one decimal of 10^9), give the paper's number; else the
    nearest, with its difference."""
    if r["published_gmacs"] is None:
        return "-"
    ours = {name: r[col] / 1e9 for col, name in COLUMNS.items()}
    same = [name for name, v in ours.items() if round(v, r["published_decimals"]) == r["published_gmacs"]]
    if same:
        return ", ".join(same)
    name, v = min(ours.items(), key=lambda kv: abs(kv[1] - r["published_gmacs"]))
    return f"none (nearest: {name}, {v - r['published_gmacs']:+.3f})"


def giga(n) -> str:
    return "-" if n is None or pd.isna(n) else f"{n / 1e9:.3f}"


def markdown(t: pd.DataFrame) -> str:
    has_tv = t.torchvision_params.notna().all()
    head = [
        "depth",
        "block",
        "blocks per stage",
        "params",
        "MACs paper (x10^9)",
        "MACs v1.5 (x10^9)",
        "MACs option A, paper stride (x10^9)",
        "He et al. Table 1 'FLOPs' (x10^9)",
        "ours that round to it",
    ]
    if has_tv:
        head += ["torchvision params", "torchvision 'GFLOPS'"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t.to_dict("records"):
        cells = [
            str(r["depth"]),
            r["block"],
            r["stages"],
            f"{r['params']:,}",
            giga(r["macs_paper"]),
            giga(r["macs_v1.5"]),
            giga(r["macs_paper_A"]),
            "-" if r["published_gmacs"] is None else f"{r['published_gmacs']:g}",
            agreement(r),
        ]
        if has_tv:
            cells += [f"{int(r['torchvision_params']):,}", f"{r['torchvision_gmacs']:g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(t: pd.DataFrame) -> str:
    sources = ", ".join(sorted(set(t.published_source) - {""}))
    tv_line = ""
    if t.torchvision_params.notna().all():
        import torchvision

        same_params = bool((t.params == t.torchvision_params).all())
        same_macs = bool(((t["macs_v1.5"] / 1e9).round(3) == t.torchvision_gmacs.round(3)).all())
        tv_line = (
            f"- **torchvision {torchvision.__version__}** (`resnet18`..`resnet152`, v1.5, option B): its "
            f"published parameter counts {'equal' if same_params else 'DIFFER FROM'} ours, and its 'GFLOPS' "
            f"{'equal' if same_macs else 'DIFFER FROM'} our v1.5 multiply-adds to the 3 decimals it gives "
            "(`ResNet<d>_Weights.IMAGENET1K_V1.meta`: `num_params`, `_ops`); `tests/test_imagenet.py` also "
            "counts torchvision's own modules with our counter and pins both placements' exact counts."
        )
    return "\n".join(
        [
            "# ImageNet ResNets: parameters and multiply-adds at 224x224",
            "",
            f"Built by `reslab-report imagenet` at {git_commit()} on {dt.date.today().isoformat()} with torch "
            f"{torch.__version__}, from the models in `src/reslab/models/imagenet_resnet.py` (no training, no runs).",
            "",
            "- **Nets** (He et al. 2016, Table 1): 7x7 conv(64)/2, 3x3 max-pool/2, four stages at 64/128/256/512 "
            "filters "
            "(x4 outputs in bottlenecks), global average pool, 1000-way linear; projection shortcuts (option B) where "
            "the "
            "shape changes, except in the option-A column (zero-padded identity, no parameters, no multiply-adds).",
            "- **Stride placement** in a bottleneck that downsamples: *paper* = on its first 1x1 (the authors' "
            "released "
            "nets), *v1.5* = on its 3x3 (torchvision). Same parameters; the paper's first 1x1 reads a quarter of the "
            "positions. Basic blocks (18, 34) have one place for it, so their columns agree.",
            "- **Counting convention:** MACs = multiply-adds of convolutions and the linear layer "
            "(`torch.utils.flop_counter`, which reports FLOPs = 2 x MACs; `reslab-summary` prints both). He et al.'s "
            "'FLOPs' are multiply-adds: \"Our 34-layer baseline has 3.6 billion FLOPs (multiply-adds)\" (section 3.3). "
            "Neither counts BN, ReLU, pooling or the shortcut additions.",
            f"- **Published:** {sources} (He et al., Deep Residual Learning for Image Recognition, arXiv:1512.03385; "
            "`src/reslab/report/published.csv`, where each row says what it is). The paper gives one decimal; the "
            "column "
            "'ours that round to it' says which of our counts round to its number.",
            *([tv_line] if tv_line else []),
            "",
            markdown(t),
            "",
        ]
    )


def build(runs=None, reports="reports", profile=None, **_) -> Path:
    """Write reports/imagenet/README.md; `runs` and `profile` are not read (nothing here is trained)."""
    return io.write_text(Path(reports) / "imagenet" / "README.md", report(table()))
