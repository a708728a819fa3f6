from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="deployments.evaluate_gates",
        func="deployments.tasks.evaluate_gates",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
    ScheduleSpec(
        name="deployments.check_all_accounts",
        func="deployments.health.tasks.check_all_accounts",
        schedule_type=Schedule.DAILY,
        kwargs={"days": 30, "batch_size": 500},
    ),
]
