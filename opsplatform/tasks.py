"""django-q2 entry points of the shared domain: take ids, call one service, safe to repeat."""

from opsplatform import queueing, services, telemetry


def record_worker_heartbeat() -> str:
    """Proves the worker runs schedules; /healthz reports its age."""
    telemetry.TASKS_RUN.labels("record_worker_heartbeat").inc()
    beat = services.record_heartbeat(name="worker")
    return beat.beat_at.isoformat()


def drain_parked_jobs() -> int:
    """Jobs parked in the database while the Redis broker was down go to Redis now."""
    telemetry.TASKS_RUN.labels("drain_parked_jobs").inc()
    return queueing.drain_parked_jobs()
