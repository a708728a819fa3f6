"""Pages, login throttling, health and metrics endpoints, the admin of the shared domain."""

import pytest
from django.urls import reverse
from django.utils import timezone

from opsplatform.models import ApiToken, Heartbeat
from tests.factories import (
    PASSWORD,
    AccountFactory,
    CampaignFactory,
    CampaignMetricFactory,
    StaffFactory,
    staff_in,
)

pytestmark = pytest.mark.django_db


def test_account_page_shows_own_campaigns_only(client, account, other_account):
    CampaignFactory(account=account, name="Mine spring read")
    CampaignFactory(account=other_account, name="Theirs autumn read")
    client.force_login(account.user)

    page = client.get("/account/").content.decode()

    assert account.name in page
    assert "Mine spring read" in page
    assert "Theirs autumn read" not in page
    assert other_account.name not in page


def test_account_page_totals_match_the_metrics(client, account):
    campaign = CampaignFactory(account=account)
    CampaignMetricFactory(campaign=campaign, date=timezone.localdate(), impressions=1234, clicks=56)
    CampaignMetricFactory(
        campaign=campaign,
        date=timezone.localdate() - timezone.timedelta(1),
        impressions=1000,
        clicks=4,
    )
    client.force_login(account.user)

    summary = client.get("/account/").context["summary"]

    assert summary["impressions"] == 2234
    assert summary["clicks"] == 60


