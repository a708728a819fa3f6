"""Per-request cost of the load mix's endpoints, in-process: CPU milliseconds of the Django
process (time.process_time, so other programs on the machine barely move it) and database
queries, with production settings against the load database. Complements `make load`, whose
throughput depends on everything else the machine runs.

    python loadtest/cost.py [requests per endpoint, default 200]

Needs what `make load` left in LOAD_DIR: credentials.json and the run's secret_key.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = Path(os.environ.get("LOAD_DIR") or "/tmp/opsplatform-load")
os.environ.update(
    DJANGO_SETTINGS_MODULE="opsplatform.settings",
    DATABASE_URL=os.environ.get("LOAD_DATABASE_URL")
    or "postgres://postgres@127.0.0.1:5432/opsplatform_load",
    REDIS_URL=os.environ.get("LOAD_REDIS_URL") or "redis://127.0.0.1:6379/5",
    DEBUG="0",
    SECRET_KEY=(WORKDIR / "secret_key").read_text().strip(),
    ALLOWED_HOSTS="testserver",
    SECURE_SSL_REDIRECT="0",
    LOG_LEVEL="WARNING",
    STATIC_ROOT=str(WORKDIR / "static"),
    API_RATE_LIMIT="1000000/m",
)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

ENDPOINTS = [
    "/api/v1/me",
    "/api/v1/campaigns?limit=20",
    "/api/v1/support/tickets?limit=20",
    "/api/v1/billing",
    "/account/",
]


def events_body(n: int) -> str:
    from django.utils import timezone

    now = timezone.now().isoformat()
    return json.dumps(
        {
            "events": [
                {"type": "ad.played", "occurred_at": now, "idempotency_key": f"cost-{n}-{i}"}
                for i in range(50)
            ]
        }
    )


def main(count: int) -> None:
    credentials = json.loads((WORKDIR / "credentials.json").read_text())
    customer = credentials["customers"][-1]
    client = Client(headers={"Authorization": f"Bearer {customer['token']}"})
    client.cookies["sessionid"] = customer["session"]
    run_id = int(time.time())

    def call(path: str, n: int):
        if path == "POST /api/v1/events [50]":
            return client.post(
                "/api/v1/events", events_body(run_id * 100000 + n), content_type="application/json"
            )
        return client.get(path)

    print(f"{'endpoint':<36}{'cpu ms':>8}{'wall ms':>9}{'queries':>9}")
    for path in [*ENDPOINTS, "POST /api/v1/events [50]"]:
        for n in range(10):  # warm up: connections, caches, imports
            assert call(path, n).status_code == 200, path
        cpu, wall = [], []
        for n in range(count):
            c0, w0 = time.process_time(), time.perf_counter()
            call(path, 10 + n)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        with CaptureQueriesContext(connection) as queries:
            call(path, 10 + count)
        print(
            f"{path:<36}{statistics.median(cpu) * 1000:>8.2f}"
            f"{statistics.median(wall) * 1000:>9.2f}{len(queries):>9}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
