"""The depth report's mechanism paragraph, built from per-layer step states (reslab.report.layer_steps; issue 25,
experiments/depth.md, amendment of 2026-12-04 (evening)): each reading, where its fixture holds, is said, and the
sentence that would contradict the step-state table is not."""

from __future__ import annotations

import pandas as pd

from reslab.report import depth, layer_steps
from test_layer_steps import BASE_STEP, states_of

# --- the mechanism paragraph -----------------------------------------------------------------------------------------

DEGRADED = {20: 40.0, 32: 48.0, 44: 50.0, 56: 60.0, 110: 70.0}  # training error %, all >= 2 pp above plain-20
SAYS = {
    "dead": "**dead, not vanishing**",
    "vanishing": "does explain part of the degradation",
    "exploding": "steps too large, not too small",
    "comparable": "an optimisation difficulty that gradient (step) size does not explain",
    "mixed": "step size is not ruled out",
}


def study(step_of: dict, init: str = "exploding", during: str = "neither"):
    """(runs, readings at init, training summary, per-net step states) of a plain family whose every deeper net
    degrades; step_of maps a depth to its layers' steps, as in `updates`."""
    runs = pd.DataFrame(
        [{"family": "plain", "depth": d, "seed": s, "train_error": e} for d, e in DEGRADED.items() for s in (0, 1, 2)]
    )
    rate = {"exploding": 1.4, "vanishing": 0.7, "neither": 1.0}
    readings = pd.DataFrame(
        [
            {"family": "plain", "norm": "bn", "depth": d, "control": "", "reading": init, "gsc_reading": init}
            | {"ratio_reading": init, "gsc_rate_median": rate[init], "ratio_median": 10 ** (rate[init] - 1)}
            for d in DEGRADED
        ]
    )
    train = pd.DataFrame(
        [
            {"family": "plain", "depth": d, "step": s, "gsc_rate_median": rate[during], "median": 1.0}
            for d in DEGRADED
            for s in (0, 200, 400)
        ]
    )
    nets = layer_steps.net_states(states_of({f"plain-{d}": f for d, f in step_of.items()}))
    return runs, readings, train, nets


def paragraph(step_of: dict, **kw) -> tuple[str, pd.DataFrame]:
    runs, readings, train, nets = study(step_of, **kw)
    return depth.mechanism(runs, readings, "supported", train, nets), nets


def sentences(text: str, word: str) -> list[str]:
    return [s for s in text.split(". ") if word in s]


def healthy(rel, seed):
    return BASE_STEP / 2


def dead_input_half(rel, seed):
    return 1.0 if rel < 0.5 else BASE_STEP / 2


def small_input_steps(rel, seed):
    return BASE_STEP / 20 if rel <= 0.25 else BASE_STEP / 2


def large_input_steps(rel, seed):
    return BASE_STEP * 20 if rel <= 0.25 else BASE_STEP


def ref(rel, seed):
    return BASE_STEP


def test_a_dead_net_is_called_dead_not_vanishing_and_never_an_unexplained_difficulty():
    text, nets = paragraph({20: ref, 32: healthy, 44: healthy, 56: healthy, 110: dead_input_half})
    p110 = nets[nets.depth == 110].iloc[0]
    assert p110.input_reading == "dead" and p110.dead_median == 55
    (said,) = sentences(text, SAYS["dead"])
    assert said.startswith("plain-110 is **dead, not vanishing**: in 3 of 3 seeds 55 of its 110 layers")
    assert "0-54, 0-54, 0-54 of 110, input side" in said, "the span the table shows"
    (unexplained,) = sentences(text, SAYS["comparable"])
    assert "110" not in unexplained, "a dead net is not one whose steps are comparable"
    assert not sentences(text, SAYS["vanishing"])


def test_a_net_whose_input_layers_take_much_smaller_steps_is_said_to_be_explained_in_part_by_step_size():
    text, nets = paragraph({20: ref, 32: healthy, 44: healthy, 56: small_input_steps, 110: healthy})
    p56 = nets[nets.depth == 56].iloc[0]
    assert p56.input_reading == "vanishing"
    (said,) = sentences(text, SAYS["vanishing"])
    assert said.startswith("At depth 56 the input layers take much smaller steps than plain-20's")
    assert f"{p56.input_vs_reference:.3g} x" in said and "3 of 3 seeds" in said
    (unexplained,) = sentences(text, SAYS["comparable"])
    assert unexplained.startswith("At depth 32, 44, 110 every layer's step") and "56" not in unexplained
    assert not sentences(text, "dead, not vanishing")


