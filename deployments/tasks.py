"""django-q2 entry points of deployments: take ids, call one service, safe to run twice."""

from deployments import notifications, services
from opsplatform import telemetry


def evaluate_gates() -> list[int]:
    """Every minute: evaluate the gates of the deployment in progress."""
    telemetry.TASKS_RUN.labels("deployments.evaluate_gates").inc()
    return services.evaluate_live_deployments()


def notify_rollback(deployment_id: int) -> bool:
    telemetry.TASKS_RUN.labels("deployments.notify_rollback").inc()
    return notifications.notify_rollback(deployment_id=deployment_id)
