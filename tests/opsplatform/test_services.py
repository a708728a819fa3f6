"""Rules that live in the core services, whichever face calls them."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from opsplatform import services
from opsplatform.errors import Forbidden, InvalidInput, NotFound
from opsplatform.models import CampaignMetric, UsageEvent
from tests.factories import CampaignFactory, staff_in

pytestmark = pytest.mark.django_db


def event(account_id=None, key="k1"):
    return services.EventInput(
        account_id=account_id,
        type="login",
        occurred_at=dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC),
        idempotency_key=key,
        properties={},
    )


def test_a_customers_events_go_to_their_own_account(account):
    assert services.push_usage_events(user=account.user, events=[event()]) == (1, 0)
    assert UsageEvent.objects.get().account_id == account.id


def test_a_customer_may_not_name_an_account(account, other_account):
    with pytest.raises(InvalidInput) as refused:
        services.push_usage_events(
            user=account.user, events=[event(), event(other_account.id, key="k2")]
        )
    assert refused.value.field == "events.1.account_id"
    assert not UsageEvent.objects.exists()


def test_staff_name_the_account_of_every_event_and_need_the_permission(account):
    writer = staff_in("operations")
    writer.user_permissions.add(Permission.objects.get(codename="add_usageevent"))
    writer = type(writer).objects.get(pk=writer.pk)  # fresh permission cache
    reader = staff_in("support_l1")

    with pytest.raises(InvalidInput):
        services.push_usage_events(user=writer, events=[event()])
    with pytest.raises(Forbidden):
        services.push_usage_events(user=reader, events=[event(account.id)])
    assert not UsageEvent.objects.exists()

    assert services.push_usage_events(user=writer, events=[event(account.id)]) == (1, 0)


def metric(day):
    return services.MetricInput(
        date=day,
        impressions=100,
        clicks=5,
        conversions=1,
        revenue=Decimal("10.00"),
        spend=Decimal("4.00"),
    )


def test_metric_upserts_respect_the_tenant_wall_and_staff_permissions(account, other_account):
    theirs = CampaignFactory(account=other_account)
    mine = CampaignFactory(account=account)
    reader = staff_in("support_l1")

    with pytest.raises(NotFound):
        services.put_campaign_metrics(
            user=account.user, campaign_id=theirs.id, metrics=[metric(theirs.starts_on)]
        )
    with pytest.raises(Forbidden):
        services.put_campaign_metrics(
            user=reader, campaign_id=mine.id, metrics=[metric(mine.starts_on)]
        )
    assert not CampaignMetric.objects.exists()

    count = services.put_campaign_metrics(
        user=account.user, campaign_id=mine.id, metrics=[metric(mine.starts_on)]
    )
    assert count == 1 and CampaignMetric.objects.get().campaign_id == mine.id


def test_sync_schedules_upserts_by_name_and_a_second_run_changes_nothing():
    from django_q.models import Schedule

    first = services.sync_schedules()
    Schedule.objects.filter(name=Schedule.objects.first().name).update(minutes=999)
    second = services.sync_schedules()
    third = services.sync_schedules()

    total = Schedule.objects.count()
    assert first == {"created": total, "updated": 0, "unchanged": 0}
    assert second == {"created": 0, "updated": 1, "unchanged": total - 1}
    assert third == {"created": 0, "updated": 0, "unchanged": total}
