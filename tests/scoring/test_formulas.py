"""The formulas of docs/scoring.md on fixed inputs (expected values worked out by hand), their
bounds, and their monotonicity in every input (hypothesis, thousands of inputs)."""

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring import formulas
from scoring.formulas import DEFAULT_CONSTANTS, DEFAULT_PERSONA_WEIGHTS, DEFAULT_WEIGHTS, q2

D = Decimal


def inputs(**kw) -> formulas.Inputs:
    base = {
        "revenue": Fraction(15000),
        "conversion": Fraction(8, 10),
        "complexity": Fraction(6, 10),
        "ui_complexity": Fraction(4, 10),
        "hours": Fraction(10),
        "effort_weeks": Fraction(4),
        "confidence": Fraction(1, 2),
        "reach": Fraction(0),
    }
    base.update({k: Fraction(v) if not isinstance(v, list) else v for k, v in kw.items()})
    return formulas.Inputs(**base)


def rounded(i: formulas.Inputs) -> dict[str, Decimal]:
    return {d: q2(r.score) for d, r in formulas.dimensions(i, DEFAULT_CONSTANTS).items()}


def test_the_seed_example_scores_as_worked_out_by_hand():
    # ROI: 15000 * 1.8 = 27000 a month; 12 * 27000 / (4 * 10000) = 8.1; 100 * 8.1 / 9.1
    # Workload: 10 / 40 = 0.25; 100 * 0.25 / 1.25. Ease: 100 * (1 - (0.4*0.6 + 0.6*0.4)).
    # Value: breadth 0, (0.8 + 0) / 2 * (1 + 0.5) / 2 = 0.3.
    assert rounded(inputs()) == {
        "roi": D("89.01"),
        "workload_impact": D("20.00"),
        "ease_of_use": D("52.00"),
        "value_creation": D("30.00"),
    }


def test_each_dimension_with_evidence_on_fixed_inputs():
    i = inputs(
        revenue=1000,
        conversion=Fraction(1, 2),
        complexity=Fraction(2, 10),
        ui_complexity=Fraction(1, 2),
        hours=20,
        effort_weeks=2,
        confidence=1,
        reach=50,
        tickets_per_month=40,
        onboarding_lift=Fraction(1, 10),
        at_risk_revenue=4000,
    )
    # ROI: (1000 + 0.25*4000) * 1.5 = 3000; 12 * 3000 / 20000 = 1.8; 100 * 1.8 / 2.8 = 64.2857
    # Workload: 20 + 40 * 0.5 = 40 hours = the half-score: 50.
    # Ease: UI 0.5 - 2 * 0.1 = 0.3; burden 0.4*0.2 + 0.6*0.3 = 0.26: 74.
    # Value: breadth 1 - 1/(1 + 50/50) = 0.5; (0.5 + 0.5)/2 * (1 + 1)/2 = 0.5: 50.
    assert rounded(i) == {
        "roi": D("64.29"),
        "workload_impact": D("50.00"),
        "ease_of_use": D("74.00"),
        "value_creation": D("50.00"),
    }
    base = formulas.baselines(i, Fraction(74))
    # RICE 50 * 1.5 * 1 / 2; ICE 5 * 10 * 7.4; WSJF (5 + 1 + 4) / 2
    assert {k: q2(v) for k, v in base.items()} == {
        "rice": D("37.50"),
        "ice": D("370.00"),
        "wsjf": D("5.00"),
    }


def test_overall_is_the_weighted_sum_and_personas_weigh_their_own_way():
    scores = {
        "roi": Fraction(D("89.01")),
        "workload_impact": Fraction(20),
        "ease_of_use": Fraction(52),
        "value_creation": Fraction(30),
    }
    # 0.35*89.01 + 0.2*20 + 0.2*52 + 0.25*30 = 31.1535 + 4 + 10.4 + 7.5
    assert q2(formulas.overall(scores, DEFAULT_WEIGHTS)) == D("53.05")
    everyone = formulas.persona_scores(scores, DEFAULT_PERSONA_WEIGHTS, [], DEFAULT_CONSTANTS)
    assert {k: q2(v) for k, v in everyone.items()} == {
        "solo_podcaster": D("41.70"),  # 8.901 + 6 + 20.8 + 6
        "podcast_network": D("41.60"),  # 17.802 + 7 + 7.8 + 9
        "agency": D("48.00"),  # 26.703 + 6 + 7.8 + 7.5
        "brand": D("55.90"),  # 35.604 + 2 + 7.8 + 10.5
    }
    brand_only = formulas.persona_scores(
        scores, DEFAULT_PERSONA_WEIGHTS, ["brand"], DEFAULT_CONSTANTS
    )
    assert q2(brand_only["brand"]) == D("55.90")
    assert q2(brand_only["solo_podcaster"]) == D("20.85")  # 41.701 * 0.5


def test_outcome_score_as_worked_out_by_hand():
    # realized ROI: 12 * 300 / 20000 = 0.18 -> 100 * 0.18/1.18 = 900/59
    # workload: 26 + 18 * 0.5 = 35 hours -> 35/40 = 0.875 -> 100 * 0.875/1.875 = 140/3
    # adoption 42; mean = (900/59 + 140/3 + 42) / 3 = 18394/531
    value = formulas.outcome_score(
        adoption_rate=D("0.42"),
        revenue_change=D(300),
        ticket_change=-18,
        time_saved_hours=D(26),
        effort_weeks=D(2),
        constants=DEFAULT_CONSTANTS,
    )
    assert value == Fraction(18394, 531)
    # A loss and more tickets count as no gain, never below zero.
    assert formulas.outcome_score(
        adoption_rate=D(0),
        revenue_change=D(-500),
        ticket_change=30,
        time_saved_hours=D(0),
        effort_weeks=D(2),
        constants=DEFAULT_CONSTANTS,
    ) == Fraction(0)


