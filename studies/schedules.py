"""Longitudinal study schedules: each runs one study type over the last `frequency_days` days up
to yesterday, every `frequency_days` days. `schedule_longitudinal_studies` upserts more of them
by name; the default set below (every 30 days, the four seed studies) is upserted by
`manage.py sync_schedules`.

The schedules fire daily and the task runs a study only when one is due (the last run's
period ended `frequency_days` or more days before yesterday): django-q2 keeps `minutes` in a
small integer (at most 32767, about 22 days on PostgreSQL), and a daily check also catches up
after the worker was down."""

from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

DEFAULT_FREQUENCY_DAYS = 30
DEFAULT_TYPES = ("renewal_rate", "revenue_growth", "campaign_efficiency", "persona_impact")


def schedule_spec(study_type: str, frequency_days: int) -> ScheduleSpec:
    return ScheduleSpec(
        name=f"studies.{study_type}.every_{frequency_days}d",
        func="studies.tasks.run_scheduled_study",
        schedule_type=Schedule.DAILY,
        kwargs={"study_type": study_type, "frequency_days": frequency_days},
    )


SCHEDULES = [schedule_spec(t, DEFAULT_FREQUENCY_DAYS) for t in DEFAULT_TYPES]
