"""Every write of the studies app: request a study, run it (queued → running → completed or
failed through the status machine), the five `conduct_*` services, and the schedules."""

import datetime as dt
import logging
import time
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from opsplatform.errors import InvalidInput
from opsplatform.models import Persona
from opsplatform.queueing import on_commit_enqueue
from opsplatform.transitions import transition
from studies import metrics
from studies.models import DEFINITION_VERSION, Study
from studies.schedules import schedule_spec

logger = logging.getLogger(__name__)

MAX_PERIOD_YEARS = 10
MAX_FREQUENCY_DAYS = 3660


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February → 1 March
        return day.replace(year=day.year + years, month=3, day=1)


def validate_period(*, period_start: dt.date, period_end: dt.date) -> None:
    """End on or after start, and shorter than ten years (422 on `period_end` otherwise)."""
    if period_end < period_start:
        raise InvalidInput("period_end is before period_start.", field="period_end")
    if period_end >= _add_years(period_start, MAX_PERIOD_YEARS):
        raise InvalidInput("A study covers at most ten years.", field="period_end")


def resolve_persona(persona_segment: str | Persona | None) -> Persona | None:
    if persona_segment is None or isinstance(persona_segment, Persona):
        return persona_segment
    persona = Persona.objects.filter(slug=persona_segment).first()
    if persona is None:
        raise InvalidInput(f"Unknown persona {persona_segment!r}.", field="persona_segment")
    return persona


def request_study(
    *,
    study_type: str,
    period_start: dt.date,
    period_end: dt.date,
    persona_segment: str | Persona | None = None,
    actor=None,
    schedule_name: str = "",
    background: bool = False,
) -> Study:
    """Create a study and run it now, or queue it for the worker with `background`."""
    if study_type not in Study.Type.values:
        raise InvalidInput(f"Unknown study type {study_type!r}.", field="study_type")
    validate_period(period_start=period_start, period_end=period_end)
    persona = resolve_persona(persona_segment)
    with transaction.atomic():
        study = Study(
            study_type=study_type,
            period_start=period_start,
            period_end=period_end,
            persona_segment=persona,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            schedule_name=schedule_name,
        )
        study.full_clean()
        if study.requested_by is not None:
            study._history_user = actor
        study.save()
        if background:
            on_commit_enqueue("studies.tasks.run_study", study.pk)
    if background:
        return study
    return run_study(study_id=study.pk, actor=actor)


def run_study(*, study_id: int, actor=None) -> Study:
    """Compute a queued study. A failure is recorded on the study (status failed, the error)
    instead of raised, so a scheduled run leaves a trace; running it twice changes nothing."""
    study = Study.objects.select_related("persona_segment").get(pk=study_id)
    if study.status != Study.Status.QUEUED:
        return study
    study = transition(study, Study.Status.RUNNING, actor=actor)
    started = time.perf_counter()
    try:
        results = metrics.COMPUTE[study.study_type](
            study.period_start, study.period_end, study.persona_segment
        )
    except Exception as exc:
        logger.exception("Study %s failed", study.pk)
        return transition(
            study,
            Study.Status.FAILED,
            actor=actor,
            reason="computation failed",
            error=f"{type(exc).__name__}: {exc}"[:2000],
            duration_ms=_elapsed_ms(started),
        )
    return transition(
        study,
        Study.Status.COMPLETED,
        actor=actor,
        results=results,
        definition_version=DEFINITION_VERSION,
        duration_ms=_elapsed_ms(started),
    )


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _conduct(study_type, period_start, period_end, persona_segment, actor, schedule_name):
    return request_study(
        study_type=study_type,
        period_start=period_start,
        period_end=period_end,
        persona_segment=persona_segment,
        actor=actor,
        schedule_name=schedule_name,
    )


def conduct_renewal_rate_study(
    period_start: dt.date,
    period_end: dt.date,
    persona_segment: str | Persona | None = None,
    *,
    actor=None,
    schedule_name: str = "",
) -> Study:
    return _conduct(
        Study.Type.RENEWAL_RATE, period_start, period_end, persona_segment, actor, schedule_name
    )


