"""PostgreSQL restarted under load: while it is down the API answers 503 with the JSON
envelope at once, it recovers by itself when the database is back, and every event batch a
client retried until it was accepted is stored exactly once (idempotency keys).

The restart is of a throwaway cluster this test creates (initdb on port 5499 under /tmp),
never of the shared server."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.utils import timezone

from tests import topology

PORT = int(os.environ.get("FAULTS_PG_PORT", "5499"))
BATCH = 10


def pg_bin(name: str) -> str:
    version = sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]
    return f"/usr/lib/postgresql/{version}/bin/{name}"


def as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def pg_ctl(datadir: Path, *args: str) -> None:
    subprocess.run(
        as_postgres([pg_bin("pg_ctl"), "-D", str(datadir), "-w", *args]),
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def throwaway_pg(tmp_path_factory):
    datadir = Path(f"/tmp/opsplatform-faults-pg-{os.getpid()}")
    shutil.rmtree(datadir, ignore_errors=True)
    datadir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    subprocess.run(
        as_postgres([pg_bin("initdb"), "-D", str(datadir), "--auth=trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {PORT} -k {datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl(datadir, "-o", options, "-l", str(datadir / "server.log"), "start")
    try:
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{PORT}/postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE faults")
        url = f"postgres://postgres@127.0.0.1:{PORT}/faults"
        env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1", "REDIS_URL": ""}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=topology.ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=900,
        )
        yield url, datadir, options
    finally:
        pg_ctl(datadir, "-m", "immediate", "stop")
        shutil.rmtree(datadir, ignore_errors=True)


class Client(threading.Thread):
    """Pushes batches of events, each retried until it is accepted, as a careful client
    does; keeps every refusal and the answer that finally took each batch."""

    def __init__(self, name, port, token):
        super().__init__(daemon=True)
        self.name, self.port, self.token = name, port, token
        self.stop = threading.Event()
        self.refusals, self.accepted, self.transport_errors = [], [], 0

    def batch(self, n):
        now = timezone.now().isoformat()
        events = [
            {"type": "ad.played", "occurred_at": now, "idempotency_key": f"{self.name}-{n}-{i}"}
            for i in range(BATCH)
        ]
        return json.dumps({"events": events}).encode()

    def run(self):
        n = 0
        while not self.stop.is_set() and n < 500:
            body, tries = self.batch(n), 0
            while tries < 200:
                tries += 1
                started = time.monotonic()
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/api/v1/events",
                    data=body,
                    method="POST",
                    headers={
                        "Authorization": f"Bearer {self.token}",
                        "Content-Type": "application/json",
                    },
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        self.accepted.append((n, json.loads(response.read())))
                        break
                except urllib.error.HTTPError as exc:
                    self.refusals.append(
                        (
                            exc.code,
                            exc.headers.get("Content-Type"),
                            json.loads(exc.read() or b"{}"),
                            exc.headers.get("Retry-After"),
                            time.monotonic() - started,
                        )
                    )
                except OSError:
                    self.transport_errors += 1
                time.sleep(0.1)
            n += 1


def test_requests_fail_fast_with_503_and_recover_and_no_event_is_lost_or_doubled(
    throwaway_pg, redis_url, tmp_path
):
    url, datadir, options = throwaway_pg
    env = topology.process_env(redis_url=redis_url, media_root=tmp_path / "media", db_url=url)
    env["API_RATE_LIMIT"] = "100000/m"
    out = topology.manage(
        env,
        "from tests.factories import AccountFactory, token_for; a = AccountFactory(); "
        "print(a.id, token_for(a.user))",
    )
    account_id, token = out.split()[-2:]
    port = topology.free_port()
    web = topology.gunicorn(env, tmp_path / "web.log", port)
    clients = [Client(f"c{i}", port, token) for i in range(3)]
    try:
        topology.wait_until(lambda: healthy(port), timeout=60, what="gunicorn")
        for client in clients:
            client.start()
        time.sleep(2)
        pg_ctl(datadir, "-m", "fast", "-o", options, "-l", str(datadir / "server.log"), "restart")
        time.sleep(3)
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(timeout=120)
    finally:
        web.stop()

    refusals = [r for c in clients for r in c.refusals]
    assert refusals, "the restart was seen by the clients"
    for status, content_type, body, retry_after, seconds in refusals:
        assert status == 503
        assert content_type.startswith("application/json")
        assert body["code"] == "unavailable" and body["detail"]
        assert retry_after == "2"
        assert seconds < 2.0  # fails fast, does not hang
    assert sum(c.transport_errors for c in clients) == 0
    for client in clients:
        assert not client.is_alive()
        answers = dict(client.accepted)
        assert sorted(answers) == list(range(len(answers)))  # every batch taken, in order
        for answer in answers.values():
            assert answer["accepted"] + answer["duplicates"] == BATCH
    sent = sum(len(c.accepted) for c in clients) * BATCH
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        rows, keys = conn.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM opsplatform_usageevent "
            "WHERE account_id = %s",
            [int(account_id)],
        ).fetchone()
    print(
        f"\n[fault] PostgreSQL restart: {len(refusals)} answers 503 (slowest "
        f"{max(r[4] for r in refusals) * 1000:.0f} ms), {sent // BATCH} batches retried until "
        f"accepted, {rows} events stored, {keys} distinct keys"
    )
    assert rows == keys == sent


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
