"""The production topology's Redis path: the Redis cache holding the rate limits and the
failed-credential counts, and a django-q2 job that survives the death of its worker.

Run when REDIS_URL is set (CI's Redis pass; `make faults` too). The worker test also needs
PostgreSQL: the cluster runs in another process and reads the test's committed rows.
"""

import datetime as dt
import hashlib
import os
import time

import psycopg
import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from tests import topology
from tests.factories import CampaignFactory, token_for
from tests.userflows.factories import ExportRequestFactory
from userflows.models import ExportRequest

REDIS_URL = os.environ.get("REDIS_URL", "")
QUEUE_KEY = "django_q:opsplatform:q"

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the Redis topology)"),
]


@pytest.fixture
def redis_client():
    return redis.from_url(REDIS_URL)


def test_the_cache_is_redis():
    from opsplatform.cache import RedisCache

    assert isinstance(cache, RedisCache) or type(cache).__name__ == "ConnectionProxy"
    cache.set("topology-probe", "kept", 30)
    assert cache.get("topology-probe") == "kept"
    client = cache._cache.get_client(write=True)
    assert client.ttl(cache.make_key("topology-probe")) in range(25, 31)


def test_rate_limit_counts_in_redis(api, account, monkeypatch):
    from opsplatform.api import api as ninja_api

    monkeypatch.setattr(ninja_api.throttle[0], "num_requests", 3)
    monkeypatch.setattr(ninja_api.throttle[0], "duration", 3600)
    window = int(time.time() // 3600)
    statuses = [api.get("me").status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 429, 429]
    ident = hashlib.sha256(account.user.username.encode()).hexdigest()
    key = cache.make_key(f"throttle_auth_{ident}:{window}")
    client = cache._cache.get_client(write=True)
    assert int(client.get(key)) == 5  # five requests counted, in Redis
    assert 0 < client.ttl(key) <= 3601


def test_failed_tokens_from_one_address_are_refused_through_redis(account, settings):
    settings.CREDENTIAL_FAILURE_LIMIT = 3
    good = token_for(account.user)
    bad = topology_client("not-a-token")
    address = {"REMOTE_ADDR": "203.0.113.77"}

    refused = [bad.get("/api/v1/me", **address).status_code for _ in range(3)]
    after = bad.get("/api/v1/me", **address)
    good_from_there = topology_client(good).get("/api/v1/me", **address)
    good_elsewhere = topology_client(good).get("/api/v1/me", REMOTE_ADDR="203.0.113.78")

    assert refused == [401, 401, 401]
    assert after.status_code == 429
    assert good_from_there.status_code == 429
    assert good_elsewhere.status_code == 200


def topology_client(token):
    from django.test import Client

    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_export_whose_worker_is_killed_runs_again_and_publishes_one_file(
    account, tmp_path, settings, redis_client
):
    """kill -9 of the whole cluster while the export job holds the job: django-q2's Redis
    broker had already taken the job off the queue, so nothing runs it again by itself;
    the stalled-export sweep queues it again and a new cluster finishes it, once."""
    if connection.vendor != "postgresql":
        pytest.skip("the cluster process reads the test's rows: needs PostgreSQL")
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    redis_client.delete(QUEUE_KEY)
    today = timezone.localdate()
    for n in range(3):
        CampaignFactory(account=account, name=f"Spring read {n}", starts_on=today, ends_on=today)
    export = ExportRequestFactory(account=account, status=ExportRequest.Status.PENDING)
    env = topology.process_env(redis_url=REDIS_URL, media_root=media)

    # Hold the account's row lock: the job writes its archive, then waits at the publish step.
    blocker = psycopg.connect(
        topology.database_url().replace("postgres://", "postgresql://"), autocommit=False
    )
    blocker.execute("SELECT id FROM opsplatform_account WHERE id = %s FOR UPDATE", [account.id])
    topology.manage(
        env, f"from userflows.services.exports import enqueue_export; enqueue_export({export.pk})"
    )
    first = topology.qcluster(env, tmp_path / "qcluster-1.log")
    try:
        topology.wait_until(
            lambda: waiting_on_a_lock(blocker), timeout=90, what="the job to reach the publish step"
        )
        export.refresh_from_db()
        assert export.status == ExportRequest.Status.PROCESSING
    finally:
        first.kill()
        blocker.rollback()
        blocker.close()

    assert redis_client.llen(QUEUE_KEY) == 0  # the dead worker's job is gone from Redis
    export.refresh_from_db()
    assert export.status == ExportRequest.Status.PROCESSING

    later = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    out = topology.manage(
        env,
        "import datetime as dt; from userflows.services.exports import requeue_stalled_exports;"
        f" print(requeue_stalled_exports(now=dt.datetime.fromisoformat('{later}')))",
    )
    assert out.strip().splitlines()[-1] == "1"
    requeued = time.monotonic()
    second = topology.qcluster(env, tmp_path / "qcluster-2.log")
    try:
        topology.wait_until(
            lambda: (
                ExportRequest.objects.get(pk=export.pk).status == ExportRequest.Status.COMPLETED
            ),
            timeout=90,
            what="the export to complete in the second cluster",
        )
    finally:
        second.stop()

    print(
        f"\n[fault] cluster killed mid-export: job gone from Redis, re-queued, completed "
        f"{time.monotonic() - requeued:.0f}s later by a new cluster"
    )
    export.refresh_from_db()
    published = sorted(p for p in (media / "exports" / str(account.id)).iterdir())
    assert [p.name for p in published] == [os.path.basename(export.file.name)]
    assert hashlib.sha256(published[0].read_bytes()).hexdigest() == export.sha256
    assert export.row_counts == {"campaigns": 3}
    completions = ExportRequest.history.filter(id=export.pk, status="completed").count()
    assert completions == 1


def waiting_on_a_lock(blocker) -> bool:
    """Another session waits for the blocker's lock (pg_blocking_pids), seen from a
    connection of its own: a transaction would keep reading one snapshot of the stats."""
    pid = blocker.info.backend_pid
    with psycopg.connect(blocker.info.dsn, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
        ).fetchone()
    return row[0] > 0
