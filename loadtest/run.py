"""`make load`: the production topology under the issue-17 mix, on this machine, loopback only.

1. Migrates the load database and seeds it with 10,000 demo accounts when it is empty
   (reused afterwards: seeding takes a few minutes).
2. Starts gunicorn with 3 workers, two `qcluster` processes (Redis broker and cache) and a
   bare Django view under the same gunicorn settings (the baseline), and sets the background
   going: every schedule (SLA sweep, health checks, studies, billing…) is queued once.
3. Runs Locust headless three times with the same users: the bare view; the API mix the
   issue's target was measured on (/me, /campaigns, /support/tickets, /billing, 50-event
   batches); then, with every schedule queued (SLA sweep, health checks, studies…), the
   full mix (pages, tickets and exports opened, agents working tickets).
4. Prints requests/s, p50/p95/p99 per endpoint for both mixes, errors, queries per request
   (from /metrics), the ratio to the bare view, and exits 1 when a target of
   docs/performance.md is missed.

Settings come from the environment: LOAD_DATABASE_URL, LOAD_REDIS_URL, LOAD_USERS,
LOAD_SECONDS, LOAD_BASELINE_SECONDS, LOAD_ACCOUNTS, LOAD_PORT, LOAD_DIR, LOAD_BACKGROUND.
"""

import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BIN = Path(PY).parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


DATABASE_URL = setting("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/opsplatform_load")
REDIS_URL = setting("LOAD_REDIS_URL", "redis://127.0.0.1:6379/5")
USERS = int(setting("LOAD_USERS", "40"))
SECONDS = int(setting("LOAD_SECONDS", "60"))
BASELINE_SECONDS = int(setting("LOAD_BASELINE_SECONDS", "20"))
ACCOUNTS = int(setting("LOAD_ACCOUNTS", "10000"))
PORT = int(setting("LOAD_PORT", "8910"))
BACKGROUND = setting("LOAD_BACKGROUND", "1")  # 0: no scheduled jobs queued at the start
WORKDIR = Path(setting("LOAD_DIR", "/tmp/opsplatform-load"))


def read_targets() -> dict[str, Decimal]:
    """The `targets` block of docs/performance.md: `name: value` lines."""
    text = (ROOT / "docs" / "performance.md").read_text()
    block = re.search(r"```targets\n(.*?)```", text, re.S)
    if not block:
        sys.exit("docs/performance.md has no ```targets block")
    targets = {}
    for line in block.group(1).splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            targets[key.strip()] = Decimal(value.split("#")[0].strip())
    return targets


