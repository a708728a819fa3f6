"""django-q2 entry points: each takes ids, calls one service, and is safe to run twice."""

from opsplatform import telemetry
from userflows.services import billing, deletion, exports


def run_export(export_id: int) -> str:
    export = exports.process_export(export_id=export_id)
    return "missing" if export is None else export.status


def execute_deletion(deletion_id: int) -> str:
    done = deletion.execute_deletion(deletion_id=deletion_id)
    return "missing" if done is None else done.status


def run_due_deletions() -> dict:
    telemetry.TASKS_RUN.labels("run_due_deletions").inc()
    return deletion.run_due_deletions()


def send_deletion_reminders() -> int:
    telemetry.TASKS_RUN.labels("send_deletion_reminders").inc()
    return deletion.send_deletion_reminders()


def requeue_stalled_exports() -> int:
    telemetry.TASKS_RUN.labels("requeue_stalled_exports").inc()
    return exports.requeue_stalled_exports()


def expire_exports() -> dict:
    telemetry.TASKS_RUN.labels("expire_exports").inc()
    return exports.expire_exports()


def run_billing_cycle() -> dict:
    telemetry.TASKS_RUN.labels("run_billing_cycle").inc()
    return billing.run_billing_cycle()
