"""Prometheus metrics: requests, database queries, and counters the apps increment.

Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR so every worker's samples
are collected (prometheus_client's multiprocess mode).
"""

import os
import time

from django.db import connections
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "opsplatform_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "opsplatform_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DB_QUERIES = Counter(
    "opsplatform_db_queries_total", "Database queries run by web requests", ["route"]
)
DB_SECONDS = Counter(
    "opsplatform_db_query_seconds_total", "Time spent in database queries", ["route"]
)
EVENTS_INGESTED = Counter("opsplatform_usage_events_total", "Usage events received", ["result"])
TASKS_RUN = Counter("opsplatform_tasks_total", "Background task runs", ["task"])
TICKETS_OPENED = Counter(
    "opsplatform_support_tickets_opened_total", "Support tickets opened", ["channel"]
)
ESCALATIONS = Counter("opsplatform_support_escalations_total", "Ticket escalations", ["kind"])
EXPORTS_FINISHED = Counter(
    "opsplatform_exports_finished_total", "Data exports finished", ["status"]
)
NOTIFICATIONS_FAILED = Counter(
    "opsplatform_support_notifications_failed_total",
    "Support notifications that could not be sent (each is retried)",
    ["kind"],
)
INBOUND_HELD = Counter(
    "opsplatform_support_inbound_held_total", "Inbound emails held as unverified senders"
)
INBOUND_REJECTED = Counter(
    "opsplatform_support_inbound_rejected_total", "Inbound emails refused", ["code"]
)
DELETIONS_COMPLETED = Counter(
    "opsplatform_account_deletions_total", "Account deletions carried out"
)
CREDENTIAL_FAILURES = Counter(
    "opsplatform_credential_failures_total",
    "Refused credentials (bad bearer tokens, wrong inbound-email secrets)",
    ["kind"],
)


def count_on_commit(counter, *labels: str, amount: int = 1) -> None:
    """Increment once the surrounding transaction commits, so rolled-back work is not counted."""
    from django.db import transaction

    target = counter.labels(*labels) if labels else counter
    transaction.on_commit(lambda: target.inc(amount))


class _QueryTimer:
    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.seconds += time.perf_counter() - start


class PrometheusMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timer = _QueryTimer()
        start = time.perf_counter()
        with connections["default"].execute_wrapper(timer):
            response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match and match.route else "unmatched"
        route = route[:120]
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(route).observe(time.perf_counter() - start)
        DB_QUERIES.labels(route).inc(timer.count)
        DB_SECONDS.labels(route).inc(timer.seconds)
        return response


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
