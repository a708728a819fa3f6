"""Reads of the studies app: lists with their filters, one study, a metric's series."""

import datetime as dt

from django.db.models import QuerySet

from opsplatform.errors import InvalidInput, NotFound
from studies import metrics
from studies.models import Study


def study_list(
    *,
    study_type: str | None = None,
    status: str | None = None,
    persona_segment: str | None = None,
    period_from: dt.date | None = None,
    period_to: dt.date | None = None,
) -> QuerySet[Study]:
    """Studies, newest first. `persona_segment="all"` selects the all-accounts studies."""
    studies = Study.objects.select_related("persona_segment", "requested_by")
    if study_type:
        studies = studies.filter(study_type=study_type)
    if status:
        studies = studies.filter(status=status)
    if persona_segment == "all":
        studies = studies.filter(persona_segment__isnull=True)
    elif persona_segment:
        studies = studies.filter(persona_segment__slug=persona_segment)
    if period_from:
        studies = studies.filter(period_start__gte=period_from)
    if period_to:
        studies = studies.filter(period_end__lte=period_to)
    return studies


def study_get(*, study_id: int) -> Study:
    study = (
        Study.objects.select_related("persona_segment", "requested_by").filter(pk=study_id).first()
    )
    if study is None:
        raise NotFound("Study not found.")
    return study


def _value(study: Study, metric: str, persona: str | None):
    results = study.results or {}
    if study.study_type == Study.Type.PERSONA_IMPACT:
        results = results.get("personas", {}).get(persona, {})
    elif persona is not None:
        results = results.get("by_persona", {}).get(persona, {})
    return results.get(metric)


def study_series(*, study_type: str, metric: str, persona_segment: str | None = None) -> list:
    """One metric over the completed all-accounts studies of a type, oldest period first.
    With a persona, the value is that persona's figure from each study's breakdown, so the
    personas of one run sit side by side."""
    allowed = metrics.SERIES_METRICS.get(study_type)
    if allowed is None:
        raise InvalidInput(
            f"{study_type} has no series; use one of {', '.join(metrics.SERIES_METRICS)}.",
            field="study_type",
        )
    if metric not in allowed:
        raise InvalidInput(
            f"{study_type} has no metric {metric!r}; use one of {', '.join(allowed)}.",
            field="metric",
        )
    if study_type == Study.Type.PERSONA_IMPACT and persona_segment is None:
        raise InvalidInput("persona_impact series need a persona_segment.", field="persona_segment")
    studies = Study.objects.filter(
        study_type=study_type, status=Study.Status.COMPLETED, persona_segment__isnull=True
    ).order_by("period_end", "period_start", "computed_at", "id")
    return [
        {
            "study_id": study.pk,
            "period_start": study.period_start,
            "period_end": study.period_end,
            "computed_at": study.computed_at,
            "definition_version": study.definition_version,
            "value": _value(study, metric, persona_segment),
        }
        for study in studies.only(
            "id",
            "study_type",
            "period_start",
            "period_end",
            "computed_at",
            "definition_version",
            "results",
        )
    ]


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


HEADLINE_METRIC = {
    "renewal_rate": "renewal_rate",
    "revenue_growth": "growth_rate",
    "campaign_efficiency": "pooled_roas",
    "persona_impact": "revenue_share",
}


def longitudinal(
    *, study_type: str, metrics: list[str], until: dt.date | None = None
) -> tuple[list[str], dict[str, dict[str, list[float | None]]]]:
    """x labels (each run's period end) and, per metric, one line for all accounts plus one
    per persona, from the completed all-accounts studies of a type (two queries)."""
    from opsplatform.models import Persona

    studies = Study.objects.filter(
        study_type=study_type, status=Study.Status.COMPLETED, persona_segment__isnull=True
    ).order_by("period_end", "period_start", "computed_at", "id")
    if until is not None:
        studies = studies.filter(period_end__lte=until)
    studies = list(studies.only("id", "study_type", "period_start", "period_end", "results"))
    slugs = list(Persona.objects.order_by("slug").values_list("slug", flat=True))
    labels = [s.period_end.isoformat() for s in studies]
    charts: dict[str, dict[str, list[float | None]]] = {}
    for metric in metrics:
        lines: dict[str, list[float | None]] = {}
        if study_type != Study.Type.PERSONA_IMPACT:
            lines["all"] = [_number(_value(s, metric, None)) for s in studies]
        for slug in slugs:
            lines[slug] = [_number(_value(s, metric, slug)) for s in studies]
        charts[metric] = lines
    return labels, charts


