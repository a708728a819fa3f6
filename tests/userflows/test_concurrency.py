"""An export and a deletion of the same account running at the same time end with no export
file left, whichever commits first (PostgreSQL: real row locks, threads, committed data)."""

import os
import threading
import time

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.factories import CampaignFactory
from tests.userflows.factories import DeletionRequestFactory, ExportRequestFactory
from userflows.models import DeletionRequest, ExportRequest
from userflows.services import deletion, exports

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (row locks across connections)")


@pytest.fixture
def pending(account):
    CampaignFactory(account=account, starts_on=timezone.localdate(), ends_on=timezone.localdate())
    export = ExportRequestFactory(account=account, status=ExportRequest.Status.PENDING)
    request = DeletionRequestFactory(account=account, scheduled_for=timezone.now())
    return export, request


def files(root) -> list[str]:
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names]


class Worker(threading.Thread):
    """Runs a call on its own database connection and keeps its result or error."""

    def __init__(self, call):
        super().__init__(daemon=True)
        self.call, self.result, self.error = call, None, None

    def run(self):
        try:
            self.result = self.call()
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            connections.close_all()


def test_a_deletion_committed_while_the_export_streams_leaves_no_file(
    pending, settings, monkeypatch
):
    export, request = pending
    reached, go = threading.Event(), threading.Event()
    real_publish = exports._publish

    def paused_publish(**kwargs):
        reached.set()
        assert go.wait(10)
        return real_publish(**kwargs)

    monkeypatch.setattr(exports, "_publish", paused_publish)
    job = Worker(lambda: exports.process_export(export_id=export.pk))
    job.start()
    assert reached.wait(10)  # the ZIP is written, not yet published

    done = deletion.execute_deletion(deletion_id=request.pk)
    go.set()
    job.join(10)

    export.refresh_from_db()
    assert job.error is None and done.status == DeletionRequest.Status.COMPLETED
    assert export.status == ExportRequest.Status.CANCELED and not export.file
    assert files(settings.MEDIA_ROOT) == []


def test_a_deletion_waits_for_a_publish_in_progress_then_removes_the_file(
    pending, settings, monkeypatch
):
    export, request = pending
    locked, go = threading.Event(), threading.Event()
    real_publish = exports._Spool.publish

    def slow_publish(spool):
        locked.set()  # inside _publish: the account row is locked by the export job
        assert go.wait(10)
        return real_publish(spool)

    monkeypatch.setattr(exports._Spool, "publish", slow_publish)
    job = Worker(lambda: exports.process_export(export_id=export.pk))
    job.start()
    assert locked.wait(10)
    eraser = Worker(lambda: deletion.execute_deletion(deletion_id=request.pk))
    eraser.start()
    time.sleep(0.5)
    assert eraser.is_alive()  # blocked on the account's row lock

    go.set()
    job.join(10)
    eraser.join(10)

    export.refresh_from_db()
    assert job.error is None and eraser.error is None
    assert job.result.status == ExportRequest.Status.COMPLETED  # it published first…
    assert eraser.result.status == DeletionRequest.Status.COMPLETED
    assert export.status == ExportRequest.Status.EXPIRED and not export.file  # …then erased
    assert files(settings.MEDIA_ROOT) == []


@pytest.mark.parametrize("attempt", range(3))
def test_racing_an_export_and_a_deletion_never_leaves_a_file(pending, settings, attempt):
    export, request = pending
    start = threading.Barrier(2)

    def after_barrier(call):
        def run():
            start.wait(5)
            return call()

        return run

    job = Worker(after_barrier(lambda: exports.process_export(export_id=export.pk)))
    eraser = Worker(after_barrier(lambda: deletion.execute_deletion(deletion_id=request.pk)))
    job.start()
    eraser.start()
    job.join(20)
    eraser.join(20)

    export.refresh_from_db()
    assert job.error is None and eraser.error is None
    assert eraser.result.status == DeletionRequest.Status.COMPLETED
    assert not export.file
    assert export.status in (ExportRequest.Status.CANCELED, ExportRequest.Status.EXPIRED)
    assert files(settings.MEDIA_ROOT) == []
