"""reports/mechanism/README.md (reslab.analysis.mechanism): each seed claim's verdict is what its measurement's own
rule says, a claim without its files says which command measures it, and nothing is measured by the summary."""

from __future__ import annotations

import pandas as pd
import pytest

from reslab.analysis import mechanism as mech


def _init(plain: str, resnet: str, depths=(20, 56)) -> pd.DataFrame:
    return pd.DataFrame(
        [{"family": f, "norm": "bn", "depth": d, "reading": r} for f, r in (("plain", plain), ("resnet", resnet))
         for d in depths]
    )  # fmt: skip


def _train(plain: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{"family": "plain", "depth": d, "step": s, "reading": plain} for d in (20, 56) for s in (200, 400)]
    )


def test_exploding_plain_nets_and_neutral_resnets_support_g2_and_contradict_g1():
    g1, g2 = mech.gradient_claims(_init("exploding", "neither"), _train("neither"))
    assert g1["verdict"] == "contradicted at initialisation"
    assert g2["verdict"].startswith("supported at initialisation at depth 20, 56")
    assert "not during training" in g2["verdict"]


def test_vanishing_plain_nets_support_g1_at_their_depths():
    g1, g2 = mech.gradient_claims(_init("vanishing", "neither"), _train("neither"))
    assert g1["verdict"] == "supported at depth 20, 56" and g2["verdict"] == "contradicted at initialisation"


def test_vanishing_during_training_alone_supports_g1():
    g1, _ = mech.gradient_claims(_init("neither", "neither"), _train("vanishing"))
    assert g1["verdict"] == "supported at depth 20, 56"


def test_without_files_every_claim_names_the_command_that_measures_it(tmp_path):
    claims = mech.compute(tmp_path / "runs", tmp_path / "mechanism", "cpu", 3200).set_index("claim")
    assert (claims.verdict == mech.NOT_MEASURED).all()
    assert claims.loc["S", "evidence"] == "`make shattered`"
    assert claims.loc["K", "evidence"] == "`make thousand-layers`"
    assert claims.loc["K2", "evidence"] == "`make thousand-layers-train DATA=...`"
    assert "make lesion" in claims.loc["D", "evidence"] and "make grad-flow" in claims.loc["G1", "evidence"]


def test_the_shattered_claim_reads_the_measurements_rule(tmp_path):
    rows = pd.DataFrame(
        [
            {"family": f, "norm": "bn", "depth": d, "init_seed": s, "lag": 1, "grad_corr": c, "acf": c}
            for f, d, c in [("plain", 20, 0.5), ("plain", 56, 0.2), ("resnet", 20, 0.9), ("resnet", 56, 0.8)]
            for s in (0, 1, 2)
        ]
    )
    rows.to_csv(tmp_path / "shattered.csv", index=False)
    assert mech.shattered_claim(tmp_path)["verdict"] == "consistent at every norm measured"
    rows.loc[(rows.family == "resnet") & (rows.depth == 56), "grad_corr"] = 0.1
    rows.to_csv(tmp_path / "shattered.csv", index=False)
    s = mech.shattered_claim(tmp_path)
    assert "not borne out in full" in s["verdict"] and "depth 20 of 20, 56" in s["evidence"]


@pytest.mark.parametrize(
    "resnet, plain, says",
    [(("finite", "neither"), ("has_nan", "exploding"), "Consistent with the claim at initialisation"),
     (("finite", "neither"), ("finite", "neither"), "Not borne out at initialisation")],
)  # fmt: skip
def test_the_thousand_layer_claim_reads_the_probes_verdict(tmp_path, resnet, plain, says):
    pd.DataFrame(
        [
            {"family": f, "depth": 1202, "init_seed": s, "float32": st, "gsc_reading": r}
            for f, (st, r) in (("resnet", resnet), ("plain", plain))
            for s in (0, 1, 2)
        ]
    ).to_csv(tmp_path / "thousand_layers_nets.csv", index=False)
    assert mech.thousand_claim(tmp_path)["verdict"] == says


def test_the_summary_writes_its_table_and_claims_csv(tmp_path):
    path = mech.build(tmp_path / "runs", tmp_path / "mechanism", "cpu", 3200)
    text = path.read_text()
    assert "## Verdicts (computed)" in text and text.count(mech.NOT_MEASURED) >= len(mech.CLAIMS)
    assert len(pd.read_csv(tmp_path / "mechanism" / "claims.csv")) == len(mech.CLAIMS)


def test_dead_and_vanishing_input_steps_during_training_are_part_of_g1():
    steps = pd.DataFrame(
        [{"family": "plain", "depth": d, "input_reading": r} for d, r in ((20, "healthy"), (56, "vanishing"),
                                                                          (110, "dead"))]
    )  # fmt: skip
    g1, _ = mech.gradient_claims(_init("exploding", "neither"), _train("neither"), steps)
    assert g1["verdict"].startswith("contradicted at initialisation; during training the plain nets' input layers")
    assert "take vanishing steps at depth 56" in g1["verdict"] and "are dead" in g1["verdict"]
    assert "read dead at 110, healthy at 20, vanishing at 56" in g1["evidence"]


def test_the_thousand_layer_training_claim_reads_the_plans_rule(tmp_path):
    from test_thousand_train import nets_table, steps_table

    steps = pd.concat(
        [steps_table("resnet", [0, 1, 2], 4.0, 1.9), steps_table("plain", [0, 1, 2], 2.4, 2.4, stop_at=1)]
    )
    nets = pd.concat(
        [nets_table("resnet", [0, 1, 2], [70.0, 72.0, 71.0]), nets_table("plain", [0, 1, 2], [None] * 3, stop_at=1)]
    ).assign(images_seen=lambda d: [3200] * 3 + [16] * 3)
    steps.to_csv(tmp_path / "thousand_train.csv", index=False)
    nets.to_csv(tmp_path / "thousand_train_nets.csv", index=False)
    k2 = mech.thousand_train_claim(tmp_path)
    assert k2["verdict"] == "Consistent with the claim" and "3,200 images seen" in k2["evidence"]