def load_secret_key() -> str:
    """One key per LOAD_DIR, kept between runs: the sessions prepare.py writes are signed
    with it, and loadtest/cost.py reuses them."""
    path = WORKDIR / "secret_key"
    if not path.exists():
        WORKDIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class Topology:
    def __init__(self):
        self.procs: list[subprocess.Popen] = []
        WORKDIR.mkdir(parents=True, exist_ok=True)
        self.metrics_dir = WORKDIR / "prometheus"
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir()
        self.metrics_token = secrets.token_urlsafe(24)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "opsplatform.settings",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "DEBUG": "0",
            "SECRET_KEY": load_secret_key(),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "STATIC_ROOT": str(WORKDIR / "static"),
            "MEDIA_ROOT": str(WORKDIR / "media"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "METRICS_TOKEN": self.metrics_token,
            "LOG_LEVEL": "WARNING",
        }

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            sys.exit(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start(self, args: list[str], log: str, cwd: Path = ROOT) -> None:
        with open(WORKDIR / log, "w") as out:
            proc = subprocess.Popen(
                args, cwd=cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for(url: str, seconds: int = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"{url} did not answer 200 within {seconds}s")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def locust(
    locustfile: str, users: list[str], host: str, seconds: int, prefix: str, env: dict
) -> list[dict]:
    args = [
        str(BIN / "locust"),
        "-f",
        str(ROOT / "loadtest" / locustfile),
        *users,
        "--headless",
        "--only-summary",
        "-u",
        str(USERS),
        "-r",
        str(USERS),
        "-t",
        f"{seconds}s",
        "--stop-timeout",
        "10",
        "--host",
        host,
        "--csv",
        str(WORKDIR / prefix),
        "--exit-code-on-error",
        "0",
    ]
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"locust failed:\n{done.stderr[-3000:]}")
    with open(WORKDIR / f"{prefix}_stats.csv") as handle:
        return list(csv.DictReader(handle))


def queries_per_request(token: str) -> dict[str, Decimal]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    requests: dict[str, Decimal] = {}
    queries: dict[str, Decimal] = {}
    for line in text.splitlines():
        found = re.match(r"(opsplatform_\w+)\{(.*)\} ([0-9.e+]+)$", line)
        if not found:
            continue
        name, labels, value = found.groups()
        route = re.search(r'route="([^"]*)"', labels)
        if route is None:
            continue
        if name == "opsplatform_http_requests_total":
            requests[route.group(1)] = requests.get(route.group(1), 0) + Decimal(value)
        elif name == "opsplatform_db_queries_total":
            queries[route.group(1)] = queries.get(route.group(1), 0) + Decimal(value)
    return {
        route: (queries.get(route, 0) / count).quantize(Decimal("0.1"))
        for route, count in requests.items()
        if count and not route.startswith("metrics")
    }


def row_figures(row: dict) -> tuple:
    return (
        int(row["Request Count"]),
        int(row["Failure Count"]),
        Decimal(row["Requests/s"]).quantize(Decimal("0.1")),
        row["50%"],
        row["95%"],
        row["99%"],
    )


def main() -> int:
    for url in (DATABASE_URL, REDIS_URL):
        if urlparse(url).hostname not in LOOPBACK:
            sys.exit(f"loopback only: {url} is not on this machine")
    targets = read_targets()
    top = Topology()
    print(f"[load] {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; load {loadavg()}")
    top.manage("migrate", "--noinput")
    accounts = int(
        top.manage(
            "shell",
            "--no-imports",
            "-c",
            "from opsplatform.models import Account; print(Account.objects.count())",
        ).split()[-1]
    )
    if accounts == 0:
        print(f"[load] seeding {ACCOUNTS} demo accounts (a few minutes, once)")
        top.manage("seed_demo", "--accounts", str(ACCOUNTS))
    elif accounts < ACCOUNTS:
        sys.exit(f"{DATABASE_URL} holds {accounts} accounts; empty it or set LOAD_ACCOUNTS")
    # Fresh planner statistics: right after a bulk seed (or a restore) PostgreSQL has none,
    # and the account page's metric sums scan every row (212 ms instead of 0.5 ms).
    top.manage(
        "shell",
        "--no-imports",
        "-c",
        "from django.db import connection; connection.cursor().execute('ANALYZE')",
    )
    top.manage("sync_schedules")
    top.manage("collectstatic", "--noinput", "--verbosity", "0")
    gunicorn = [str(BIN / "gunicorn"), "--workers", "3", "--no-control-socket"]
    try:
        top.start([*gunicorn, "--bind", f"127.0.0.1:{PORT}", "opsplatform.wsgi"], "web.log")
        top.start(
            [*gunicorn, "--bind", f"127.0.0.1:{PORT + 1}", "--chdir", "loadtest", "bare"],
            "bare.log",
        )
        for n in (1, 2):
            top.start([PY, "manage.py", "qcluster"], f"qcluster{n}.log")
        wait_for(f"http://127.0.0.1:{PORT}/healthz")
        wait_for(f"http://127.0.0.1:{PORT + 1}/bare")
        credentials = WORKDIR / "credentials.json"
        prepared = subprocess.run(
            [PY, "loadtest/prepare.py", str(credentials), "300", "8", "0"],
            cwd=ROOT,
            env=top.env,
            capture_output=True,
            text=True,
        )
        if prepared.returncode:
            sys.exit(prepared.stderr)
        print(f"[load] {prepared.stdout.strip()}")
        locust_env = {**os.environ, "LOADTEST_CREDENTIALS": str(credentials)}
        print(f"[load] baseline: bare Django view, {USERS} users, {BASELINE_SECONDS}s")
        bare = locust(
            "locust_bare.py",
            ["BareUser"],
            f"http://127.0.0.1:{PORT + 1}",
            BASELINE_SECONDS,
            "bare",
            locust_env,
        )
        print(f"[load] API mix: {USERS} users, {SECONDS}s; load {loadavg()}")
        api = locust(
            "locustfile.py",
            ["CustomerUser", "--tags", "api"],
            f"http://127.0.0.1:{PORT}",
            SECONDS,
            "api",
            locust_env,
        )
        if BACKGROUND != "0":
            queued = subprocess.run(
                [PY, "loadtest/prepare.py", "--queue-schedules"],
                cwd=ROOT,
                env=top.env,
                capture_output=True,
                text=True,
                check=True,
            )
            print(f"[load] {queued.stdout.strip()}")
        print(f"[load] full mix: {USERS} users, {SECONDS}s; load {loadavg()}")
        mix = locust(
            "locustfile.py",
            ["CustomerUser", "AgentUser"],
            f"http://127.0.0.1:{PORT}",
            SECONDS,
            "mix",
            locust_env,
        )
        end_load = loadavg()
        per_query = queries_per_request(top.metrics_token)
    finally:
        top.stop()
    return report(bare, api, mix, per_query, targets, end_load)


def table(title: str, rows: list[dict]) -> tuple:
    """Prints one phase's rows; returns its aggregate (count, fails, rps, p50, p95, p99)."""
    print(f"\n{title}")
    print(f"{'endpoint':<46}{'reqs':>7}{'fail':>6}{'rps':>8}{'p50':>7}{'p95':>7}{'p99':>7}")
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        count, fails, rps, p50, p95, p99 = row_figures(row)
        name = f"{row['Type']} {row['Name']}"[:45]
        print(f"{name:<46}{count:>7}{fails:>6}{rps!s:>8}{p50:>7}{p95:>7}{p99:>7}")
    total = row_figures(next(r for r in rows if r["Name"] == "Aggregated"))
    count, fails, rps, p50, p95, p99 = total
    print(f"{'all endpoints':<46}{count:>7}{fails:>6}{rps!s:>8}{p50:>7}{p95:>7}{p99:>7}")
    return total


def report(bare, api, mix, per_query, targets, end_load) -> int:
    _count, fails, rps, _p50, p95, _p99 = table(
        "API mix (the issue's target: /me, /campaigns, /support/tickets, /billing, events)", api
    )
    _mcount, mfails, mrps, _mp50, mp95, _mp99 = table(
        "full mix (pages, tickets, exports, agents; schedules queued in the background)", mix
    )
    base = next(r for r in bare if r["Name"] == "Aggregated")
    _bcount, bfails, brps, bp50, bp95, _bp99 = row_figures(base)
    ratio = (rps / brps).quantize(Decimal("0.001")) if brps else Decimal(0)
    mratio = (mrps / brps).quantize(Decimal("0.001")) if brps else Decimal(0)
    print(f"\nbare Django view: {brps} requests/s, p50 {bp50} ms, p95 {bp95} ms, {bfails} errors")
    print(f"throughput ratio to the bare view: API mix {ratio}, full mix {mratio}")
    print(f"load average at the end: {end_load} ({os.cpu_count()} cores)")
    if per_query:
        print("database queries per request (gunicorn's /metrics):")
        for route, queries in sorted(per_query.items()):
            print(f"    {queries!s:>6}  {route}")
    missed = []
    for prefix, (got_rps, got_p95, got_fails) in (
        ("", (rps, p95, fails)),
        ("full_mix_", (mrps, mp95, mfails)),
    ):
        if got_rps < targets[f"{prefix}requests_per_second_min"]:
            missed.append(
                f"{prefix}{got_rps} requests/s < {targets[f'{prefix}requests_per_second_min']}"
            )
        if Decimal(got_p95) > targets[f"{prefix}p95_ms_max"]:
            missed.append(f"{prefix}p95 {got_p95} ms > {targets[f'{prefix}p95_ms_max']} ms")
        if got_fails > targets[f"{prefix}errors_max"]:
            missed.append(f"{prefix}{got_fails} errors > {targets[f'{prefix}errors_max']}")
    print(
        json.dumps(
            {
                "requests_per_second": str(rps),
                "p95_ms": p95,
                "errors": fails,
                "full_mix_requests_per_second": str(mrps),
                "full_mix_p95_ms": mp95,
                "full_mix_errors": mfails,
                "bare_requests_per_second": str(brps),
                "ratio": str(ratio),
                "full_mix_ratio": str(mratio),
            }
        )
    )
    if missed:
        print("TARGETS MISSED: " + "; ".join(missed))
        return 1
    print("targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
