"""The metric registry: every KPI reads one of these, each a set-based reading of another app
through its selectors (docs/checkpoints.md has every definition).

A metric is `compute(window) -> {scope item: Decimal | None}`: per persona slug, per business
function, or per critical journey. None means "no data in the window": shown as such, never
counted as a pass or a failure. Each compute costs a fixed number of queries (one grouped
query or a few) whatever the number of accounts; a run memoises them per window, so metrics
sharing a reading (the journeys, the health figures) read it once.
"""

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from checkpoints.models import JOURNEYS, ScopeKind

RATIO = Decimal("0.0001")
HOURS = Decimal("0.01")
PERSONA, FUNCTION, JOURNEY = "persona", "function", "journey"


@dataclass(frozen=True)
class Window:
    """The UTC days [start, end] of a checkpoint, as the half-open datetimes [since, until)."""

    days: int
    end: dt.date

    @property
    def start(self) -> dt.date:
        return self.end - dt.timedelta(days=self.days - 1)

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), tzinfo=dt.UTC)

    @property
    def until(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def window_ending(as_of: dt.datetime, days: int) -> Window:
    """The `days` whole UTC days before `as_of`'s day (the checkpoint's own day is not over)."""
    return Window(days=days, end=as_of.astimezone(dt.UTC).date() - dt.timedelta(days=1))


def ratio(num, den, places: Decimal = RATIO) -> Decimal | None:
    """num/den rounded half up to `places`, exactly (ints or Fractions); None when den is 0."""
    if not den:
        return None
    return _round_exact(Fraction(num) / Fraction(den), places)


def _round_exact(value: Fraction, places: Decimal) -> Decimal:
    """Round a Fraction half up (away from zero) to `places` with integer arithmetic only."""
    scale = 10 ** -places.as_tuple().exponent
    scaled = abs(value) * scale
    whole = scaled.numerator // scaled.denominator
    if (scaled - whole) * 2 >= 1:
        whole += 1
    sign = -1 if value < 0 else 1
    return (Decimal(sign * whole) / Decimal(scale)).quantize(places)


def hours(delta: dt.timedelta) -> Fraction:
    return Fraction(
        delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds, 3_600_000_000
    )


def nearest_rank(sorted_values: list, p: int):
    """The p-th percentile by the nearest-rank method: the value at rank ⌈p/100 · n⌉ (1-based)
    of the ascending values; None for no values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(Fraction(p, 100) * len(sorted_values)))
    return sorted_values[rank - 1]


# --- persona metrics ------------------------------------------------------------------------------


def _health(run, window: Window) -> dict:
    from studies.selectors import persona_health_onboarding

    return run.memo(("health", window), lambda: persona_health_onboarding(end=window.end))


def health_mean_score(run, window: Window) -> dict:
    out = {}
    for slug, f in _health(run, window).items():
        scores = f["scores"]
        out[slug] = ratio(sum((Fraction(s) for s in scores), Fraction(0)), len(scores), HOURS)
    return out


def health_share_critical(run, window: Window) -> dict:
    return {slug: ratio(f["critical"], f["checked"]) for slug, f in _health(run, window).items()}


def onboarding_completion(run, window: Window) -> dict:
    return {slug: ratio(f["onboarded"], f["accounts"]) for slug, f in _health(run, window).items()}


def renewal_rate(run, window: Window) -> dict:
    from studies.selectors import persona_renewals

    per = run.memo(
        ("renewals", window), lambda: persona_renewals(start=window.start, end=window.end)
    )
    return {slug: ratio(renewed, total) for slug, (total, renewed) in per.items()}


def _revenue(run, window: Window) -> dict:
    from studies.selectors import persona_revenue

    return run.memo(
        ("revenue", window), lambda: persona_revenue(start=window.start, end=window.end)
    )


def revenue_growth(run, window: Window) -> dict:
    """(revenue - previous) / previous per persona, over the window and the one before it."""
    return {
        slug: ratio(current - previous, previous)
        for slug, (current, previous) in _revenue(run, window).items()
        if slug is not None
    }


def pooled_roas(run, window: Window) -> dict:
    from studies.selectors import persona_campaign_totals

    per = run.memo(
        ("campaigns", window), lambda: persona_campaign_totals(start=window.start, end=window.end)
    )
    return {slug: ratio(revenue, spend) for slug, (revenue, spend) in per.items()}


def tickets_per_account(run, window: Window) -> dict:
    from opsplatform.selectors import account_counts_by_persona
    from support.selectors import tickets_by_persona

    accounts = account_counts_by_persona(until=window.until)
    tickets = tickets_by_persona(since=window.since, until=window.until)
    return {slug: ratio(tickets.get(slug, 0), accounts.get(slug, 0)) for slug in run.personas}


# --- function metrics -----------------------------------------------------------------------------


def _first_responses(run, window: Window) -> list:
    from support.selectors import first_response_journeys

    return run.memo(
        ("first_responses", window),
        lambda: first_response_journeys(since=window.since, until=window.until),
    )


def support_first_response_median_hours(run, window: Window) -> dict:
    """The median (nearest rank, p50) of hours from opening to the first response."""
    durations = sorted(hours(r - c) for c, r, _ in _first_responses(run, window) if r is not None)
    median = nearest_rank(durations, 50)
    return {"support": None if median is None else _round_exact(median, HOURS)}


def support_sla_attainment(run, window: Window) -> dict:
    rows = _first_responses(run, window)
    met = sum(1 for _, r, due in rows if r is not None and r <= due)
    return {"support": ratio(met, len(rows))}


def billing_payment_failure_rate(run, window: Window) -> dict:
    from userflows.selectors import payment_failure_counts

    total, failed = payment_failure_counts(since=window.since, until=window.until)
    return {"billing": ratio(failed, total)}


def billing_involuntary_churn(run, window: Window) -> dict:
    from userflows.selectors import involuntary_churn_counts

    live, churned = involuntary_churn_counts(since=window.since, until=window.until)
    return {"billing": ratio(churned, live)}


def onboarding_completion_all(run, window: Window) -> dict:
    figures = _health(run, window).values()
    return {
        "onboarding": ratio(
            sum(f["onboarded"] for f in figures), sum(f["accounts"] for f in figures)
        )
    }


def _deployments(run, window: Window) -> dict:
    from deployments.selectors import deployment_outcomes

    return run.memo(
        ("deployments", window),
        lambda: deployment_outcomes(since=window.since, until=window.until),
    )


def deployment_success_rate(run, window: Window) -> dict:
    c = _deployments(run, window)
    return {"deployments": ratio(c["completed"], c["completed"] + c["rolled_back"] + c["failed"])}


def deployment_rollbacks(run, window: Window) -> dict:
    return {"deployments": Decimal(_deployments(run, window)["rolled_back"])}


def compliance_failing_monitors(run, window: Window) -> dict:
    from compliance.selectors import failing_monitor_count

    at = None if run.is_now else window.until
    checked, failing = failing_monitor_count(at=at)
    return {"compliance": Decimal(failing) if checked else None}


def revenue_growth_total(run, window: Window) -> dict:
    current, previous = _revenue(run, window)[None]
    return {"revenue": ratio(current - previous, previous)}


# --- journeys -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JourneyStats:
    """Journeys started (or due) in the window, those that succeeded, and the p50/p95 of the
    end-to-end hours of those that finished (nearest rank)."""

    count: int
    succeeded: int
    p50_hours: Decimal | None
    p95_hours: Decimal | None

    @property
    def success_rate(self) -> Decimal | None:
        return ratio(self.succeeded, self.count)

    def as_dict(self) -> dict:
        return {
            "count": self.count,
            "succeeded": self.succeeded,
            "success_rate": _s(self.success_rate),
            "p50_hours": _s(self.p50_hours),
            "p95_hours": _s(self.p95_hours),
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def journey_stats(durations: list[Fraction], count: int, succeeded: int) -> JourneyStats:
    ordered = sorted(durations)
    p50, p95 = nearest_rank(ordered, 50), nearest_rank(ordered, 95)
    return JourneyStats(
        count=count,
        succeeded=succeeded,
        p50_hours=None if p50 is None else _round_exact(p50, HOURS),
        p95_hours=None if p95 is None else _round_exact(p95, HOURS),
    )


def _clamped(delta: dt.timedelta) -> Fraction:
    return max(hours(delta), Fraction(0))


def _journeys(run, window: Window) -> dict[str, JourneyStats]:
    return run.memo(("journeys", window), lambda: measure_journeys(run, window))


def measure_journeys(run, window: Window) -> dict[str, JourneyStats]:
    from deployments.selectors import onboarding_journeys
    from opsplatform.selectors import campaign_first_metrics
    from userflows.selectors import deletion_journeys, export_journeys

    since, until = window.since, window.until
    stats = {}
    # signup → onboarding completed: success = completed before the window's end.
    rows = onboarding_journeys(since=since, until=until)
    done = [_clamped(d - c) for _, c, d in rows if d is not None]
    stats["signup_onboarding"] = journey_stats(done, len(rows), len(done))
    # campaign created → first metrics: a day's metrics exist at the end of that UTC day.
    rows = campaign_first_metrics(since=since, until=until)
    done = [
        _clamped(dt.datetime.combine(f + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC) - c)
        for c, f in rows
        if f is not None
    ]
    stats["campaign_first_metrics"] = journey_stats(done, len(rows), len(done))
    # export requested → ready.
    rows = export_journeys(since=since, until=until)
    done = [_clamped(d - c) for c, d in rows if d is not None]
    stats["export_ready"] = journey_stats(done, len(rows), len(done))
    # deletion requested → executed on its date: success = completed before the end of the
    # UTC day after the scheduled moment (the daily job's run), durations request → completion.
    rows = deletion_journeys(since=since, until=until)
    done = [_clamped(d - r) for r, _, d in rows if d is not None]
    on_time = sum(1 for _, s, d in rows if d is not None and d <= s + dt.timedelta(days=1))
    stats["deletion_executed"] = journey_stats(done, len(rows), on_time)
    # ticket opened → first response within SLA.
    rows = _first_responses(run, window)
    done = [_clamped(r - c) for c, r, _ in rows if r is not None]
    met = sum(1 for _, r, due in rows if r is not None and r <= due)
    stats["ticket_first_response"] = journey_stats(done, len(rows), met)
    return stats


def journey_p50_hours(run, window: Window) -> dict:
    return {key: s.p50_hours for key, s in _journeys(run, window).items()}


def journey_p95_hours(run, window: Window) -> dict:
    return {key: s.p95_hours for key, s in _journeys(run, window).items()}


def journey_success_rate(run, window: Window) -> dict:
    return {key: s.success_rate for key, s in _journeys(run, window).items()}


# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    kind: str  # PERSONA, FUNCTION or JOURNEY
    unit: str
    compute: Callable
    function: str = ""  # for FUNCTION metrics: the business function it measures


REGISTRY: dict[str, Metric] = {
    m.key: m
    for m in [
        Metric(
            "health_mean_score", "Mean account health score", PERSONA, "points", health_mean_score
        ),
        Metric(
            "health_share_critical",
            "Share of accounts critical",
            PERSONA,
            "ratio",
            health_share_critical,
        ),
        Metric("renewal_rate", "Campaign renewal rate", PERSONA, "ratio", renewal_rate),
        Metric("revenue_growth", "Revenue growth", PERSONA, "ratio", revenue_growth),
        Metric("pooled_roas", "Pooled ROAS", PERSONA, "ratio", pooled_roas),
        Metric(
            "tickets_per_account", "Tickets per account", PERSONA, "tickets", tickets_per_account
        ),
        Metric(
            "onboarding_completion",
            "Onboarding completion",
            PERSONA,
            "ratio",
            onboarding_completion,
        ),
        Metric(
            "support_first_response_median_hours",
            "Median first response",
            FUNCTION,
            "hours",
            support_first_response_median_hours,
            "support",
        ),
        Metric(
            "support_sla_attainment",
            "First-response SLA attainment",
            FUNCTION,
            "ratio",
            support_sla_attainment,
            "support",
        ),
        Metric(
            "billing_payment_failure_rate",
            "Payment failure rate",
            FUNCTION,
            "ratio",
            billing_payment_failure_rate,
            "billing",
        ),
        Metric(
            "billing_involuntary_churn",
            "Involuntary churn",
            FUNCTION,
            "ratio",
            billing_involuntary_churn,
            "billing",
        ),
        Metric(
            "onboarding_completion_all",
            "Onboarding completion (all accounts)",
            FUNCTION,
            "ratio",
            onboarding_completion_all,
            "onboarding",
        ),
        Metric(
            "deployment_success_rate",
            "Deployment success rate",
            FUNCTION,
            "ratio",
            deployment_success_rate,
            "deployments",
        ),
        Metric(
            "deployment_rollbacks",
            "Deployments rolled back",
            FUNCTION,
            "count",
            deployment_rollbacks,
            "deployments",
        ),
        Metric(
            "compliance_failing_monitors",
            "Failing compliance monitors",
            FUNCTION,
            "count",
            compliance_failing_monitors,
            "compliance",
        ),
        Metric(
            "revenue_growth_total",
            "Revenue growth (all accounts)",
            FUNCTION,
            "ratio",
            revenue_growth_total,
            "revenue",
        ),
        Metric("journey_p50_hours", "Journey p50", JOURNEY, "hours", journey_p50_hours),
        Metric("journey_p95_hours", "Journey p95", JOURNEY, "hours", journey_p95_hours),
        Metric(
            "journey_success_rate", "Journey success rate", JOURNEY, "ratio", journey_success_rate
        ),
    ]
}
_KIND_OF_SCOPE = {
    ScopeKind.PERSONA: PERSONA,
    ScopeKind.ALL_PERSONAS: PERSONA,
    ScopeKind.FUNCTION: FUNCTION,
    ScopeKind.JOURNEY: JOURNEY,
}


def scope_problem(
    scope_kind: str, scope: str, metric_key: str, persona_slugs=None
) -> tuple[str, str] | None:
    """(field, message) when the scope and the metric do not fit together, else None."""
    metric = REGISTRY.get(metric_key)
    if metric is None:
        return "metric", f"Unknown metric {metric_key!r}; one of: {', '.join(REGISTRY)}."
    if scope_kind not in ScopeKind.values:
        return "scope_kind", f"Unknown scope kind {scope_kind!r}."
    if _KIND_OF_SCOPE[scope_kind] != metric.kind:
        return "metric", f"Metric {metric_key} measures a {metric.kind}, not a {scope_kind}."
    if scope_kind == ScopeKind.ALL_PERSONAS and scope:
        return "scope", "Leave the scope empty for every persona."
    if scope_kind == ScopeKind.PERSONA:
        if persona_slugs is None:
            from opsplatform.models import Persona

            persona_slugs = set(Persona.objects.values_list("slug", flat=True))
        if scope not in persona_slugs:
            return "scope", f"Unknown persona {scope!r}."
    if scope_kind == ScopeKind.FUNCTION and scope != metric.function:
        return "scope", f"Metric {metric_key} measures the {metric.function} function."
    if scope_kind == ScopeKind.JOURNEY and scope not in JOURNEYS:
        return "scope", f"Unknown journey {scope!r}; one of: {', '.join(JOURNEYS)}."
    return None
