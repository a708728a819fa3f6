"""Management commands: tokens, accounts, schedules, demo data."""

import datetime as dt
import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db.models import Count, Sum
from django_q.models import Schedule

from opsplatform.models import Account, ApiToken, Campaign, CampaignMetric, UsageEvent
from tests.conftest import ApiClient
from tests.factories import AccountFactory, StaffFactory

pytestmark = pytest.mark.django_db


def run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def test_issue_api_token_prints_a_working_token_last():
    account = AccountFactory(user__username="pod@example.test")

    raw = run("issue_api_token", "POD@example.test", "--label", "ci").strip().splitlines()[-1]

    assert ApiClient(raw).get("me").json()["account"]["id"] == account.id
    token = ApiToken.objects.get()
    assert token.label == "ci"
    assert raw not in (token.token_hash, token.token_prefix)


def test_issue_api_token_for_unknown_user_fails_clearly():
    with pytest.raises(CommandError, match="No user"):
        run("issue_api_token", "ghost")
    assert ApiToken.objects.count() == 0


def test_create_account_prints_the_id_and_sets_the_password():
    out = run(
        "create_account",
        "--email",
        "New@Example.test",
        "--password",
        "s3cret-pass!",
        "--persona",
        "agency",
        "--name",
        "Loud Agency",
    )

    account = Account.objects.get(id=int(out.strip().splitlines()[-1]))
    assert account.persona.slug == "agency"
    assert account.name == "Loud Agency"
    assert account.user.check_password("s3cret-pass!")


def test_create_account_rejects_unknown_persona_and_duplicate_email():
    with pytest.raises(CommandError, match="Unknown persona"):
        run("create_account", "--email", "a@b.test", "--password", "x" * 10, "--persona", "cat")
    run("create_account", "--email", "a@b.test", "--password", "x" * 10, "--persona", "brand")
    with pytest.raises(CommandError, match="already exists"):
        run("create_account", "--email", "A@b.test", "--password", "x" * 10, "--persona", "brand")
    assert Account.objects.count() == 1


def test_sync_schedules_upserts_by_name_and_twice_changes_nothing():
    first = run("sync_schedules")
    snapshot = list(
        Schedule.objects.order_by("name").values("name", "func", "schedule_type", "minutes")
    )
    second = run("sync_schedules")

    assert "created" in first and not first.startswith("schedules: 0 created")
    assert second.startswith("schedules: 0 created, 0 updated")
    assert (
        list(Schedule.objects.order_by("name").values("name", "func", "schedule_type", "minutes"))
        == snapshot
    )
    assert Schedule.objects.filter(name="opsplatform.worker_heartbeat").exists()


def test_sync_schedules_repairs_an_edited_schedule():
    run("sync_schedules")
    Schedule.objects.filter(name="opsplatform.worker_heartbeat").update(minutes=60)

    out = run("sync_schedules")

    assert "1 updated" in out
    assert Schedule.objects.get(name="opsplatform.worker_heartbeat").minutes == 1


def test_groups_exist_with_permissions():
    from opsplatform.services import ensure_groups

    before = {g.name: g.permissions.count() for g in Group.objects.all()}
    ensure_groups()
    after = {g.name: g.permissions.count() for g in Group.objects.all()}

    assert {
        "support_l1",
        "support_l2",
        "support_l3",
        "support_l4",
        "operations",
        "compliance",
    } <= set(after)
    assert before == after
    ops = Group.objects.get(name="operations")
    assert ops.permissions.filter(codename="view_campaign").exists()


