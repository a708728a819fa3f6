"""Hand-built study data: accounts of a persona and campaigns with exact dates and values."""

import datetime as dt
from decimal import Decimal

from opsplatform.models import Account, Campaign, CampaignMetric, Persona, Sponsor
from tests.factories import AccountFactory

D = dt.date


def account_of_persona(slug: str) -> Account:
    return AccountFactory(persona=Persona.objects.get(slug=slug))


def campaign(
    account: Account,
    starts_on: dt.date,
    ends_on: dt.date,
    deal_value: str = "0.00",
    *,
    status: str = Campaign.Status.COMPLETED,
    renewed_from: Campaign | None = None,
) -> Campaign:
    sponsor = (
        renewed_from.sponsor
        if renewed_from is not None
        else Sponsor.objects.create(account=account, name=f"Sponsor {Sponsor.objects.count()}")
    )
    return Campaign.objects.create(
        account=account,
        sponsor=sponsor,
        name=f"{account.name} {starts_on}",
        starts_on=starts_on,
        ends_on=ends_on,
        deal_value=Decimal(deal_value),
        status=status,
        renewed_from=renewed_from,
    )


def metric(
    campaign: Campaign,
    date: dt.date,
    *,
    spend: str = "0.00",
    revenue: str = "0.00",
    impressions: int = 0,
    clicks: int = 0,
    conversions: int = 0,
) -> CampaignMetric:
    return CampaignMetric.objects.create(
        campaign=campaign,
        date=date,
        spend=Decimal(spend),
        revenue=Decimal(revenue),
        impressions=impressions,
        clicks=clicks,
        conversions=conversions,
    )
