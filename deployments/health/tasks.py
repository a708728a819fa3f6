"""django-q2 entry points of account health: each calls one service and is safe to run twice."""

from deployments.health import services
from opsplatform import telemetry


def check_all_accounts(days: int = 30, batch_size: int = 500, triggered_by: str = "") -> dict:
    """Daily (deployments/schedules.py) or queued from the API: check every account."""
    telemetry.TASKS_RUN.labels("deployments.check_all_accounts").inc()
    result = services.check_all_accounts(
        days=days, batch_size=batch_size, triggered_by=triggered_by or None
    )
    result["checked_at"] = result["checked_at"].isoformat()
    return result


def open_critical_tickets(account_ids: list[int]) -> list[int]:
    """After a batch: the critical-episode tickets its accounts need (one per episode)."""
    from deployments.health import proactive

    telemetry.TASKS_RUN.labels("deployments.open_critical_tickets").inc()
    return proactive.open_critical_tickets(account_ids=account_ids)
