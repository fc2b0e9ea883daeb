"""Parameter-budget matching: the configuration of a model family that lands within +-10% of a
parameter budget, so that block types are compared at equal size.

Each family starts from its YAML (conf/model/<family>.yaml) and has two knobs: its depth and one
width (the first stage's channels, the others keeping their ratios; DenseNet's growth rate). The
rule: at each depth, the width whose count is nearest the budget; of those depths (within
tolerance), the one whose width is nearest the YAML's, by ratio (then the nearer count, then the
shallower net). So the count is as close as the width grid allows, the shape stays as close to the
published one as the budget allows, and a budget the YAML's width reaches by depth alone is met by
depth alone (ResNet-20 for 0.27M, ResNet-56 for 0.85M).

The grid is counted analytically (thousands of configurations in milliseconds); the chosen one is
then built, on the meta device, and must have exactly the analytic count.

    from reslab.models.budget import match, print_match
    print_match(match("densenet-bc", "0.85M"))

From the shell, `reslab-budget densenet-bc 0.85M` prints the same; with `--yaml` it prints the block
study's entry for that net (conf/block/<family>-<budget>.yaml), the chosen configuration pinned as data.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from typing import Callable

from omegaconf import OmegaConf

from reslab.errors import ReslabError, bad_choice, one_line_errors
from reslab.paths import CONF_DIR

TOLERANCE = 0.10
RESNET_WIDTHS = [16, 32, 64]  # CifarResNet's default, for YAMLs that do not name widths


# Analytic parameter counts. Each mirrors one builder for the options its family's YAML uses;
# match() checks the chosen configuration against the built model.


def resnet_params(cfg: dict, num_classes: int = 10) -> int:
    block, order, shortcut = cfg.get("block", "basic"), cfg.get("order", "post"), cfg.get("shortcut", "A")
    if order not in ("post", "preact") or cfg.get("norm", "bn") != "bn" or cfg.get("gate", "none") != "none":
        raise ValueError(f"no analytic count for order={order!r} norm={cfg.get('norm')!r} gate={cfg.get('gate')!r}")
    widths, preact, bottleneck = list(cfg.get("widths", RESNET_WIDTHS)), order == "preact", block == "bottleneck"
    n = (cfg["depth"] - 2) // (9 if bottleneck else 6)
    bn = lambda c: 2 * c  # noqa: E731 (weight and bias)
    total = 27 * widths[0] + (0 if preact else bn(widths[0]))
    cin = widths[0]
    for s, w in enumerate(widths):
        cout = 4 * w if bottleneck else w
        # Only a stage's first block differs (input width, stride); the other n - 1 are alike.
        for count, c_in, stride in ((1, cin, 1 if s == 0 else 2), (n - 1, cout, 1)):
            if bottleneck:
                block = c_in * w + 9 * w * w + w * cout + bn(w) + bn(w) + (bn(c_in) if preact else bn(cout))
            else:
                block = 9 * c_in * cout + 9 * cout * cout + bn(cout) + (bn(c_in) if preact else bn(cout))
            if shortcut == "C" or (shortcut == "B" and (stride != 1 or c_in != cout)):
                block += c_in * cout + (0 if bottleneck and preact else bn(cout))
            total += count * block
        cin = cout
    return total + (bn(cin) if preact else 0) + (cin + 1) * num_classes


def densenet_params(cfg: dict, num_classes: int = 10) -> int:
    k, bottleneck, compression = cfg["growth_rate"], cfg["bottleneck"], cfg["compression"]
    n = (cfg["depth"] - 4) // (6 if bottleneck else 3)
    c = cfg.get("stem_channels") or (2 * k if bottleneck and compression < 1 else 16)
    total = 27 * c
    for s in range(3):
        if s > 0:
            reduced = math.floor(compression * c)
            total += 2 * c + c * reduced
            c = reduced
        for _ in range(n):
            total += 2 * c + (c * 4 * k + 8 * k + 36 * k * k if bottleneck else 9 * c * k)
            c += k
    return total + 2 * c + (c + 1) * num_classes


def vovnet_params(cfg: dict, num_classes: int = 10) -> int:
    from reslab.models.vovnet import modules_for

    layers, widths, outs = cfg["layers_per_module"], cfg["widths"], cfg["out_channels"]
    mods = modules_for(cfg["depth"], len(widths), layers, cfg.get("modules_per_stage"))
    cin = cfg["stem_channels"]
    total = 27 * cin + 2 * cin
    for w, o, m in zip(widths, outs, mods):
        for _ in range(m):
            total += 9 * cin * w + 9 * w * w * (layers - 1) + 2 * w * layers  # 3x3 convs + BN
            total += (cin + layers * w) * o + 2 * o  # concat 1x1 + BN
            total += o * o + o if cfg["version"] == 2 else 0  # eSE
            cin = o
    return total + (cin + 1) * num_classes


def wrn_params(cfg: dict, num_classes: int = 10) -> int:
    from reslab.models.wrn import STEM, blocks_per_stage, stage_widths

    n, total, cin = blocks_per_stage(cfg["depth"]), 27 * STEM, STEM
    for s, w in enumerate(stage_widths(cfg["widen_factor"])):
        for i in range(n):
            c_in = cin if i == 0 else w
            total += 2 * c_in + 9 * c_in * w + 2 * w + 9 * w * w + (c_in * w if (s > 0 and i == 0) or c_in != w else 0)
        cin = w
    return total + 2 * cin + (cin + 1) * num_classes


def resnext_params(cfg: dict, num_classes: int = 10) -> int:
    n, card, d, c = (cfg["depth"] - 2) // 9, cfg["cardinality"], cfg["group_width"], cfg["stem_channels"]
    total = 27 * c + 2 * c
    for s, w in enumerate(cfg["widths"]):
        inner = card * d * 2**s
        for i in range(n):
            c_in = c if i == 0 else w
            total += c_in * inner + 9 * inner * inner // card + inner * w + 2 * (2 * inner + w)
            total += c_in * w + 2 * w if (s > 0 and i == 0) or c_in != w else 0
        c = w
    return total + (c + 1) * num_classes


def ror_params(cfg: dict, num_classes: int = 10) -> int:
    """RoR-3: the basic-block ResNet's count plus its projections (each 1x1 conv + BN)."""
    n, widths = (cfg["depth"] - 2) // 6, list(cfg.get("widths", RESNET_WIDTHS))
    shortcut, level = cfg.get("shortcut", "B"), cfg.get("level_shortcut", "C")
    proj = lambda kind, a, b, changes: a * b + 2 * b if kind == "C" or (kind == "B" and changes) else 0  # noqa: E731
    total = resnet_params({"depth": cfg["depth"], "widths": widths, "shortcut": "A"}, num_classes)
    cin = widths[0]
    for s, w in enumerate(widths):
        total += proj(shortcut, cin, w, s > 0 or cin != w) + (n - 1) * proj(shortcut, w, w, False)
        total += proj(level, cin, w, s > 0 or cin != w)  # middle level
        cin = w
    return total + proj(level, widths[0], cin, len(widths) > 1 or widths[0] != cin)  # root level


