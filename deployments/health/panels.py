"""Account health on the staff account page (customer 360) and the ticket page's requester
panel, through the registry's `account_panels` hook (ADR 0005)."""

from django.urls import reverse

from deployments.health.models import AccountHealth, HealthStatus
from opsplatform.registry import AccountPanel, PanelItem

TONES = {
    HealthStatus.HEALTHY: "success",
    HealthStatus.AT_RISK: "warning",
    HealthStatus.CRITICAL: "danger",
}


def account_panels(account, *, user, compact: bool = False) -> list[AccountPanel]:
    """The account's current health: status, score with its change, the top reason and when
    it was checked (one query); nothing for staff who may not view health."""
    if not user.has_perm("deployments.view_accounthealth"):
        return []
    health = AccountHealth.objects.filter(account_id=account.pk).first()
    if health is None:
        return [AccountPanel(key="health", title="Health", order=5, empty="Not checked yet.")]
    url = reverse("admin:deployments_accounthealth_change", args=[health.pk])
    score = "no data" if health.score is None else f"{health.score}"
    if health.delta:
        arrow = "▲" if health.delta > 0 else "▼"
        score += f" ({arrow} {abs(health.delta)})"
    facts = [("Score", score), ("Checked", f"{health.checked_at:%Y-%m-%d %H:%M} UTC")]
    items = [
        PanelItem(
            text=health.get_status_display(),
            url=url,
            detail=health.top_reason,
            tone=TONES.get(health.status, ""),
        )
    ]
    return [
        AccountPanel(
            key="health",
            title="Health",
            order=5,
            facts=tuple(facts if not compact else facts[:1]),
            items=tuple(items),
            more_url=url,
        )
    ]
