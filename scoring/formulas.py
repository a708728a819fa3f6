"""The scoring formulas (docs/scoring.md), pure and exact: inputs are Decimals, every step is
computed in `Fraction`s and rounded once at the end, so a score is monotonic in its inputs and
the explanation's intermediate numbers are the ones that made it.

Every dimension lies on 0-100. A saturating curve `sat(x) = 100 * (1 - 1/(1 + x))` turns an
unbounded non-negative ratio into 0-100 (50 at x = 1)."""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

DIMENSIONS = ("roi", "workload_impact", "ease_of_use", "value_creation")
TWO = Decimal("0.01")
FOUR = Decimal("0.0001")

# The constants every model version carries (editable per version in admin).
DEFAULT_CONSTANTS = {
    # ROI: a year's value against the build cost; 50 when they are equal.
    "cost_per_effort_week": "10000",
    # Workload: 50 at this many hours saved per month.
    "hours_half_score": "40",
    # Each support ticket the feature removes saves this many hours.
    "hours_per_ticket": "0.5",
    # Ease of use: how much complexity and UI complexity weigh (they sum to 1).
    "complexity_weight": "0.4",
    "ui_complexity_weight": "0.6",
    # Value creation: 50 breadth at this many accounts reached.
    "reach_half_score": "50",
    # Evidence: the share of at-risk monthly revenue a feature is expected to keep,
    "retention_share": "0.25",
    # ...and how many points of UI complexity one point of onboarding completion lift removes.
    "lift_to_ui_complexity": "2",
    # Persona scores: the factor for personas the feature does not target.
    "non_target_factor": "0.5",
    # Evidence windows.
    "ticket_window_days": "90",
}
DEFAULT_WEIGHTS = {
    "roi": "0.35",
    "workload_impact": "0.20",
    "ease_of_use": "0.20",
    "value_creation": "0.25",
}
DEFAULT_PERSONA_WEIGHTS = {
    "solo_podcaster": {
        "roi": "0.10",
        "workload_impact": "0.30",
        "ease_of_use": "0.40",
        "value_creation": "0.20",
    },
    "podcast_network": {
        "roi": "0.20",
        "workload_impact": "0.35",
        "ease_of_use": "0.15",
        "value_creation": "0.30",
    },
    "agency": {
        "roi": "0.30",
        "workload_impact": "0.30",
        "ease_of_use": "0.15",
        "value_creation": "0.25",
    },
    "brand": {
        "roi": "0.40",
        "workload_impact": "0.10",
        "ease_of_use": "0.15",
        "value_creation": "0.35",
    },
}


def q2(value: Fraction | Decimal) -> Decimal:
    """Round half up to 2 places (money and scores)."""
    if isinstance(value, Fraction):
        return _fraction_to_decimal(value, TWO)
    return value.quantize(TWO, rounding=ROUND_HALF_UP)


def q4(value: Fraction | Decimal) -> Decimal:
    if isinstance(value, Fraction):
        return _fraction_to_decimal(value, FOUR)
    return value.quantize(FOUR, rounding=ROUND_HALF_UP)


