"""django-q2 entry points of the shared domain: take ids, call one service, safe to repeat."""

from opsplatform import services, telemetry


def record_worker_heartbeat() -> str:
    """Proves the worker runs schedules; /healthz reports its age."""
    telemetry.TASKS_RUN.labels("record_worker_heartbeat").inc()
    beat = services.record_heartbeat(name="worker")
    return beat.beat_at.isoformat()