def test_rounding_is_half_up_at_two_places():
    assert q2(Fraction(12345, 1000)) == D("12.35")
    assert q2(Fraction(-12345, 1000)) == D("-12.35")
    assert q2(Fraction(1, 3)) == D("0.33")


# --- properties -------------------------------------------------------------------------------


def _dec(low, high, places=4):
    return st.decimals(min_value=low, max_value=high, places=places, allow_nan=False).map(Fraction)


INPUT_STRATEGIES = {
    "revenue": _dec(0, 1_000_000_000, 2),
    "conversion": _dec(0, 1),
    "complexity": _dec(0, 1),
    "ui_complexity": _dec(0, 1),
    "hours": _dec(0, 1_000_000, 2),
    "effort_weeks": _dec(D("0.01"), 520, 2),
    "confidence": _dec(0, 1),
    "reach": st.integers(0, 10_000_000).map(Fraction),
    "tickets_per_month": _dec(0, 100_000, 4),
    "onboarding_lift": _dec(-1, 1),
    "at_risk_revenue": _dec(0, 1_000_000_000, 2),
}
UPPER = {
    "conversion": 1,
    "complexity": 1,
    "ui_complexity": 1,
    "confidence": 1,
    "onboarding_lift": 1,
}
# The documented direction of every dimension in every input: +1 never lowers it, -1 never
# raises it, 0 leaves it unchanged (docs/scoring.md, "Monotonicity").
DIRECTION = {
    "roi": {"revenue": 1, "conversion": 1, "effort_weeks": -1, "at_risk_revenue": 1},
    "workload_impact": {"hours": 1, "tickets_per_month": 1},
    "ease_of_use": {"complexity": -1, "ui_complexity": -1, "onboarding_lift": 1},
    "value_creation": {"conversion": 1, "reach": 1, "confidence": 1},
}

base_inputs = st.fixed_dictionaries(INPUT_STRATEGIES).map(lambda kw: formulas.Inputs(**kw))


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=base_inputs,
    name=st.sampled_from(sorted(INPUT_STRATEGIES)),
    step=st.fractions(min_value=0, max_value=10**6, max_denominator=10**4),
)
def test_every_dimension_moves_only_in_its_documented_direction(base, name, step):
    before = getattr(base, name)
    after = before + step
    if name in UPPER:
        after = min(after, Fraction(UPPER[name]))
    bumped = formulas.Inputs(**{**base.__dict__, name: after})
    low, high = rounded(base), rounded(bumped)
    for dimension, directions in DIRECTION.items():
        sign = directions.get(name, 0)
        if sign > 0:
            assert high[dimension] >= low[dimension], (dimension, name)
        elif sign < 0:
            assert high[dimension] <= low[dimension], (dimension, name)
        else:
            assert high[dimension] == low[dimension], (dimension, name)
    # The overall score is a weighted sum with non-negative weights of the rounded dimensions.
    o_low = formulas.overall({d: Fraction(v) for d, v in low.items()}, DEFAULT_WEIGHTS)
    o_high = formulas.overall({d: Fraction(v) for d, v in high.items()}, DEFAULT_WEIGHTS)
    if all(DIRECTION[d].get(name, 0) >= 0 for d in DIRECTION):
        assert o_high >= o_low
    if all(DIRECTION[d].get(name, 0) <= 0 for d in DIRECTION):
        assert o_high <= o_low


@settings(max_examples=2000, deadline=None)
@given(i=base_inputs)
def test_every_score_lies_within_0_and_100(i):
    scores = rounded(i)
    for value in scores.values():
        assert D(0) <= value <= D(100)
    overall = formulas.overall({d: Fraction(v) for d, v in scores.items()}, DEFAULT_WEIGHTS)
    assert 0 <= overall <= 100
    for value in formulas.persona_scores(
        {d: Fraction(v) for d, v in scores.items()},
        DEFAULT_PERSONA_WEIGHTS,
        ["brand"],
        DEFAULT_CONSTANTS,
    ).values():
        assert 0 <= value <= 100


@pytest.mark.parametrize(
    ("name", "direction"),
    [("revenue", 1), ("conversion", 1), ("complexity", -1), ("ui_complexity", -1), ("hours", 1)],
)
def test_the_issue_s_stated_directions_hold_strictly_somewhere(name, direction):
    """A formula that ignored its input would pass the property above; this one would not."""
    dimension = {
        "revenue": "roi",
        "conversion": "roi",
        "complexity": "ease_of_use",
        "ui_complexity": "ease_of_use",
        "hours": "workload_impact",
    }[name]
    base = inputs(revenue=1000, conversion=Fraction(2, 10), hours=5)
    step = {"revenue": Fraction(500), "hours": Fraction(5)}.get(name, Fraction(1, 10))
    bumped = formulas.Inputs(**{**base.__dict__, name: getattr(base, name) + step})
    change = rounded(bumped)[dimension] - rounded(base)[dimension]
    assert change * direction > 0