def dpn_params(cfg: dict, num_classes: int = 10) -> int:
    from reslab.models.dpn import blocks_for

    widths, outs, dense, card = cfg["widths"], cfg["out_channels"], cfg["dense_depths"], cfg["cardinality"]
    c = cfg["stem_channels"]
    total = 27 * c + 2 * c
    for w, o, k, m in zip(widths, outs, dense, blocks_for(cfg["depth"], len(widths), cfg.get("blocks_per_stage"))):
        for i in range(m):
            total += c * w + 9 * w * w // card + w * (o + k) + 2 * (2 * w + o + k)
            total += c * (o + k) + 2 * (o + k) if i == 0 else 0
            c = o + (i + 2) * k
    return total + (c + 1) * num_classes


@dataclass(frozen=True)
class Family:
    count: Callable[[dict], int]
    depths: Callable[[dict], list[int]]  # candidate depths, given the YAML
    width: Callable[[dict], int]  # the YAML's width
    widths: range  # candidate widths
    scale: Callable[[dict, int], dict]  # the options that set width b
    about: str = ""  # one line for the block study's entry and report


def _scaled(base: dict, b: int, keys: tuple[str, ...], defaults: dict | None = None, b0: int | None = None) -> dict:
    """The channel options for first-stage width b, every channel count keeping its ratio to the YAML's
    (b0: the YAML's width; its first-stage width unless given)."""
    defaults = defaults or {}
    b0 = b0 or _first_width(base)
    out = {}
    for key in keys:
        value = base.get(key, defaults.get(key))
        out[key] = [round(c * b / b0) for c in value] if isinstance(value, list) else round(value * b / b0)
    return out


