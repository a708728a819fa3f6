from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="opsplatform.worker_heartbeat",
        func="opsplatform.tasks.record_worker_heartbeat",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
    ScheduleSpec(
        name="opsplatform.drain_parked_jobs",
        func="opsplatform.tasks.drain_parked_jobs",
        schedule_type=Schedule.MINUTES,
        minutes=1,
    ),
]
