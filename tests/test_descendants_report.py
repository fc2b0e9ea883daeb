"""The descendants report (reports/descendants/): one tested claim per paper, each paper's contrasts a Holm family of
their own, found by conf/block entry (ResNeXt's claim compares two ResNeXts), each verdict with its power as applied
and its budget reading."""

from __future__ import annotations

import numpy as np
import pandas as pd

from conftest import TINY
from reslab.report import descendants, paired


def _p(verdict: str) -> paired.Paired:
    c = paired.paired("x", "test_error", "a", "b", {0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 0.0, 2: 0.0})
    c.verdict = verdict
    return c


def test_a_claim_is_supported_only_if_every_contrast_is_and_contradicted_if_any_is():
    assert descendants.claim_verdict([_p("supported"), _p("supported")]) == "supported"
    assert descendants.claim_verdict([_p("supported"), _p("inconclusive")]) == "open (supported, inconclusive)"
    assert descendants.claim_verdict([_p("supported"), _p("contradicted")]) == "contradicted"
    both = [_p("no practical difference")] * 2
    assert descendants.claim_verdict(both) == "not supported: no practical difference"
    assert descendants.claim_verdict([]).startswith("not tested")


def test_every_claim_names_conf_block_entries_and_resnext_is_tested_against_its_own_cardinality_1_net():
    from reslab.paths import CONF_DIR

    names = {p.stem for p in (CONF_DIR / "block").glob("*.yaml")}
    pairs = [pair for c in descendants.CLAIMS for pair in c.contrasts]
    assert {e for pair in pairs for e in pair} <= names
    assert [c.key for c in descendants.CLAIMS] == ["W", "X", "R", "D"]
    assert ("resnext-cardinality1-0.27M", "resnext-0.27M") in pairs
    assert len(next(c for c in descendants.CLAIMS if c.key == "D").contrasts) == 2, "DPN against both paths"


def test_the_budget_reading_says_whether_the_gap_closed_after_the_lr_drop():
    rows = []
    for seed in (0, 1):
        for step, worse, better in ((0, 90, 90), (600, 60, 50), (800, 55, 52)):
            rows += [
                {"label": "w", "seed": seed, "step": step, "test_error": worse},
                {"label": "b", "seed": seed, "step": step, "test_error": better},
            ]
    c = paired.paired("x", "test_error", "w", "b", {0: 3.0, 1: 3.0}, {0: 0.0, 1: 0.0})
    course = descendants.gap_course(pd.DataFrame(rows), c, drop=600)
    assert course == {"drop_step": 600, "at_drop": 10.0, "end_step": 800, "at_end": 3.0}
    text = descendants.budget_text(course, 25_600)
    assert "after 25,600 images" in text and "+10.00 pp" in text and "**closing**" in text
    assert descendants.gap_course(pd.DataFrame(), c, 600) is None
    assert np.isnan(descendants.gap_course(pd.DataFrame(rows), c, drop=None)["at_drop"])


# Two steps of 25 images and tiny probes (conftest.TINY, as the block study has them).
SMOKE = [
    "profile=smoke",
    "logger=none",
    "trainer.save_weights=false",
    *TINY,
    "probes.grad_norms=false",
    "probes.responses=false",
]


def test_smoke_descendants_study_goes_from_the_sweep_to_the_report(cli, tmp_path, synth_archive):
    # Two of the seven nets: claim W is tested, the others say which nets they lack.
    cli(
        "reslab-train",
        "-m",
        "experiment=descendants",
        "block=resnet-0.27M,wrn-0.27M",
        "seed=0,1,2",
        f"data.source={synth_archive}",
        *SMOKE,
    )
    cli("reslab-report", "descendants", "profile=smoke")
    out = tmp_path / "reports/descendants"
    report = (out / "README.md").read_text()
    for section in (
        "## Verdicts (computed by the decision rule)",
        "### W. Zagoruyko & Komodakis 2016",
        "### X. Xie et al. 2017",
        "### R. Zhang et al. 2017",
        "### D. Chen et al. 2017",
        "## Results per net",
        "## Ours vs published",
    ):
        assert section in report, section
    assert "CPU-sized study (`smoke` profile)" in report and "Seeds:** 0, 1, 2 (3 per net)" in report
    assert "- W: resnet-0.27M-20 − wrn-0.27M-16, test error:" in report
    assert "Power of the rule as applied (3 seeds" in report and "Budget reading: an ordering after" in report
    assert "**Claim X: not tested (its nets were not trained)**." in report
    assert "**Claim W: " in report and "at this budget (2 iterations, 50 images: a budget reading)." in report
    assert "Cost, resnet-0.27M-20 against wrn-0.27M-16: speed and memory not measured" in report
    assert "- Not tested (a net was not trained): resnext-0.27M − dpn-0.27M, densenet-bc-0.27M − dpn-0.27M." in report
    assert "| wrn | 0.27M | wrn-0.27M-16 | 272,394 |" in report
    assert "Zagoruyko2016-WRN authors' README" in report and "comparable?" in report
    for f in ("pareto.png", "curves.png", "paired_differences.png", "runs.csv", "results.csv", "contrasts.csv"):
        assert (out / f).is_file(), f


def test_the_block_report_shows_every_descendant_and_each_papers_verdict_from_the_committed_descendants_report():
    from reslab.paths import ROOT
    from reslab.report import block

    lines = block.descendants_section(ROOT / "reports", "block")
    text = "\n".join(lines)
    for family in ("resnext", "wrn", "ror", "dpn"):
        assert f"| {family}-0.27M-" in text, family
    for claim in ("W:", "X:", "R:", "D:"):
        assert f"| {claim}" in text, claim
    assert "never pooled" in text
    assert block.descendants_section(ROOT / "reports", "block-pilot") == [], "only the main study points to it"
