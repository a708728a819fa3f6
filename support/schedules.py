from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="support.sla_breach_sweep",
        func="support.tasks.sweep_sla_breaches",
        schedule_type=Schedule.MINUTES,
        minutes=5,
    ),
]