def conduct_revenue_growth_study(
    period_start: dt.date,
    period_end: dt.date,
    persona_segment: str | Persona | None = None,
    *,
    actor=None,
    schedule_name: str = "",
) -> Study:
    return _conduct(
        Study.Type.REVENUE_GROWTH, period_start, period_end, persona_segment, actor, schedule_name
    )


def conduct_campaign_efficiency_study(
    period_start: dt.date,
    period_end: dt.date,
    persona_segment: str | Persona | None = None,
    *,
    actor=None,
    schedule_name: str = "",
) -> Study:
    return _conduct(
        Study.Type.CAMPAIGN_EFFICIENCY,
        period_start,
        period_end,
        persona_segment,
        actor,
        schedule_name,
    )


def conduct_persona_impact_study(
    period_start: dt.date,
    period_end: dt.date,
    persona_segment: str | Persona | None = None,
    *,
    actor=None,
    schedule_name: str = "",
) -> Study:
    return _conduct(
        Study.Type.PERSONA_IMPACT, period_start, period_end, persona_segment, actor, schedule_name
    )


def conduct_revenue_cohort_study(
    period_start: dt.date,
    period_end: dt.date,
    persona_segment: str | Persona | None = None,
    *,
    actor=None,
    schedule_name: str = "",
) -> Study:
    return _conduct(
        Study.Type.REVENUE_COHORTS, period_start, period_end, persona_segment, actor, schedule_name
    )


def schedule_longitudinal_studies(
    study_types: Iterable[str], frequency_days: int, *, actor=None
) -> list[Schedule]:
    """Upsert one django-q2 schedule per study type, by name: calling it again with the same
    arguments changes nothing; each run covers the last `frequency_days` up to yesterday."""
    types = list(dict.fromkeys(study_types))
    if not types:
        raise InvalidInput("Give at least one study type.", field="study_types")
    unknown = [t for t in types if t not in Study.Type.values]
    if unknown:
        raise InvalidInput(f"Unknown study types: {', '.join(unknown)}.", field="study_types")
    if not 1 <= frequency_days <= MAX_FREQUENCY_DAYS:
        raise InvalidInput(
            f"frequency_days must be 1 to {MAX_FREQUENCY_DAYS}.", field="frequency_days"
        )
    schedules = []
    with transaction.atomic():
        for study_type in types:
            spec = schedule_spec(study_type, frequency_days)
            schedule, _ = Schedule.objects.update_or_create(
                name=spec.name,
                defaults={
                    "func": spec.func,
                    "schedule_type": spec.schedule_type,
                    "minutes": spec.minutes,
                    "cron": spec.cron,
                    "kwargs": spec.kwargs,
                    "repeats": -1,
                },
            )
            schedules.append(schedule)
    return schedules


def run_scheduled_study(
    *, study_type: str, frequency_days: int, today: dt.date | None = None
) -> Study | None:
    """One daily tick of a schedule: when due, a study of the last `frequency_days` days up to
    yesterday. Due when this schedule has no completed study yet or its last one ended
    `frequency_days` or more days before yesterday. Safe to run twice: a study this schedule
    already completed for the same period is returned, not redone. None when not due."""
    period_end = (today or timezone.localdate()) - dt.timedelta(days=1)
    period_start = period_end - dt.timedelta(days=frequency_days - 1)
    name = schedule_spec(study_type, frequency_days).name
    last = (
        Study.objects.filter(
            schedule_name=name, study_type=study_type, status=Study.Status.COMPLETED
        )
        .order_by("-period_end")
        .first()
    )
    if last is not None:
        if last.period_end == period_end and last.period_start == period_start:
            return last
        if last.period_end + dt.timedelta(days=frequency_days) > period_end:
            return None
    return request_study(
        study_type=study_type,
        period_start=period_start,
        period_end=period_end,
        schedule_name=name,
    )