def fingerprint():
    return {
        "accounts": list(
            Account.objects.order_by("id").values_list(
                "name", "persona__slug", "plan", "country", "created_at", "user__email"
            )
        ),
        "campaigns": list(
            Campaign.objects.order_by("id").values_list(
                "account__name",
                "sponsor__name",
                "starts_on",
                "ends_on",
                "deal_value",
                "status",
                "renewed_from__name",
            )
        ),
        "metrics": CampaignMetric.objects.aggregate(
            n=Count("id"), imp=Sum("impressions"), rev=Sum("revenue"), spend=Sum("spend")
        ),
        "events": list(
            UsageEvent.objects.order_by("account__name", "idempotency_key").values_list(
                "account__name", "type", "occurred_at"
            )[:500]
        ),
    }


def wipe():
    from django.contrib.auth import get_user_model

    from userflows.models import DeletionRequest, Invoice

    # Invoices (kept by law) and deletion requests protect their account from a hard delete.
    Invoice.objects.all().delete()
    DeletionRequest.objects.all().delete()
    CampaignMetric.objects.all().delete()
    Campaign.objects.all().delete()
    UsageEvent.objects.all().delete()
    Account.objects.all().delete()
    get_user_model().objects.all().delete()


@pytest.mark.usefixtures("transactional_db")
def test_seed_demo_is_deterministic_for_a_seed():
    as_of = dt.date(2026, 6, 30)
    run("seed_demo", "--accounts", "12", "--seed", "7", "--as-of", as_of.isoformat())
    first = fingerprint()
    wipe()
    run("seed_demo", "--accounts", "12", "--seed", "7", "--as-of", as_of.isoformat())
    second = fingerprint()
    wipe()
    run("seed_demo", "--accounts", "12", "--seed", "8", "--as-of", as_of.isoformat())
    other_seed = fingerprint()

    assert first == second
    assert first != other_seed
    assert len(first["accounts"]) == 12


def test_seed_demo_data_is_realistic():
    as_of = dt.date(2026, 6, 30)
    out = run("seed_demo", "--accounts", "40", "--seed", "3", "--as-of", as_of.isoformat())

    assert Account.objects.count() == 40
    personas = set(Account.objects.values_list("persona__slug", flat=True))
    assert personas == {"solo_podcaster", "podcast_network", "agency", "brand"}
    assert Campaign.objects.filter(renewed_from__isnull=False).exists()  # renewal chains
    # every renewal continues the same sponsor and starts after its predecessor
    for renewal in Campaign.objects.filter(renewed_from__isnull=False).select_related(
        "renewed_from"
    )[:50]:
        assert renewal.sponsor_id == renewal.renewed_from.sponsor_id
        assert renewal.starts_on > renewal.renewed_from.ends_on
    # no metric outside its campaign, none in the future, clicks never exceed impressions
    for m in CampaignMetric.objects.select_related("campaign")[:2000]:
        assert m.campaign.starts_on <= m.date <= min(m.campaign.ends_on, as_of)
        assert m.clicks <= m.impressions

    # seasonality: November delivers more per day than July
    def per_day(month):
        qs = CampaignMetric.objects.filter(date__month=month)
        return qs.aggregate(s=Sum("impressions"))["s"] / max(qs.count(), 1)

    assert per_day(11) > per_day(7)
    assert UsageEvent.objects.filter(properties__source="seed").count() == (
        UsageEvent.objects.count()
    )
    assert "solo@demo.test" in out and "agent1" in out
    # demo customers can sign in with the printed password
    assert Account.objects.get(user__email="solo@demo.test").user.check_password("opsplatform-demo")


def test_seed_demo_if_empty_does_nothing_when_data_exists():
    AccountFactory()

    out = run("seed_demo", "--if-empty", "--accounts", "5")

    assert Account.objects.count() == 1
    assert "already present" in out


def test_demo_staff_are_in_their_groups():
    run("seed_demo", "--accounts", "4", "--as-of", "2026-06-30")

    from django.contrib.auth import get_user_model

    agent = get_user_model().objects.get(username="agent2")
    assert agent.is_staff and list(agent.groups.values_list("name", flat=True)) == ["support_l2"]
    assert StaffFactory._meta.model.objects.get(username="admin").is_superuser