def test_only_nets_whose_every_step_is_comparable_are_called_an_unexplained_optimisation_difficulty():
    text, nets = paragraph({20: ref, 32: healthy, 44: healthy, 56: healthy, 110: healthy})
    assert nets[nets.depth > 20].all_healthy.all()
    (unexplained,) = sentences(text, SAYS["comparable"])
    assert unexplained.startswith("At depth 32, 44, 56, 110 every layer's step is within [1/10, 10] x plain-20's")
    for other in ("dead", "vanishing", "exploding", "mixed"):
        assert not sentences(text, SAYS[other]), other


def test_a_healthy_input_quarter_with_dead_layers_elsewhere_is_not_called_unexplained():
    def dead_output_side(rel, seed):
        return 1.0 if rel > 0.75 else BASE_STEP / 2

    text, nets = paragraph({20: ref, 32: healthy, 44: healthy, 56: healthy, 110: dead_output_side})
    p110 = nets[nets.depth == 110].iloc[0]
    assert p110.input_reading == "healthy" and not p110.all_healthy and p110.dead_side == "output side"
    (mixed,) = sentences(text, SAYS["mixed"])
    assert mixed.startswith("At depth 110 the input quarter's steps are comparable")
    assert "110" not in sentences(text, SAYS["comparable"])[0]


def test_much_larger_input_steps_are_read_as_exploding_steps():
    text, _ = paragraph({20: ref, 32: healthy, 44: large_input_steps, 56: healthy, 110: healthy})
    (said,) = sentences(text, SAYS["exploding"])
    assert said.startswith("At depth 44 the input layers take much larger steps than plain-20's")
    assert "44" not in sentences(text, SAYS["comparable"])[0]


def test_exploding_at_init_contradicts_the_vanishing_gradient_story_and_is_kept_beside_the_step_readings():
    text, _ = paragraph({20: ref, 32: healthy, 44: healthy, 56: small_input_steps, 110: dead_input_half})
    (init,) = sentences(text, "at initialisation the data contradict the vanishing-gradient story")
    assert init.startswith("At depth 32, 44, 56, 110 the degraded plain nets have an *exploding* backward signal")
    assert not sentences(text, "consistent with the vanishing-gradient story there")
    (moved,) = sentences(text, "A signal in band does not make the layers move")
    assert "at depth 56, 110 the input layers' steps are dead or far smaller" in moved


def test_vanishing_at_init_is_read_as_consistent_with_the_vanishing_gradient_story():
    text, _ = paragraph({20: ref, 32: healthy, 44: healthy, 56: healthy, 110: healthy}, init="vanishing")
    assert sentences(text, "consistent with the vanishing-gradient story there")
    assert not sentences(text, "contradict the vanishing-gradient story")


def test_a_signal_in_band_during_training_alone_never_claims_that_gradient_size_does_not_explain_it():
    """The sentence the issue found contradicting the table: a training-time GSC in band was read as 'an optimisation
    difficulty that gradient size does not explain'. Without step sizes it is not said at all."""
    runs, readings, train, _ = study({20: ref, 32: healthy, 44: healthy, 56: healthy, 110: healthy})
    text = depth.mechanism(runs, readings, "supported", train, pd.DataFrame())
    assert "does not explain" not in text and "is not read" in text
    assert sentences(text, "show a backward signal of comparable size at both ends (per-block GSC in band)")


def test_the_paragraph_quotes_the_numbers_of_the_step_state_table():
    text, nets = paragraph({20: ref, 32: healthy, 44: healthy, 56: small_input_steps, 110: dead_input_half})
    table = "\n".join(layer_steps.table_lines(nets))
    for _, r in nets[nets.depth > 20].iterrows():
        row = next(line for line in table.splitlines() if line.startswith(f"| {r.net} |"))
        if r.input_reading == "dead":
            assert layer_steps.span_text(r) in row and layer_steps.span_text(r) in text
        else:
            assert f"{r.input_vs_reference:.3g} (vs plain-20)" in row and f"{r.input_vs_reference:.3g} x" in text
        assert f"| {r.input_reading} (" in row


def test_without_degradation_no_mechanism_is_stated():
    runs, readings, train, nets = study({20: ref, 32: healthy, 44: healthy, 56: healthy, 110: dead_input_half})
    text = depth.mechanism(runs, readings, "contradicted", train, nets)
    assert "no established degradation" in text and "dead" not in text