def _first_width(cfg: dict) -> int:
    return list(cfg.get("widths", RESNET_WIDTHS))[0]


def _widen(b: int) -> dict:
    """WRN's width knob: first-stage width b = 16k, so k moves in steps of 1/16 (an integer where it is one)."""
    return {"widen_factor": b // 16 if b % 16 == 0 else b / 16}


def _dpn_scaled(base: dict, b: int) -> dict:
    """DPN's channels for residual width b in stage 1: all scaled by one factor, the grouped widths
    rounded to multiples of the cardinality (at least one group of one channel)."""
    b0, g = base["out_channels"][0], base["cardinality"]
    out = _scaled(base, b, ("stem_channels", "out_channels", "dense_depths"), b0=b0)
    out = {k: [max(1, c) for c in v] if isinstance(v, list) else max(1, v) for k, v in out.items()}
    return {**out, "widths": [g * max(1, round(w * b / b0 / g)) for w in base["widths"]]}


def _vovnet_depths(cfg: dict, first: int) -> list[int]:
    step = len(cfg["widths"]) * (cfg["layers_per_module"] + 1)
    return [2 + step * m for m in range(first, 7)]


_RESNET = dict(
    count=resnet_params,
    width=_first_width,
    widths=range(4, 65),
    scale=lambda base, b: _scaled(base, b, ("widths",), {"widths": RESNET_WIDTHS}),
)
_VOVNET = dict(
    count=vovnet_params,
    width=_first_width,
    widths=range(4, 65),
    scale=lambda base, b: _scaled(base, b, ("stem_channels", "widths", "out_channels")),
)

FAMILIES: dict[str, Family] = {
    "resnet": Family(
        depths=lambda cfg: [6 * n + 2 for n in range(1, 201)],
        **_RESNET,
        about="He et al. 2016 CIFAR ResNet: basic blocks (two 3x3 convs), post-activation, "
        "zero-pad identity shortcuts (option A)",
    ),
    "preact": Family(
        depths=lambda cfg: [6 * n + 2 for n in range(1, 201)],
        **_RESNET,
        about="Identity Mappings full pre-activation basic blocks (BN-ReLU-conv x2, then add), option A",
    ),
    "bottleneck": Family(
        depths=lambda cfg: [9 * n + 2 for n in range(1, 112)],
        **_RESNET,
        about="Identity Mappings pre-activation bottleneck blocks 1x1 (c) - 3x3 (c) - 1x1 (4c), "
        "projection where the shape changes (option B)",
    ),
    "densenet-bc": Family(
        count=densenet_params,
        depths=lambda cfg: [6 * n + 4 for n in range(1, 42)],
        width=lambda cfg: cfg["growth_rate"],
        widths=range(2, 65),
        scale=lambda base, k: {"growth_rate": k},
        about="Huang et al. 2017 DenseNet-BC: dense layers BN-ReLU-1x1 (4k)-BN-ReLU-3x3 (k), each "
        "concatenated to all before it; transitions compress by 0.5",
    ),
    "vovnet": Family(
        depths=lambda cfg: _vovnet_depths(cfg, 1),
        **_VOVNET,
        about="Lee et al. 2019 VoVNet (V1): one-shot aggregation modules, five 3x3 layers concatenated "
        "once at the end and reduced by a 1x1 conv",
    ),
    # Two modules per stage at least: with one, V2 has no identity shortcut and is V1 with eSE.
    "vovnet-v2": Family(
        depths=lambda cfg: _vovnet_depths(cfg, 2),
        **_VOVNET,
        about="Lee & Park 2020 VoVNetV2: VoVNet plus an identity shortcut around every module but "
        "the first of a stage, and eSE channel attention",
    ),
    # ResNet's descendants (not in the block study's experiment files yet: a study of their own).
    # WRN: from 16 layers, the paper's shallowest; its widest net at a budget is then WRN-16-k.
    "wrn": Family(
        count=wrn_params,
        depths=lambda cfg: [6 * n + 4 for n in range(2, 201)],
        width=lambda cfg: round(16 * cfg["widen_factor"]),
        widths=range(4, 257),
        scale=lambda base, b: _widen(b),
        about="Zagoruyko & Komodakis 2016 Wide ResNet WRN-d-k: pre-activation basic blocks "
        "(BN-ReLU-3x3 conv x2) at 16k/32k/64k channels, 1x1 conv shortcut where the width grows",
    ),
    # ResNeXt: the paper's CIFAR nets all have 29 layers, so the matcher varies width only: the stage-1 output,
    # with the stem and the group width d following it (rounded; cardinality fixed).
    "resnext": Family(
        count=resnext_params,
        depths=lambda cfg: [29],
        width=_first_width,
        widths=range(4, 1025),
        scale=lambda base, b: _scaled(base, b, ("stem_channels", "widths", "group_width")),
        about="Xie et al. 2017 ResNeXt-29: bottleneck 1x1 - grouped 3x3 (C groups of d channels) - "
        "1x1, post-activation, projection where the shape changes",
    ),
    "ror": Family(
        depths=lambda cfg: [6 * n + 2 for n in range(1, 201)],
        **{**_RESNET, "count": ror_params},
        about="Zhang et al. 2017 RoR-3: the CIFAR ResNet plus a projection shortcut across each stage "
        "and one across all three; blocks project where the shape changes",
    ),
    "dpn": Family(
        count=dpn_params,
        depths=lambda cfg: [2 + 3 * len(cfg["widths"]) * m for m in range(1, 34)],
        width=lambda cfg: cfg["out_channels"][0],
        widths=range(4, 257),
        scale=_dpn_scaled,
        about="Chen et al. 2017 Dual Path Network (CIFAR form ours): grouped bottleneck whose output "
        "is split, part added to the residual path, part concatenated to the dense path",
    ),
}


def model_yaml(name: str) -> dict:
    """conf/model/<name>.yaml with its `defaults` applied (this group uses only `- parent` and `- _self_`)."""
    raw = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"), resolve=True)
    merged: dict = {}
    for entry in raw.pop("defaults", ["_self_"]):
        merged.update(raw if entry == "_self_" else model_yaml(entry))
    return merged


def parse_budget(budget) -> float:
    """A parameter count: a number, or a string such as '0.27M', '850k', '269722'."""
    text = str(budget).strip()
    scale = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}.get(text[-1:], 1)
    try:
        value = float(text[:-1] if scale != 1 else text) * scale
    except ValueError:
        value = float("nan")
    if isinstance(budget, bool) or not value > 0 or math.isinf(value):
        raise ReslabError(f"budget {budget!r} is not a positive parameter count (e.g. 270000, 0.27M, 850k)")
    return value


