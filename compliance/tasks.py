"""django-q2 entry points of compliance: call one service, safe to run twice."""

from compliance import services
from opsplatform import telemetry


def run_monitors() -> dict[str, bool | None]:
    """Daily: refresh every monitor (each stores its latest result; history keeps the past)."""
    telemetry.TASKS_RUN.labels("compliance.run_monitors").inc()
    return {m.key: m.passed for m in services.run_monitors()}
