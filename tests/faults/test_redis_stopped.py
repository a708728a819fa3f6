"""Redis stopped under a running web and cluster: the web keeps answering (the rate limit
and the failed-credential check let requests through), jobs queued meanwhile are parked in
the database, and once Redis is back the cluster moves them to Redis and runs them — none
lost. The Redis stopped is one this test starts (its own port and directory)."""

import datetime as dt
import json
import shutil
import time
import urllib.error
import urllib.request

from django.utils import timezone
from django_q.models import OrmQ, Schedule, Success

from opsplatform import services
from opsplatform.queueing import PARKED_KEY
from support.models import Ticket
from tests import topology
from tests.factories import CampaignFactory
from userflows.models import ExportRequest


def call(port, token, method, path, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def answers(port, token) -> bool:
    try:
        return call(port, token, "GET", "/healthz")[0] == 200
    except OSError:
        return False


def start_redis(port, tmp_path):
    return topology.Process(
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--dir",
            str(tmp_path),
        ],
        {},
        tmp_path / "redis.log",
    )


def test_web_answers_without_redis_and_parked_jobs_run_when_it_returns(
    postgres_only, customer, tmp_path, settings
):
    account, token = customer
    today = timezone.localdate()
    CampaignFactory(account=account, name="Winter read", starts_on=today, ends_on=today)
    services.sync_schedules()
    Schedule.objects.update(next_run=timezone.now() + dt.timedelta(days=1))
    Schedule.objects.filter(name="opsplatform.drain_parked_jobs").update(next_run=timezone.now())
    redis_port, web_port = topology.free_port(), topology.free_port()
    redis = start_redis(redis_port, tmp_path)
    env = topology.process_env(
        redis_url=f"redis://127.0.0.1:{redis_port}/0", media_root=tmp_path / "media"
    )
    settings.MEDIA_ROOT = tmp_path / "media"
    web = topology.gunicorn(env, tmp_path / "web.log", web_port)
    cluster = topology.qcluster(env, tmp_path / "qcluster.log")
    try:
        topology.wait_until(lambda: answers(web_port, token), timeout=60, what="web")
        redis.stop()

        me = call(web_port, token, "GET", "/api/v1/me")
        ticket = call(
            web_port,
            token,
            "POST",
            "/api/v1/support/tickets",
            {"subject": "Redis is down", "description": "Do you still hear me?"},
        )
        export = call(
            web_port,
            token,
            "POST",
            "/api/v1/exports",
            {
                "format": "csv",
                "data_types": ["campaigns"],
                "date_from": today.isoformat(),
                "date_to": today.isoformat(),
            },
        )
        health = call(web_port, token, "GET", "/healthz")

        assert me[0] == 200 and me[1]["account"]["id"] == account.id
        assert ticket[0] == 201
        assert export[0] == 202 and export[1]["status"] == "pending"
        assert health[0] == 200 and health[1]["status"] == "degraded"
        assert health[1]["cache"].startswith("error:") and health[1]["database"] == "ok"
        assert OrmQ.objects.filter(key=PARKED_KEY).count() == 2  # acknowledgement + export

        redis = start_redis(redis_port, tmp_path)
        back = time.monotonic()
        topology.wait_until(
            lambda: ExportRequest.objects.get(pk=export[1]["id"]).status == "completed",
            timeout=180,
            every=1,
            what="the parked export to run once Redis is back",
        )
        topology.wait_until(
            lambda: Ticket.objects.get(account=account).acknowledged_at is not None,
            timeout=90,
            every=1,
            what="the parked acknowledgement to be sent",
        )
        print(
            f"\n[fault] Redis stopped: web answered 200/201/202, 2 jobs parked; both ran "
            f"{time.monotonic() - back:.0f}s after Redis returned"
        )
    finally:
        web.stop()
        cluster.stop()
        redis.stop()

    assert OrmQ.objects.filter(key=PARKED_KEY).count() == 0
    assert ExportRequest.objects.filter(account=account).count() == 1
    assert Success.objects.filter(func="userflows.tasks.run_export").count() == 1
