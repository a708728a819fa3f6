from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="deployments.evaluate_gates",
        func="deployments.tasks.evaluate_gates",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
]
