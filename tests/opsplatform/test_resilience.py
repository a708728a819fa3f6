"""What the API and the job queue do when a backing service fails: a lost database answers
503 at once, a cache that does not answer lets requests through, and jobs queued while the
Redis broker is down are parked in the database and moved to the broker later. (The same
with real processes: tests/faults and test_redis_topology.py.)"""

import datetime as dt

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from opsplatform import queueing
from tests.factories import AccountFactory, CampaignFactory
from tests.userflows.factories import ExportRequestFactory
from userflows.models import ExportRequest
from userflows.services import exports


class DeadCache:
    """A cache whose server is gone: every call raises, as Django's Redis cache does."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

        return fail


def test_a_lost_database_answers_503_with_the_envelope(api, monkeypatch):
    def lost(raw):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("opsplatform.selectors.api_token_authenticate", lost)

    response = api.get("me")

    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response.json() == {
        "detail": "The database is briefly unavailable; retry in a few seconds.",
        "code": "unavailable",
    }


def test_the_api_answers_while_the_cache_is_down(api, account, monkeypatch):
    monkeypatch.setattr("opsplatform.throttling.cache", DeadCache())

    response = api.get("me")

    assert response.status_code == 200
    assert response.json()["account"]["id"] == account.id


def test_a_bad_token_is_still_refused_while_the_cache_is_down(db, client, monkeypatch):
    monkeypatch.setattr("opsplatform.throttling.cache", DeadCache())

    response = client.get("/api/v1/me", headers={"Authorization": "Bearer ops_nothing"})

    assert response.status_code == 401


@pytest.fixture
def redis_configured(monkeypatch):
    """The test cluster runs jobs inline (sync); here jobs must be queued, with Redis named."""
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "REDIS", "redis://127.0.0.1:1/0")


def test_a_job_queued_while_the_broker_is_down_is_parked_then_moved(
    db, redis_configured, monkeypatch
):
    real_async_task = queueing.async_task

    def broker_down(func, *args, **kwargs):
        if "broker" not in kwargs:
            raise ConnectionError("Error 111 connecting to Redis")
        return real_async_task(func, *args, **kwargs)

    monkeypatch.setattr(queueing, "async_task", broker_down)

    queueing.enqueue("support.tasks.send_acknowledgement", 41)
    queueing.enqueue("userflows.tasks.run_export", 42, task_name="export-42")

    parked = list(OrmQ.objects.filter(key=queueing.PARKED_KEY).order_by("id"))
    assert [
        (SignedPackage.loads(p.payload)["func"], SignedPackage.loads(p.payload)["args"])
        for p in parked
    ] == [
        ("support.tasks.send_acknowledgement", (41,)),
        ("userflows.tasks.run_export", (42,)),
    ]

    class Broker:
        pushed = []

        def enqueue(self, payload):
            self.pushed.append(SignedPackage.loads(payload)["name"])

    monkeypatch.setattr(queueing, "get_broker", Broker)
    assert queueing.drain_parked_jobs() == 2
    assert Broker.pushed[1] == "export-42"
    assert not OrmQ.objects.filter(key=queueing.PARKED_KEY).exists()
    assert queueing.drain_parked_jobs() == 0  # a second run finds nothing


def test_without_redis_a_broker_failure_is_not_hidden(db, monkeypatch):
    monkeypatch.setattr(Conf, "REDIS", None)

    def broken(*args, **kwargs):
        raise OperationalError("database is gone")

    monkeypatch.setattr(queueing, "async_task", broken)
    with pytest.raises(OperationalError):
        queueing.enqueue("opsplatform.tasks.record_worker_heartbeat")


def test_stalled_exports_are_run_again_and_fresh_ones_left_alone(db, settings):
    """Pending or processing for longer than the cluster's retry: queued again (here the
    test cluster runs it inline, so it completes); newer or hours-old ones are not."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "retry": 720}
    today = timezone.localdate()
    now = timezone.now()

    def export(status, age, started=None):
        account = AccountFactory()  # one active export per account
        CampaignFactory(account=account, starts_on=today, ends_on=today)
        return ExportRequestFactory(
            account=account,
            status=status,
            created_at=now - age,
            started_at=None if started is None else now - started,
        )

    lost_pending = export("pending", dt.timedelta(minutes=13))
    fresh = export("pending", dt.timedelta(minutes=5))
    dead_worker = export("processing", dt.timedelta(minutes=30), dt.timedelta(minutes=29))
    running = export("processing", dt.timedelta(minutes=10), dt.timedelta(minutes=10))
    abandoned = export("pending", dt.timedelta(hours=4))

    assert exports.requeue_stalled_exports(now=now) == 2

    status = dict(ExportRequest.objects.values_list("id", "status"))
    assert status[lost_pending.pk] == "completed"
    assert status[dead_worker.pk] == "completed"
    assert status[fresh.pk] == "pending"
    assert status[running.pk] == "processing"
    assert status[abandoned.pk] == "pending"  # expire_exports fails it, after 3 hours
