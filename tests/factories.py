"""Factories for the shared domain; app factories live in tests/<app>/factories.py."""

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from opsplatform import services
from opsplatform.models import Account, Campaign, CampaignMetric, Persona, Sponsor

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}@example.test")
    email = factory.LazyAttribute(lambda o: o.username)
    password = factory.django.Password(PASSWORD)


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@opsplatform.local")
    is_staff = True


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Account {n}")
    persona = factory.LazyFunction(lambda: Persona.objects.get(slug="solo_podcaster"))
    plan = Account.Plan.STARTER
    country = "US"


class SponsorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sponsor

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"Sponsor {n}")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    account = factory.SubFactory(AccountFactory)
    sponsor = factory.LazyAttribute(lambda o: SponsorFactory(account=o.account))
    name = factory.Sequence(lambda n: f"Campaign {n}")
    starts_on = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=30))
    ends_on = factory.LazyAttribute(lambda o: o.starts_on + dt.timedelta(days=59))
    deal_value = Decimal("5000.00")
    status = Campaign.Status.ACTIVE


class CampaignMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CampaignMetric

    campaign = factory.SubFactory(CampaignFactory)
    date = factory.LazyAttribute(lambda o: o.campaign.starts_on)
    impressions = 1000
    clicks = 20
    conversions = 2
    revenue = Decimal("120.00")
    spend = Decimal("80.00")


def staff_in(*groups: str, **kwargs):
    """A staff user in the named groups (groups are created by post_migrate)."""
    from django.contrib.auth.models import Group

    user = StaffFactory(**kwargs)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def token_for(user) -> str:
    _, raw = services.issue_api_token(user=user, label="test")
    return raw
