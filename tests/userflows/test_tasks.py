"""Task entry points take ids, call one service and are safe to run twice."""

import datetime as dt

from django.utils import timezone

from tests.userflows.factories import DeletionRequestFactory, ExportRequestFactory
from userflows import tasks
from userflows.models import DeletionRequest, ExportRequest


def test_the_export_task_is_safe_to_repeat(account):
    export = ExportRequestFactory(account=account, status=ExportRequest.Status.PENDING)

    assert tasks.run_export(export.pk) == "completed"
    assert tasks.run_export(export.pk) == "completed"
    assert tasks.run_export(10**12) == "missing"


def test_the_deletion_tasks_are_safe_to_repeat(account):
    request = DeletionRequestFactory(
        account=account, scheduled_for=timezone.now() - dt.timedelta(seconds=1)
    )

    assert tasks.run_due_deletions() == {"completed": 1, "failed": 0}
    assert tasks.run_due_deletions() == {"completed": 0, "failed": 0}
    assert tasks.execute_deletion(request.pk) == "completed"
    assert DeletionRequest.objects.get().certificate is not None


def test_the_sweeps_report_what_they_did(db):
    assert tasks.send_deletion_reminders() == 0
    assert tasks.expire_exports() == {"expired": 0, "stuck_failed": 0, "temp_removed": 0}
    assert tasks.run_billing_cycle() == {
        "renewed": 0,
        "ended": 0,
        "invoiced": 0,
        "failed": 0,
        "collected": 0,
        "retry_failed": 0,
        "gave_up": 0,
    }
