"""A scaling checkpoint on the first of every month at 05:00 UTC (and on demand by the API)."""

from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="checkpoints.monthly_checkpoint",
        func="checkpoints.tasks.monthly_checkpoint",
        schedule_type=Schedule.CRON,
        cron="0 5 1 * *",
    ),
]
