"""The lesion report reads the lesion files beside a rung's runs and applies the plan's rules: L1 (a single deletion
barely hurts the deepest ResNet: its median increase below 2 pp with the whole CI), L2 (the deepest plain net
collapses: its median error after one deletion at least 80% with the whole CI) and L3 (the paired contrast).

Runs and lesion files are written directly: ResNet-56 loses 0.5 pp per deleted block, plain-56 goes to ~89%."""

from __future__ import annotations

import pandas as pd

from reslab.report import lesion
from test_budget_report import fake_run

SEEDS = (400, 401, 402)


def lesioned(root, family, depth, seed):
    d = fake_run(root, family, depth, 3200, seed)
    intact = 30.0 + 0.2 * (seed - 400)
    n = (depth - 2) // 2
    down = [n // 3, 2 * n // 3]
    rows = [
        {
            "block": i,
            "stage": i * 3 // n,
            "downsampling": i in down,
            "test_error": intact + (0.5 + 0.1 * (seed - 400) if family == "resnet" else 59.0 - 0.3 * (seed - 400)),
        }
        for i in range(n)
        if family == "resnet" or i not in down
    ]
    pd.DataFrame(rows).assign(intact_error=intact).to_csv(d / "lesion_single.csv", index=False)
    pd.DataFrame(
        [{"k": k, "draw": 0, "deleted": "0", "test_error": intact + k, "intact_error": intact} for k in range(1, 4)]
    ).to_csv(d / "lesion_random.csv", index=False)
    if family == "resnet":
        from math import comb

        g = [
            {"length": k, "paths": comb(n, k), "grad_norm": 0.5**k, "total": comb(n, k) * 0.5**k} for k in range(n + 1)
        ]
        tot = sum(r["total"] for r in g)
        pd.DataFrame([{**r, "share": r["total"] / tot} for r in g]).to_csv(d / "lesion_paths.csv", index=False)
        # ResNet-56's last third of blocks are near identities (ratio 0.05); ResNet-20's never.
        pd.DataFrame(
            [
                {
                    "block": i,
                    "relative_depth": (i + 0.5) / n,
                    "downsampling": i in down,
                    "ratio_median": 0.05 if depth == 56 and i >= 2 * n // 3 + 1 + (seed - 400) else 0.5,
                    "ratio_q1": 0.0,
                    "ratio_q3": 1.0,
                }
                for i in range(n)
            ]
        ).to_csv(d / "branch_ratios.csv", index=False)


def test_the_rules_read_a_resnet_that_shrugs_and_a_plain_net_that_collapses(tmp_path):
    runs = tmp_path / "runs"
    for family in ("resnet", "plain"):
        for depth in (56, 20):
            for seed in SEEDS:
                lesioned(runs, family, depth, seed)
    fake_run(runs, "resnet", 56, 6400, 400)  # another rung, without lesion files: not read
    text = lesion.build(runs, tmp_path / "reports", "budget", study="bud").read_text()
    assert "**L1** (resnet-56: a single deletion barely hurts)" in text and "+0.60 pp" in text
    assert "→ **supported**." in text.split("**L1**")[1].split("\n")[0]
    l2 = text.split("**L2**")[1].split("\n")[0]
    assert "(plain-56 collapses)" in l2 and "→ **supported**." in l2
    assert "→ **supported**" in text.split("**L3**")[1].split("\n")[0]
    # Paths: the gradient halves per branch, so the central 90% sits in short paths, below n/2.
    assert "| resnet-56 | 400 | 27 |" in text and "| yes |" in text
    assert (tmp_path / "reports/lesion/lesion.png").is_file() and (tmp_path / "reports/lesion/paths.png").is_file()
    l6 = text.split("**L6**")[1].split("\n")[0]
    assert "resnet-56 − resnet-20" in l6 and "→ **supported**" in l6
    assert (tmp_path / "reports/lesion/branch_ratios.png").is_file()
