from django_q.models import Schedule

from opsplatform.registry import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="userflows.run_due_deletions",
        func="userflows.tasks.run_due_deletions",
        # Every 15 minutes: a deletion runs within a quarter hour of its date, so the default
        # grace period (29 days) answers an erasure request inside GDPR's month.
        schedule_type=Schedule.MINUTES,
        minutes=15,
    ),
    ScheduleSpec(
        name="userflows.send_deletion_reminders",
        func="userflows.tasks.send_deletion_reminders",
        schedule_type=Schedule.CRON,
        cron="0 9 * * *",
    ),
    ScheduleSpec(
        name="userflows.expire_exports",
        func="userflows.tasks.expire_exports",
        schedule_type=Schedule.MINUTES,
        minutes=60,
    ),
    ScheduleSpec(
        # An export whose worker died (or whose job never reached the broker) runs again.
        name="userflows.requeue_stalled_exports",
        func="userflows.tasks.requeue_stalled_exports",
        schedule_type=Schedule.MINUTES,
        minutes=5,
    ),
    ScheduleSpec(
        name="userflows.run_billing_cycle",
        func="userflows.tasks.run_billing_cycle",
        schedule_type=Schedule.MINUTES,
        minutes=60,
    ),
]
