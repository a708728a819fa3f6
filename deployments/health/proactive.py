"""Proactive action: one support ticket per critical episode, opened for customer success.

The only module of deployments that imports support (through its services: deployments
never writes support's models itself). An episode starts when an account's check turns
critical and ends when a later check finds it healthy or at risk; `open_critical_tickets`
opens the episode's ticket (channel api, tagged `health`, priority high, escalated to L2)
unless it already has one, under the account's health row lock, so running it twice or
concurrently opens one ticket.
"""

from django.db import transaction

from deployments.health.models import AccountHealth, HealthStatus
from support import services as support_services

TICKET_LEVEL = 2


def open_critical_tickets(*, account_ids: list[int]) -> list[int]:
    """Open the critical-episode ticket of each account that needs one; returns the ids of
    the tickets opened."""
    opened = []
    for account_id in account_ids:
        with transaction.atomic():
            health = (
                AccountHealth.objects.select_for_update(of=("self",))
                .select_related("account__user", "last_check")
                .filter(account_id=account_id)
                .first()
            )
            if (
                health is None
                or health.status != HealthStatus.CRITICAL
                or health.critical_ticket_id is not None
            ):
                continue
            ticket = support_services.create_ticket(
                subject=f"Account health critical: {health.account.name}"[:200],
                description=(
                    "Our customer success team has been asked to get in touch with you to "
                    "help you get the most out of the product."
                ),
                channel="api",
                priority="high",
                tags=["health"],
                account=health.account,
                author_kind="system",
                acknowledge=False,
            )
            support_services.add_message(
                ticket=ticket,
                body=_note(health),
                author_kind="system",
                internal=True,
            )
            support_services.escalate_ticket(
                ticket=ticket,
                level=TICKET_LEVEL,
                reason="Account health turned critical: customer success follows up.",
            )
            health.critical_ticket_id = ticket.pk
            health.save(update_fields=["critical_ticket_id"])
            opened.append(ticket.pk)
    return opened


def _note(health: AccountHealth) -> str:
    check = health.last_check
    lines = [
        f"Health score {health.score} (critical) since {health.critical_since:%Y-%m-%d %H:%M} "
        "UTC. What costs the most points:"
    ]
    for rec in check.recommendations if check else []:
        lines.append(f"- {rec['text']} (costs {rec['cost']} points)")
    return "\n".join(lines)
