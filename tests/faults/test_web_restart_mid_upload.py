"""The web process is killed while a client is uploading an event batch: nothing of the
half-sent batch is stored, the restarted web answers, and the client's retries of the
whole batch store each event once (the later retry counts them all as duplicates)."""

import datetime as dt
import json
import socket
import urllib.request

from opsplatform.models import UsageEvent
from tests import topology


def batch(n: int) -> bytes:
    now = dt.datetime.now(dt.UTC)
    events = [
        {
            "type": "ad.played",
            "occurred_at": (now - dt.timedelta(seconds=i)).isoformat(),
            "idempotency_key": f"upload-{i:04d}",
            "properties": {"slot": i},
        }
        for i in range(n)
    ]
    return json.dumps({"events": events}).encode()


def post(port: int, token: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/events",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_a_batch_cut_by_a_web_restart_is_stored_once_when_retried(
    postgres_only, redis_url, customer, tmp_path
):
    account, token = customer
    body = batch(200)
    port = topology.free_port()
    env = topology.process_env(redis_url=redis_url, media_root=tmp_path / "media")
    env["API_RATE_LIMIT"] = "100000/m"
    web = topology.gunicorn(env, tmp_path / "web-1.log", port)
    try:
        topology.wait_until(lambda: healthy(port), timeout=60, what="gunicorn to answer")
        # Headers and half the body, then the web process group dies.
        upload = socket.create_connection(("127.0.0.1", port), timeout=10)
        upload.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[: len(body) // 2]
        )
    finally:
        web.kill()
    try:
        cut_off = upload.recv(1024)  # the connection closes without an answer
    except ConnectionResetError:
        cut_off = b""
    upload.close()
    assert cut_off == b""
    assert UsageEvent.objects.filter(account=account).count() == 0

    web = topology.gunicorn(env, tmp_path / "web-2.log", port)
    try:
        topology.wait_until(lambda: healthy(port), timeout=60, what="gunicorn to restart")
        first = post(port, token, body)
        retried = post(port, token, body)
    finally:
        web.stop()

    assert first == (200, {"accepted": 200, "duplicates": 0})
    assert retried == (200, {"accepted": 0, "duplicates": 200})
    print(f"\n[fault] web killed mid-upload: 0 stored; then {first[1]}, retried {retried[1]}")
    stored = UsageEvent.objects.filter(account=account)
    assert stored.count() == 200
    assert stored.values("idempotency_key").distinct().count() == 200