@dataclass(frozen=True)
class Match:
    family: str
    budget: float
    params: int
    config: dict  # the full model config (build_model takes it)
    changed: dict = field(default_factory=dict)  # the options that differ from the family's YAML
    new_keys: tuple = ()  # those of them the YAML does not have

    @property
    def deviation(self) -> float:
        return self.params / self.budget - 1

    def overrides(self) -> list[str]:
        """Hydra overrides that select this configuration, e.g. for reslab-train."""
        fmt = lambda v: "[" + ",".join(map(str, v)) + "]" if isinstance(v, list) else str(v)  # noqa: E731
        return [f"model={self.family}"] + [
            f"{'+' if k in self.new_keys else ''}model.{k}={fmt(v)}" for k, v in self.changed.items()
        ]

    def describe(self) -> str:
        knobs = " ".join(f"{k}={v}" for k, v in self.changed.items()) or "as in its YAML"
        return (
            f"{self.family} at {self.budget / 1e6:.3g}M: {knobs} -> {self.params:,} parameters ({self.deviation:+.1%})"
        )


def match(family: str, budget, tolerance: float = TOLERANCE, **fixed) -> Match:
    """The configuration of `family` within +-tolerance of `budget` parameters (rule: module docstring).
    `fixed` options replace the YAML's for the search, e.g. layers_per_module=3 for a VoVNet."""
    if family not in FAMILIES:
        raise bad_choice("family", family, FAMILIES)
    target = parse_budget(budget)
    fam, yaml = FAMILIES[family], model_yaml(family)
    knobs_of = sorted({*fam.scale(yaml, fam.width(yaml)), "depth"})
    for key in fixed:  # the matcher's own knobs cannot be fixed: it would silently overwrite them
        if key in knobs_of:
            raise ReslabError(
                f"model.{key}={fixed[key]!r} cannot be fixed: the matcher chooses {', '.join(knobs_of)} "
                f"for {family}; fix other options only (e.g. layers_per_module=3 for a VoVNet)"
            )
    base = {**yaml, **fixed}
    w0, depths = fam.width(base), fam.depths(base)
    _built_params(
        {**base, "depth": depths[0]}
    )  # a bad fixed option (a count <= 0, an unknown key) fails here, in one line
    count = lambda b, depth: fam.count({**base, **fam.scale(base, b), "depth": depth})  # noqa: E731
    fits: dict[int, tuple] = {}  # depth -> (|params - budget|, width, params) of its best-fitting width
    for b in fam.widths:
        for depth in depths:  # counts grow with depth (and width): stop once past the band
            params = count(b, depth)
            if params > (1 + tolerance) * target:
                break
            fit = (abs(params - target), b, params)
            if params >= (1 - tolerance) * target and (depth not in fits or fit[:2] < fits[depth][:2]):
                fits[depth] = fit
    if not fits:
        lo, hi = count(fam.widths[0], depths[0]), count(fam.widths[-1], depths[-1])
        raise ReslabError(
            f"no {family} configuration within +-{tolerance:.0%} of budget {target:,.0f} parameters; "
            f"reachable: {lo:,} to {hi:,}"
        )
    depth, (_, b, params) = min(fits.items(), key=lambda f: (round(abs(math.log(f[1][1] / w0)), 12), f[1][0], f[0]))
    knobs = {**fixed, **fam.scale(base, b), "depth": depth}
    config = {**yaml, **knobs}
    defaults = {**fam.scale(yaml, fam.width(yaml)), **yaml}
    changed = {k: v for k, v in knobs.items() if defaults.get(k) != v}
    built = _built_params(config)
    if built != params:
        raise RuntimeError(
            f"budget: analytic count {params:,} != built {built:,} for {config}; fix {fam.count.__name__}"
        )
    return Match(family, target, params, config, changed, tuple(k for k in changed if k not in yaml))