def flatten(results: dict, prefix: str = "") -> dict:
    """Nested results as dotted keys (lists are kept whole)."""
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def headline(study: Study) -> list[tuple[str, object]]:
    """The top-level figures of a result (not the per-persona breakdowns)."""
    return [
        (key, value)
        for key, value in (study.results or {}).items()
        if not isinstance(value, dict | list)
    ]


def persona_table(study: Study) -> tuple[list[str], list[tuple[str, list]]]:
    """(columns, rows): one row per persona of `by_persona` / `personas`, flattened."""
    results = study.results or {}
    per = results.get("by_persona") or results.get("personas") or {}
    rows = [(slug, flatten(values)) for slug, values in per.items()]
    columns = list(rows[0][1]) if rows else []
    return columns, [(slug, [values.get(c) for c in columns]) for slug, values in rows]


CSV_HEADER = ["study_id", "study_type", "period_start", "period_end", "segment", "group", "metric"]


def study_rows(studies) -> list[list]:
    """Every figure of each study as one CSV row: the headline under group "all", the
    per-persona figures under the persona, cohorts under their month with one row per month
    since (metric[k])."""
    rows = [[*CSV_HEADER, "value"]]
    for study in studies:
        base = [
            study.pk,
            study.study_type,
            study.period_start.isoformat(),
            study.period_end.isoformat(),
            study.segment_slug or "all",
        ]
        results = study.results or {}
        for key, value in results.items():
            if key in ("by_persona", "personas"):
                for slug, values in value.items():
                    for metric, figure in flatten(values).items():
                        rows.append([*base, slug, metric, figure])
            elif key == "cohorts":
                for cohort in value:
                    rows.append([*base, cohort["cohort"], "accounts", cohort["accounts"]])
                    for series in ("revenue", "revenue_retention", "logo_retention"):
                        for k, figure in enumerate(cohort.get(series, [])):
                            rows.append([*base, cohort["cohort"], f"{series}[{k}]", figure])
            else:
                rows.append([*base, "all", key, value])
    return rows


# --- persona figures for the scaling checkpoints (the study definitions, set-based) -------------


def persona_health_onboarding(*, end: dt.date) -> dict[str, dict]:
    """persona slug → {"accounts", "onboarded", "checked", "critical", "scores": [Decimal]} of
    the accounts created by `end`: each one's latest health check by then (one query)."""
    slugs = metrics.personas(None)
    figures = metrics.health_and_onboarding(end, None)
    return {
        slug: {
            "accounts": figures[pid]["accounts"] if pid in figures else 0,
            "onboarded": figures[pid]["onboarded"] if pid in figures else 0,
            "checked": figures[pid]["checked"] if pid in figures else 0,
            "critical": figures[pid]["critical"] if pid in figures else 0,
            "scores": list(figures[pid]["scored"]) if pid in figures else [],
        }
        for pid, slug in slugs.items()
    }


def persona_renewals(*, start: dt.date, end: dt.date) -> dict[str, tuple[int, int]]:
    """persona slug → (live campaigns ending in the period, those renewed)."""
    per = metrics.renewal_rate(start, end, None)["by_persona"]
    return {slug: (f["total_campaigns"], f["renewed_campaigns"]) for slug, f in per.items()}


def persona_revenue(*, start: dt.date, end: dt.date) -> dict[str | None, tuple]:
    """persona slug (None: everyone) → (recognised revenue in the period, in the previous period
    of the same length), exact cents as Fractions."""
    slugs = metrics.personas(None)
    revenue = metrics.account_revenue(start, end, None)
    result: dict[str | None, tuple] = {None: revenue.totals()}
    for pid, slug in slugs.items():
        result[slug] = revenue.totals(pid)
    return result


def persona_campaign_totals(*, start: dt.date, end: dt.date) -> dict[str, tuple[int, int]]:
    """persona slug → (revenue cents, spend cents) of live campaigns' metric rows in the period."""
    slugs = metrics.personas(None)
    per = dict.fromkeys(slugs.values(), (0, 0))
    for persona_id, spend, revenue, *_ in metrics.campaign_totals(start, end, None):
        slug = slugs[persona_id]
        per[slug] = (per[slug][0] + revenue, per[slug][1] + spend)
    return per
