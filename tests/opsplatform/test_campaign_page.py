"""The customer's campaign page: linked from the account home, daily metrics as charts and a
table with exact totals, the renewal chain; tenant-walled, fixed query count."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import CampaignFactory, CampaignMetricFactory, SponsorFactory, StaffFactory

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def text_of(html: str) -> str:
    html = re.sub(r"</?(strong|em|small|span|code|a)\b[^>]*>", "", html)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.fixture
def chain(account):
    """Three campaigns of one sponsor, each renewing the one before."""
    sponsor = SponsorFactory(account=account, name="Acme Mattress")
    first = CampaignFactory(
        account=account,
        sponsor=sponsor,
        name="Spring read",
        starts_on=TODAY - dt.timedelta(days=120),
        ends_on=TODAY - dt.timedelta(days=61),
    )
    second = CampaignFactory(
        account=account,
        sponsor=sponsor,
        name="Summer read",
        starts_on=TODAY - dt.timedelta(days=60),
        ends_on=TODAY - dt.timedelta(days=1),
        renewed_from=first,
    )
    third = CampaignFactory(
        account=account,
        sponsor=sponsor,
        name="Autumn read",
        starts_on=TODAY,
        ends_on=TODAY + dt.timedelta(days=59),
        renewed_from=second,
    )
    return first, second, third


def test_the_account_home_links_each_campaign(client, account, chain):
    client.force_login(account.user)

    html = client.get("/account/").content.decode()

    for campaign in chain:
        assert f'href="/account/campaigns/{campaign.id}/"' in html


def test_the_page_charts_daily_metrics_with_exact_totals(client, account, chain):
    _, second, _ = chain
    for day, (revenue, spend) in enumerate(
        [("0.10", "0.07"), ("0.20", "0.03"), ("1785.33", "1000.00")]
    ):
        CampaignMetricFactory(
            campaign=second,
            date=second.starts_on + dt.timedelta(days=day),
            impressions=1000 * (day + 1),
            clicks=10 * (day + 1),
            conversions=day,
            revenue=Decimal(revenue),
            spend=Decimal(spend),
        )
    client.force_login(account.user)

    html = client.get(f"/account/campaigns/{second.id}/").content.decode()

    text = text_of(html)
    assert "Impressions 6,000" in text and "Clicks 60" in text and "Conversions 3" in text
    assert "Revenue $1,785.63" in text and "Spend $1,000.10" in text
    assert "ROI 0.7855" in text and "ROAS 1.7855" in text  # Decimal, four places
    assert html.count("<svg") == 2 and "Impressions and clicks per day" in html
    assert "<script" not in html and "style=" not in html  # CSP: nothing inline
    rows = re.findall(r"<tr><td>([A-Z][a-z]{2} \d+, \d{4})</td>", html)
    assert len(rows) == 3


def test_the_renewal_chain_is_listed_oldest_first(client, account, chain):
    first, second, third = chain
    client.force_login(account.user)

    html = client.get(f"/account/campaigns/{second.id}/").content.decode()

    listed = re.search(r'<ol class="renewal-chain">(.*?)</ol>', html, re.S).group(1)
    names = re.findall(r">(Spring read|Summer read|Autumn read)<", listed)
    assert names == ["Spring read", "Summer read", "Autumn read"]
    assert '<strong aria-current="true">Summer read</strong>' in listed
    assert f'href="/account/campaigns/{first.id}/"' in listed
    assert f'href="/account/campaigns/{third.id}/"' in listed


def test_a_campaign_without_renewals_says_so(client, account):
    alone = CampaignFactory(account=account)
    client.force_login(account.user)

    html = client.get(f"/account/campaigns/{alone.id}/").content.decode()

    assert "This campaign has not been renewed" in html
    assert "No daily metrics yet." in html


def test_another_accounts_campaign_is_404_and_staff_get_403(client, account, other_account):
    theirs = CampaignFactory(account=other_account, name="Their secret read")
    client.force_login(account.user)

    response = client.get(f"/account/campaigns/{theirs.id}/")

    assert response.status_code == 404 and b"Their secret read" not in response.content
    client.force_login(StaffFactory())
    assert client.get(f"/account/campaigns/{theirs.id}/").status_code == 403


@pytest.mark.parametrize("days", [1, 200])
def test_the_query_count_does_not_grow_with_days_or_chain(
    client, account, chain, days, django_assert_max_num_queries
):
    _, second, _ = chain
    for day in range(days):
        CampaignMetricFactory(campaign=second, date=second.starts_on - dt.timedelta(days=day))
    client.force_login(account.user)

    with django_assert_max_num_queries(12):
        response = client.get(f"/account/campaigns/{second.id}/")

    assert response.status_code == 200