def _built_params(config: dict) -> int:
    import torch

    from reslab.models import build_model

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return sum(p.numel() for p in build_model(config).parameters())


def print_match(m: Match, file=None) -> None:
    """Print what was chosen and how to run it."""
    print(m.describe(), file=file or sys.stdout)
    print("  reslab-train " + " ".join(m.overrides()), file=file or sys.stdout)


def budget_name(budget) -> str:
    """The budget as the study names it: '0.27M' and '850k' stay; a plain count becomes millions, 3 digits."""
    text = str(budget).strip()
    return text if text[-1:] in ("k", "K", "m", "M") else f"{parse_budget(budget) / 1e6:.3g}M"


def entry_name(family: str, budget: str, fixed: dict | None = None) -> str:
    """An entry's name: <family>-<budget>, with the options held fixed between them where there are any
    (resnext-cardinality1-0.27M), so that a fixed-option net is an entry (and a run label) of its own."""
    tags = [f"{k}{v}" for k, v in (fixed or {}).items()]
    return "-".join([family, *tags, budget_name(budget)])


def block_yaml(m: Match, budget: str, command: str, fixed: dict | None = None) -> str:
    """The block study's entry for a matched net (conf/block/<entry_name>.yaml): the configuration
    pinned as data, so that the sweep stays the same if the matcher changes (a test compares them). Options held
    fixed are recorded as `variant.fixed`, so that a test can ask the matcher the same question again."""
    budget = budget_name(budget)
    fixed_lines = ["  fixed:", *(f"    {k}: {v}" for k, v in fixed.items())] if fixed else []
    fmt = lambda v: "[" + ", ".join(map(str, v)) + "]" if isinstance(v, list) else str(v)  # noqa: E731
    return (
        "\n".join(
            [
                "# @package _global_",
                f"# {m.family} at the {budget} parameter budget: {m.params:,} parameters ({m.deviation:+.1%}).",
                f"# Chosen by `{command}` (reslab.models.budget.match: per depth the width",
                "# nearest the budget, then the depth whose width is nearest the family's YAML; within +-10%) and "
                "pinned",
                "# here as data, so that the sweep does not move if the matcher does. tests/test_block_study.py checks",
                "# that the matcher still chooses this and that the built net has `params` parameters.",
                "defaults:",
                f"  - override /model: {m.family}",
                "variant:",
                f"  name: {entry_name(m.family, budget, fixed)}",
                f"  family: {m.family}",
                f"  budget: {budget}",
                f"  params: {m.params}",
                *fixed_lines,
                f'  description: "{FAMILIES[m.family].about}"',
                *(["model:", *(f"  {k}: {fmt(v)}" for k, v in m.changed.items())] if m.changed else ["model: {}"]),
            ]
        )
        + "\n"
    )


@one_line_errors
def main(argv=None) -> None:
    """`reslab-budget FAMILY BUDGET [key=value ...] [--yaml]`: the configuration of FAMILY within +-10% of
    BUDGET parameters and how to train it; --yaml prints the block study's entry instead."""
    import yaml

    ap = argparse.ArgumentParser(prog="reslab-budget", description=main.__doc__)
    ap.add_argument("family")
    ap.add_argument("budget")
    ap.add_argument("fixed", nargs="*", help="model options held fixed, e.g. layers_per_module=3")
    ap.add_argument("--yaml", action="store_true", help="print conf/block/<family>[-<fixed options>]-<budget>.yaml")
    a = ap.parse_args(argv)
    fixed = {}
    for item in a.fixed:
        key, sep, value = item.partition("=")
        if not sep:
            raise ReslabError(f"bad option {item!r}; expected key=value, e.g. layers_per_module=3")
        fixed[key] = yaml.safe_load(value)
    m = match(a.family, a.budget, **fixed)
    if a.yaml:
        command = " ".join(["reslab-budget", a.family, a.budget, *a.fixed, "--yaml"])
        sys.stdout.write(block_yaml(m, a.budget, command, fixed))
    else:
        print_match(m)


if __name__ == "__main__":
    main()