def test_anonymous_visitor_is_sent_to_login(client):
    response = client.get("/account/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_signs_a_customer_in(client, account):
    response = client.post(
        "/login/", {"username": account.user.username, "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/account/"
    assert response.context["user"] == account.user


def test_staff_without_account_lands_in_admin(client):
    staff = StaffFactory()
    client.force_login(staff)

    assert client.get("/")["Location"] == "/admin/"
    assert client.get("/account/").status_code == 403


def test_repeated_failed_logins_lock_the_username(client, account, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": account.user.username, "password": "wrong"})

    response = client.post("/login/", {"username": account.user.username, "password": PASSWORD})

    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_logout_ends_the_session(client, account):
    client.force_login(account.user)

    client.post("/logout/")

    assert client.get("/account/").status_code == 302


def test_healthz_reports_database_and_worker(client):
    body = client.get("/healthz").json()
    assert body["database"] == "ok" and body["worker"] == "unknown"

    Heartbeat.objects.create(name="worker", beat_at=timezone.now())
    assert client.get("/healthz").json()["worker"] == "ok"

    Heartbeat.objects.filter(name="worker").update(
        beat_at=timezone.now() - timezone.timedelta(minutes=10)
    )
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["worker"] == "stale"


def test_metrics_hidden_from_the_public_in_production(client, settings, account):
    settings.DEBUG = False
    settings.METRICS_TOKEN = "scrape-me"
    client.get("/healthz")

    assert client.get("/metrics").status_code == 404
    client.force_login(account.user)
    assert client.get("/metrics").status_code == 404

    scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert scraped.status_code == 200
    text = scraped.content.decode()
    assert 'opsplatform_http_requests_total{method="GET",route="healthz",status="200"}' in text
    assert "opsplatform_db_queries_total" in text


def test_staff_can_read_metrics(client):
    client.force_login(StaffFactory())

    assert client.get("/metrics").status_code == 200


def test_event_counter_counts_accepted_and_duplicates(api, client):
    from opsplatform import telemetry

    before = telemetry.EVENTS_INGESTED.labels(result="duplicate")._value.get()
    event = {"type": "login", "occurred_at": "2026-01-05T10:00:00Z", "idempotency_key": "k"}
    api.post("events", {"events": [event, event]})

    assert telemetry.EVENTS_INGESTED.labels(result="duplicate")._value.get() == before + 1


# --- admin --------------------------------------------------------------------------------------

ADMIN_LISTS = ["account", "campaign", "campaignmetric", "usageevent", "sponsor", "apitoken"]


def populate(n):
    for _ in range(n):
        campaign = CampaignFactory()
        CampaignMetricFactory(campaign=campaign)


@pytest.mark.parametrize("model", ADMIN_LISTS)
def test_admin_changelists_cost_the_same_queries_at_1_and_50_rows(
    client, model, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(StaffFactory(is_superuser=True))
    url = reverse(f"admin:opsplatform_{model}_changelist")
    populate(1)
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    populate(49)
    with CaptureQueriesContext(connection) as large:
        assert client.get(url).status_code == 200

    assert len(large.captured_queries) == len(small.captured_queries)


def test_admin_token_is_shown_once_and_stored_hashed(client):
    admin_user = StaffFactory(is_superuser=True)
    customer = AccountFactory().user
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:opsplatform_apitoken_add"),
        {"user": customer.pk, "label": "zapier"},
        follow=True,
    )

    token = ApiToken.objects.get()
    shown = [str(m) for m in response.context["messages"]]
    raw = next(word for word in shown[0].split() if word.startswith("ops_"))
    assert ApiToken.hash(raw) == token.token_hash
    assert token.history.get().history_user == admin_user
    again = client.get(reverse("admin:opsplatform_apitoken_change", args=[token.pk]))
    assert raw not in again.content.decode()


def test_admin_revoke_action_records_who_revoked(client, account):
    from opsplatform import services

    token, _ = services.issue_api_token(user=account.user, label="x")
    admin_user = StaffFactory(is_superuser=True)
    client.force_login(admin_user)

    client.post(
        reverse("admin:opsplatform_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.history.first().history_user == admin_user


def test_admin_account_history_records_the_editor(client, account):
    editor = staff_in("operations")
    client.force_login(editor)
    url = reverse("admin:opsplatform_account_change", args=[account.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        name="Renamed Show",
        user=account.user_id,
        persona=account.persona_id,
        created_at_0=account.created_at.date().isoformat(),
        created_at_1=account.created_at.time().strftime("%H:%M:%S"),
    )

    response = client.post(url, data)

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Renamed Show"
    assert account.history.first().history_user == editor
    assert (
        client.get(reverse("admin:opsplatform_account_history", args=[account.pk])).status_code
        == 200
    )


def test_support_agent_cannot_edit_accounts_in_admin(client, account):
    client.force_login(staff_in("support_l1"))
    url = reverse("admin:opsplatform_account_change", args=[account.pk])

    response = client.post(url, {"name": "hijack"})

    assert response.status_code == 403
    account.refresh_from_db()
    assert account.name != "hijack"


# --- API tokens page ----------------------------------------------------------------------------


def test_customer_creates_a_token_that_works_and_sees_it_once(client, account):
    client.force_login(account.user)

    response = client.post("/account/tokens/", {"label": "Zapier"})

    raw = response.context["new_secret"]
    token = ApiToken.objects.get(user=account.user)
    assert token.label == "Zapier" and ApiToken.hash(raw) == token.token_hash
    from tests.conftest import ApiClient

    assert ApiClient(raw).get("me").json()["account"]["id"] == account.id
    assert raw not in client.get("/account/tokens/").content.decode()


def test_blank_label_shows_a_form_error(client, account):
    client.force_login(account.user)

    response = client.post("/account/tokens/", {"label": "  "})

    assert response.status_code == 200
    assert response.context["form"].errors["label"]
    assert ApiToken.objects.count() == 0


def test_customer_revokes_own_token(client, account):
    from opsplatform import services

    token, _ = services.issue_api_token(user=account.user, label="old")
    client.force_login(account.user)

    client.post(f"/account/tokens/{token.id}/revoke/")

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.history.first().history_user == account.user


def test_cannot_see_or_revoke_another_accounts_token(client, account, other_account):
    from opsplatform import services

    theirs, _ = services.issue_api_token(user=other_account.user, label="theirs")
    client.force_login(account.user)

    listed = client.get("/account/tokens/").content.decode()
    response = client.post(f"/account/tokens/{theirs.id}/revoke/")

    assert "theirs" not in listed
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_sessions_are_indexed_by_user(client, account):
    from opsplatform.models import UserSession

    client.post("/login/", {"username": account.user.username, "password": PASSWORD})

    session = UserSession.objects.get(session_key=client.session.session_key)
    assert session.user_id == account.user_id


def test_domain_counters_reach_the_metrics_page(client, api, django_capture_on_commit_callbacks):
    client.force_login(StaffFactory())

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "support/tickets",
            {"subject": "Stats look off", "description": "Downloads dropped", "channel": "in_app"},
        )
    assert response.status_code == 201

    text = client.get("/metrics").content.decode()
    line = next(
        row
        for row in text.splitlines()
        if row.startswith('opsplatform_support_tickets_opened_total{channel="in_app"}')
    )
    assert float(line.split()[-1]) >= 1


def test_a_staff_login_never_acts_as_a_customer_on_pages(client, account):
    # However a staff flag ended up on an account's owner, the customer pages refuse it.
    account.user.is_staff = True
    account.user.save()
    client.force_login(account.user)

    for path in ["/account/", "/account/tokens/", "/account/billing/", "/account/delete/"]:
        response = client.get(path)
        assert response.status_code == 403, path
