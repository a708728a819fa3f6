"""Longitudinal study schedules: each runs one study type over the last `frequency_days` days up
to yesterday. `schedule_longitudinal_studies` upserts more of them by name; the default set
below (monthly, the four seed studies) is upserted by `manage.py sync_schedules`."""

from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

DEFAULT_FREQUENCY_DAYS = 30
DEFAULT_TYPES = ("renewal_rate", "revenue_growth", "campaign_efficiency", "persona_impact")


def schedule_spec(study_type: str, frequency_days: int) -> ScheduleSpec:
    return ScheduleSpec(
        name=f"studies.{study_type}.every_{frequency_days}d",
        func="studies.tasks.run_scheduled_study",
        schedule_type=Schedule.MINUTES,
        minutes=frequency_days * 24 * 60,
        kwargs={"study_type": study_type, "frequency_days": frequency_days},
    )


SCHEDULES = [schedule_spec(t, DEFAULT_FREQUENCY_DAYS) for t in DEFAULT_TYPES]
