"""The monitors refresh daily (and on demand from the dashboard or the API)."""

from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="compliance.run_monitors",
        func="compliance.tasks.run_monitors",
        schedule_type=Schedule.CRON,
        cron="30 4 * * *",
    ),
]