def _fraction_to_decimal(value: Fraction, quantum: Decimal) -> Decimal:
    # Exact: scale to integer units of the quantum, round half away from zero.
    units = 1 / Fraction(quantum)
    scaled = value * units
    sign = -1 if scaled < 0 else 1
    whole, rest = divmod(abs(scaled.numerator), scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    return (Decimal(sign * whole) * quantum).quantize(quantum)


def F(value) -> Fraction:
    """An exact Fraction of a Decimal, int or decimal string."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float):
        value = str(value)  # 0.1 means 0.1, not the binary float nearest to it
    return Fraction(Decimal(value))


def sat(x: Fraction) -> Fraction:
    """100 * (1 - 1/(1 + x)) for x ≥ 0: 0 at 0, 50 at 1, towards 100."""
    return 100 * (1 - 1 / (1 + x))


def clamp(x: Fraction, low: Fraction, high: Fraction) -> Fraction:
    return max(low, min(high, x))


@dataclass
class Inputs:
    """The inputs of one score after defaults and evidence (the effective inputs)."""

    revenue: Fraction  # money per month
    conversion: Fraction  # 0-1
    complexity: Fraction  # 0-1
    ui_complexity: Fraction  # 0-1
    hours: Fraction  # hours saved per month
    effort_weeks: Fraction  # > 0
    confidence: Fraction  # 0-1
    reach: Fraction  # accounts
    tickets_per_month: Fraction = Fraction(0)
    onboarding_lift: Fraction = Fraction(0)  # absolute completion-rate lift, -1..1
    at_risk_revenue: Fraction = Fraction(0)  # money per month
    target_personas: list[str] = field(default_factory=list)


@dataclass
class DimensionResult:
    score: Fraction
    formula: str
    steps: dict[str, Fraction]
    inputs: dict[str, Fraction]


def roi(i: Inputs, c: dict) -> DimensionResult:
    revenue = i.revenue + F(c["retention_share"]) * i.at_risk_revenue
    monthly_value = revenue * (1 + i.conversion)
    cost = i.effort_weeks * F(c["cost_per_effort_week"])
    ratio = 12 * monthly_value / cost
    return DimensionResult(
        sat(ratio),
        "effective_revenue = estimated_revenue_impact + retention_share * at_risk_revenue; "
        "monthly_value = effective_revenue * (1 + conversion_potential); "
        "payback = 12 * monthly_value / (effort_weeks * cost_per_effort_week); "
        "roi = 100 * (1 - 1/(1 + payback))",
        {
            "effective_revenue": revenue,
            "monthly_value": monthly_value,
            "build_cost": cost,
            "payback": ratio,
        },
        {
            "estimated_revenue_impact": i.revenue,
            "at_risk_revenue": i.at_risk_revenue,
            "conversion_potential": i.conversion,
            "effort_weeks": i.effort_weeks,
        },
    )


def workload_impact(i: Inputs, c: dict) -> DimensionResult:
    hours = i.hours + i.tickets_per_month * F(c["hours_per_ticket"])
    ratio = hours / F(c["hours_half_score"])
    return DimensionResult(
        sat(ratio),
        "hours = time_savings_hours_per_month + tickets_per_month * hours_per_ticket; "
        "workload_impact = 100 * (1 - 1/(1 + hours / hours_half_score))",
        {"hours_saved": hours, "ratio": ratio},
        {"time_savings_hours_per_month": i.hours, "tickets_per_month": i.tickets_per_month},
    )


def ease_of_use(i: Inputs, c: dict) -> DimensionResult:
    ui = clamp(i.ui_complexity - F(c["lift_to_ui_complexity"]) * i.onboarding_lift, F(0), F(1))
    burden = F(c["complexity_weight"]) * i.complexity + F(c["ui_complexity_weight"]) * ui
    return DimensionResult(
        clamp(100 * (1 - burden), F(0), F(100)),
        "effective_ui_complexity = clamp(ui_complexity - lift_to_ui_complexity * "
        "onboarding_lift, 0, 1); burden = complexity_weight * complexity + "
        "ui_complexity_weight * effective_ui_complexity; ease_of_use = 100 * (1 - burden)",
        {"effective_ui_complexity": ui, "burden": burden},
        {
            "complexity": i.complexity,
            "ui_complexity": i.ui_complexity,
            "onboarding_lift": i.onboarding_lift,
        },
    )


def value_creation(i: Inputs, c: dict) -> DimensionResult:
    breadth = 1 - 1 / (1 + i.reach / F(c["reach_half_score"]))
    base = (i.conversion + breadth) / 2
    certainty = (1 + i.confidence) / 2
    return DimensionResult(
        100 * base * certainty,
        "breadth = 1 - 1/(1 + reach / reach_half_score); "
        "value_creation = 100 * (conversion_potential + breadth)/2 * (1 + confidence)/2",
        {"breadth": breadth, "base": base, "certainty": certainty},
        {"conversion_potential": i.conversion, "reach": i.reach, "confidence": i.confidence},
    )


FORMULAS = {
    "roi": roi,
    "workload_impact": workload_impact,
    "ease_of_use": ease_of_use,
    "value_creation": value_creation,
}


def dimensions(i: Inputs, constants: dict) -> dict[str, DimensionResult]:
    return {name: fn(i, constants) for name, fn in FORMULAS.items()}


def overall(scores: dict[str, Fraction], weights: dict) -> Fraction:
    """Σ weight * dimension (the weights sum to 1, so the result stays on 0-100)."""
    return sum((F(weights[d]) * scores[d] for d in DIMENSIONS), Fraction(0))


def persona_scores(
    scores: dict[str, Fraction],
    persona_weights: dict,
    targets: list[str],
    constants: dict,
) -> dict[str, Fraction]:
    """Each persona weighs the dimensions by its own weights; a persona the feature does not
    target counts at `non_target_factor` (no targets = every persona targeted)."""
    factor = F(constants["non_target_factor"])
    result = {}
    for slug, weights in persona_weights.items():
        value = sum((F(weights[d]) * scores[d] for d in DIMENSIONS), Fraction(0))
        if targets and slug not in targets:
            value *= factor
        result[slug] = value
    return result


def baselines(i: Inputs, ease: Fraction) -> dict[str, Fraction]:
    """RICE, ICE and WSJF on the same inputs, for comparison with the usual frameworks.

    RICE = reach * impact * confidence / effort_weeks, impact = 3 * conversion_potential
    (RICE's 0-3 scale); ICE = impact * confidence * ease, each on 1-10
    (10 * conversion_potential, 10 * confidence, ease_of_use / 10), at least 1 each;
    WSJF = cost of delay / job size, cost of delay = 10 * conversion_potential +
    effective revenue per month / 1000 + at-risk revenue / 1000, job size = effort_weeks."""
    rice = i.reach * 3 * i.conversion * i.confidence / i.effort_weeks
    one = Fraction(1)
    ice = max(one, 10 * i.conversion) * max(one, 10 * i.confidence) * max(one, ease / 10)
    cost_of_delay = 10 * i.conversion + i.revenue / 1000 + i.at_risk_revenue / 1000
    wsjf = cost_of_delay / i.effort_weeks
    return {"rice": rice, "ice": ice, "wsjf": wsjf}


def outcome_score(
    *,
    adoption_rate: Decimal,
    revenue_change: Decimal,
    ticket_change: int,
    time_saved_hours: Decimal,
    effort_weeks: Decimal,
    constants: dict,
) -> Fraction:
    """What a launched feature delivered, on 0-100, mirroring the predicted dimensions:
    the mean of realized ROI (sat of 12 * revenue gained / build cost), realized workload
    (sat of (hours saved + tickets removed * hours_per_ticket) / hours_half_score) and
    adoption (100 * adoption_rate). Losses count as zero gain."""
    revenue = max(F(revenue_change), Fraction(0))
    cost = F(effort_weeks) * F(constants["cost_per_effort_week"])
    realized_roi = sat(12 * revenue / cost)
    hours = max(F(time_saved_hours), Fraction(0)) + max(-F(ticket_change), Fraction(0)) * F(
        constants["hours_per_ticket"]
    )
    realized_workload = sat(hours / F(constants["hours_half_score"]))
    return (realized_roi + realized_workload + 100 * F(adoption_rate)) / 3
