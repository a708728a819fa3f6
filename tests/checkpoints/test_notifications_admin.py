import json
from decimal import Decimal

import pytest

from checkpoints import notifications, services
from tests.checkpoints.conftest import kpi, open_ticket, solo_accounts, tomorrow
from tests.factories import staff_in


class _Response:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, n):
        return b"ok"


@pytest.fixture
def posted(monkeypatch):
    sent = []

    def fake_urlopen(request, timeout):
        sent.append((request.full_url, json.loads(request.data)))
        return _Response()

    monkeypatch.setattr(notifications.urllib.request, "urlopen", fake_urlopen)
    return sent


def test_failed_checkpoint_posts_webhook_and_pages_then_resolves(db, settings, posted):
    settings.CHECKPOINTS_WEBHOOK_URL = "https://hooks.example.test/T1"
    settings.PAGERDUTY_ROUTING_KEY = "R0UTING"
    definition = kpi(severity="critical")
    (account,) = solo_accounts(1)
    open_ticket(account)
    failed = services.run_checkpoint("Pager", 30, as_of=tomorrow())
    assert notifications.notify_checkpoint(checkpoint_id=failed.id) is True
    assert notifications.notify_checkpoint(checkpoint_id=failed.id) is False  # once
    urls = [u for u, _ in posted]
    assert urls == ["https://hooks.example.test/T1", "https://events.pagerduty.com/v2/enqueue"]
    assert "Scaling checkpoint 'Pager' failed." in posted[0][1]["text"]
    event = posted[1][1]
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "checkpoint-kpi-tickets-solo"
    assert event["payload"]["severity"] == "critical"
    assert event["routing_key"] == "R0UTING"

    posted.clear()
    definition.target = 5
    definition.save()
    passed = services.run_checkpoint("Calm", 30, as_of=tomorrow())
    notifications.notify_checkpoint(checkpoint_id=passed.id)
    assert posted == [
        (
            "https://events.pagerduty.com/v2/enqueue",
            {
                "routing_key": "R0UTING",
                "event_action": "resolve",
                "dedup_key": "checkpoint-kpi-tickets-solo",
            },
        )
    ]


def test_no_routing_key_no_page(db, settings, posted):
    settings.CHECKPOINTS_WEBHOOK_URL = ""
    settings.DEPLOYMENTS_WEBHOOK_URL = ""
    settings.PAGERDUTY_ROUTING_KEY = ""
    kpi(severity="critical")
    (account,) = solo_accounts(1)
    open_ticket(account)
    failed = services.run_checkpoint("Quiet", 30, as_of=tomorrow())
    assert notifications.notify_checkpoint(checkpoint_id=failed.id) is False
    assert posted == []


def test_checkpoint_admin_page_shows_matrix_links_and_trend(client, db):
    kpi(severity="high")
    (account,) = solo_accounts(1)
    services.run_checkpoint("Before", 30, as_of=tomorrow())
    open_ticket(account)
    failed = services.run_checkpoint("After", 30, as_of=tomorrow())
    client.force_login(staff_in(is_superuser=True))
    page = client.get(f"/admin/checkpoints/checkpoint/{failed.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="persona-matrix"' in html
    assert 'data-status="failed"' in html and "bg-red-100" in html
    ticket_ref = failed.escalations[0]["ticket"]
    assert ticket_ref in html
    assert f"/admin/support/ticket/{failed.escalations[0]['ticket_id']}/change/" in html
    assert f"/admin/checkpoints/backlogitem/{failed.backlog_items[0]['id']}/change/" in html
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html  # the KPI trend chart
    for url in (
        "/admin/checkpoints/checkpoint/",
        "/admin/checkpoints/kpidefinition/",
        "/admin/checkpoints/backlogitem/",
        f"/admin/checkpoints/backlogitem/{failed.backlog_items[0]['id']}/change/",
        "/admin/checkpoints/kpidefinition/1/history/",
        "/admin/deployments/rolloutfreeze/",
    ):
        assert client.get(url).status_code == 200, url


def test_customers_cannot_open_the_admin(client, account):
    client.force_login(account.user)
    assert client.get("/admin/checkpoints/checkpoint/").status_code == 302


def test_kpi_admin_edits_with_history_and_refuses_a_mismatched_metric(client, db):
    from checkpoints.models import KPIDefinition

    client.force_login(staff_in(is_superuser=True))
    definition = kpi()
    url = f"/admin/checkpoints/kpidefinition/{definition.id}/change/"
    assert client.get(url).status_code == 200
    form = {
        "key": "tickets-solo",
        "name": "Tickets per account (solo)",
        "description": "",
        "scope_kind": "persona",
        "scope": "solo_podcaster",
        "metric": "tickets_per_account",
        "comparator": "<=",
        "target": "0.75",
        "warning_band": "0",
        "window_days": "",
        "severity": "high",
        "active": "on",
    }
    assert client.post(url, form).status_code == 302
    definition.refresh_from_db()
    assert definition.target == Decimal("0.75")
    assert definition.history.count() == 2
    refused = client.post(url, {**form, "metric": "support_sla_attainment"})
    assert refused.status_code == 200
    assert "measures a function, not a persona" in refused.content.decode()
    assert KPIDefinition.objects.get(pk=definition.pk).metric == "tickets_per_account"


def test_freeze_admin_lifts_with_a_reason(client, db):
    from deployments.models import RolloutFreeze
    from deployments.services import freeze_rollouts

    freeze, _ = freeze_rollouts(reason="r", checkpoint_name="cp", checkpoint_id=1, kpi_key="k")
    user = staff_in("operations")
    client.force_login(user)
    url = f"/admin/deployments/rolloutfreeze/{freeze.id}/lift/"
    assert client.get(url).status_code == 200
    done = client.post(url, {"confirm": "yes", "reason": "Pipeline fixed"})
    assert done.status_code == 302
    freeze = RolloutFreeze.objects.get()
    assert not freeze.active and freeze.lift_reason == "Pipeline fixed"
    assert freeze.lifted_by == user


def test_sidebar_link_opens_the_latest_checkpoint(client, db):
    user = staff_in("operations")
    client.force_login(user)
    assert client.get("/admin/checkpoints/checkpoint/latest/").url.endswith(
        "/admin/checkpoints/checkpoint/"
    )
    kpi(severity="low")
    latest = services.run_checkpoint("Now", 30, as_of=tomorrow())
    response = client.get("/admin/checkpoints/checkpoint/latest/")
    assert response.url.endswith(f"/admin/checkpoints/checkpoint/{latest.id}/change/")
    assert "Latest checkpoint" in client.get("/admin/").content.decode()
    client.force_login(staff_in("support_l1"))
    assert client.get("/admin/checkpoints/checkpoint/latest/").status_code == 403
