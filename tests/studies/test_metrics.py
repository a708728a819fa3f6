"""Each definition of docs/metrics.md on hand-built data with answers worked out by hand.

Money is compared as exact decimal strings; rates as the exact fraction's float (written
out as the fraction we computed by hand) with `==`, or to 1e-12 for the Wilson interval."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from statsmodels.stats.proportion import proportion_confint

from opsplatform.models import Campaign
from studies import metrics
from studies.models import Study
from studies.services import (
    conduct_campaign_efficiency_study,
    conduct_persona_impact_study,
    conduct_renewal_rate_study,
    conduct_revenue_cohort_study,
    conduct_revenue_growth_study,
)
from tests.studies.factories import D, account_of_persona, campaign, metric

pytestmark = pytest.mark.django_db
CANCELED = Campaign.Status.CANCELED
EMPTY_RENEWAL = {
    "renewal_rate": None,
    "total_campaigns": 0,
    "renewed_campaigns": 0,
    "ci_low": None,
    "ci_high": None,
}


def wilson(successes, total):
    low, high = proportion_confint(successes, total, alpha=0.05, method="wilson")
    return float(low), float(high)


# --- renewal rate -----------------------------------------------------------------------------


@pytest.fixture
def renewal_data():
    """January 2026. Eligible: a1 (ends on the first day, renewed by a campaign created after
    the period), a2 (ends on the last day, not renewed), a6 (its only renewal is canceled),
    b1 (renewed). Not eligible: a3 (ends the day before), a4 (the day after), a5 (canceled)."""
    a = account_of_persona("solo_podcaster")
    b = account_of_persona("podcast_network")
    a1 = campaign(a, D(2025, 12, 1), D(2026, 1, 1))
    campaign(a, D(2026, 2, 1), D(2026, 2, 28), renewed_from=a1)
    campaign(a, D(2026, 1, 2), D(2026, 1, 31))  # a2
    a3 = campaign(a, D(2025, 12, 1), D(2025, 12, 31))
    campaign(a, D(2026, 1, 1), D(2026, 1, 31), renewed_from=a3)  # ends in period: eligible too
    campaign(a, D(2026, 1, 5), D(2026, 2, 1))  # a4
    campaign(a, D(2026, 1, 5), D(2026, 1, 15), status=CANCELED)  # a5
    a6 = campaign(a, D(2026, 1, 1), D(2026, 1, 20))
    campaign(a, D(2026, 1, 21), D(2026, 3, 1), status=CANCELED, renewed_from=a6)
    b1 = campaign(b, D(2026, 1, 1), D(2026, 1, 10))
    campaign(b, D(2026, 1, 11), D(2026, 3, 10), renewed_from=b1)


def test_renewal_rate_counts_edges_late_renewals_and_skips_canceled(renewal_data):
    study = conduct_renewal_rate_study(D(2026, 1, 1), D(2026, 1, 31))

    # Eligible: a1, a2, a3's renewal, a6 (solo) and b1 (network) = 5; renewed: a1, b1 = 2.
    results = study.results
    assert study.status == Study.Status.COMPLETED
    assert results["total_campaigns"] == 5
    assert results["renewed_campaigns"] == 2
    assert results["renewal_rate"] == 2 / 5
    low, high = wilson(2, 5)
    assert results["ci_low"] == pytest.approx(low, abs=1e-12)
    assert results["ci_high"] == pytest.approx(high, abs=1e-12)
    solo = results["by_persona"]["solo_podcaster"]
    assert (solo["total_campaigns"], solo["renewed_campaigns"], solo["renewal_rate"]) == (
        4,
        1,
        1 / 4,
    )
    assert solo["ci_low"] == pytest.approx(wilson(1, 4)[0], abs=1e-12)
    assert solo["ci_high"] == pytest.approx(wilson(1, 4)[1], abs=1e-12)
    network = results["by_persona"]["podcast_network"]
    assert (network["total_campaigns"], network["renewed_campaigns"]) == (1, 1)
    assert network["renewal_rate"] == 1.0
    assert network["ci_low"] == pytest.approx(wilson(1, 1)[0], abs=1e-12)
    assert network["ci_high"] == pytest.approx(wilson(1, 1)[1], abs=1e-12)
    # One persona empty: nulls and zeros, not errors.
    assert results["by_persona"]["agency"] == EMPTY_RENEWAL
    assert results["by_persona"]["brand"] == EMPTY_RENEWAL


def test_renewal_rate_segment_keeps_only_that_persona(renewal_data):
    results = conduct_renewal_rate_study(D(2026, 1, 1), D(2026, 1, 31), "podcast_network").results
    assert (results["total_campaigns"], results["renewed_campaigns"]) == (1, 1)
    assert list(results["by_persona"]) == ["podcast_network"]


@pytest.mark.parametrize(("successes", "total"), [(0, 1), (1, 1), (3, 7), (50, 120), (0, 40)])
def test_wilson_interval_matches_statsmodels(successes, total):
    low, high = metrics.wilson_interval(successes, total)
    expected_low, expected_high = wilson(successes, total)
    assert low == pytest.approx(expected_low, abs=1e-12)
    assert high == pytest.approx(expected_high, abs=1e-12)


def test_no_campaigns_give_nulls_and_zeros_for_every_study():
    start, end = D(2030, 1, 1), D(2030, 1, 31)
    assert conduct_renewal_rate_study(start, end).results == {
        **EMPTY_RENEWAL,
        "by_persona": dict.fromkeys(
            ("agency", "brand", "podcast_network", "solo_podcaster"), EMPTY_RENEWAL
        ),
    }
    growth = conduct_revenue_growth_study(start, end).results
    assert {k: v for k, v in growth.items() if k != "by_persona"} == {
        "revenue": "0.00",
        "previous_revenue": "0.00",
        "growth_rate": None,
        "median_account_growth": None,
        "accounts_growing": 0,
        "accounts_flat": 0,
        "accounts_shrinking": 0,
    }
    efficiency = conduct_campaign_efficiency_study(start, end).results
    assert {k: v for k, v in efficiency.items() if k != "by_persona"} == {
        "campaigns": 0,
        "campaigns_with_spend": 0,
        "revenue": "0.00",
        "spend": "0.00",
        "avg_roi": None,
        "median_roi": None,
        "avg_roas": None,
        "pooled_roas": None,
        "cpa": None,
        "ctr": None,
        "conversion_rate": None,
    }
    assert conduct_revenue_cohort_study(start, end).results == {"cohorts": []}
    impact = conduct_persona_impact_study(start, end).results["personas"]["brand"]
    assert (impact["accounts"], impact["revenue_share"], impact["tickets"]) == (0, None, 0)
    assert impact["tickets_per_account"] is None


# --- revenue and growth -----------------------------------------------------------------------


@pytest.fixture
def growth_data():
    """Period 1-10 March 2026 (10 days); the previous period is 19-28 February."""
    a = account_of_persona("solo_podcaster")
    campaign(a, D(2026, 2, 25), D(2026, 3, 4), "100.00")  # 8 days: 4 before (50), 4 in (50)
    campaign(a, D(2026, 3, 10), D(2026, 3, 12), "100.00")  # 1 of 3 days in: 100/3
    campaign(a, D(2026, 3, 10), D(2026, 3, 12), "100.00")  # again 100/3: A = 350/3 exactly
    b = account_of_persona("podcast_network")
    campaign(b, D(2026, 2, 19), D(2026, 3, 10), "1000.00")  # 20 days: 500 before, 500 in
    c = account_of_persona("solo_podcaster")
    campaign(c, D(2026, 2, 19), D(2026, 2, 19), "10.00")  # previous only
    campaign(c, D(2026, 3, 1), D(2026, 3, 10), "99999.00", status=CANCELED)
    d = account_of_persona("agency")
    campaign(d, D(2026, 3, 10), D(2026, 3, 11), "0.01")  # half a cent: 0.005
    e = account_of_persona("brand")
    campaign(e, D(2026, 3, 11), D(2026, 3, 20), "500.00")  # after the period: nothing
    campaign(e, D(2026, 2, 1), D(2026, 2, 18), "500.00")  # before the previous period


def test_revenue_growth_is_exact_and_rounded_once(growth_data):
    results = conduct_revenue_growth_study(D(2026, 3, 1), D(2026, 3, 10)).results

    # 350/3 + 500 + 0 + 1/200 = 370003/600 = 616.67166…; rounding each campaign first would
    # give 50 + 33.33 + 33.33 + 500 + 0.01 = 616.67 too, but the solo persona shows the gap.
    assert results["revenue"] == "616.67"
    assert results["previous_revenue"] == "560.00"
    assert results["growth_rate"] == float(Fraction(370003, 600) / 560 - 1)
    assert results["growth_rate"] == float(Fraction(34003, 336000))
    # A grows (350/3 vs 50), B is flat, C shrinks, D grows from nothing; E has none.
    assert (
        results["accounts_growing"],
        results["accounts_flat"],
        results["accounts_shrinking"],
    ) == (2, 1, 1)
    # Growth of accounts with previous revenue: A 4/3, B 0, C -1 → median 0.
    assert results["median_account_growth"] == 0.0

    solo = results["by_persona"]["solo_podcaster"]
    assert solo == {
        "revenue": "116.67",  # 350/3, where per-campaign rounding gives 116.66
        "previous_revenue": "60.00",
        "growth_rate": float(Fraction(17, 18)),
        "median_account_growth": float(Fraction(1, 6)),  # median of 4/3 and -1
        "accounts_growing": 1,
        "accounts_flat": 0,
        "accounts_shrinking": 1,
    }
    assert results["by_persona"]["podcast_network"] == {
        "revenue": "500.00",
        "previous_revenue": "500.00",
        "growth_rate": 0.0,
        "median_account_growth": 0.0,
        "accounts_growing": 0,
        "accounts_flat": 1,
        "accounts_shrinking": 0,
    }
    assert results["by_persona"]["agency"] == {
        "revenue": "0.01",  # 0.005 rounded half up
        "previous_revenue": "0.00",
        "growth_rate": None,
        "median_account_growth": None,
        "accounts_growing": 1,
        "accounts_flat": 0,
        "accounts_shrinking": 0,
    }
    assert results["by_persona"]["brand"] == {
        "revenue": "0.00",
        "previous_revenue": "0.00",
        "growth_rate": None,
        "median_account_growth": None,
        "accounts_growing": 0,
        "accounts_flat": 0,
        "accounts_shrinking": 0,
    }


def test_previous_period_has_the_same_length_and_ends_the_day_before():
    assert metrics.previous_period(D(2026, 3, 1), D(2026, 3, 10)) == (
        D(2026, 2, 19),
        D(2026, 2, 28),
    )
    assert metrics.previous_period(D(2024, 3, 1), D(2024, 3, 1)) == (
        D(2024, 2, 29),
        D(2024, 2, 29),
    )


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (Fraction(1, 2), "0.01"),
        (Fraction(-1, 2), "-0.01"),
        (Fraction(49999, 100000), "0.00"),
        (Fraction(250), "2.50"),
        (Fraction(35000, 3), "116.67"),
        (0, "0.00"),
    ],
)
def test_money_rounds_half_up_only_at_the_end(cents, text):
    assert metrics.money(cents) == text


# --- campaign efficiency ----------------------------------------------------------------------


@pytest.fixture
def efficiency_data():
    """April 2026. g1: rows on both edges (and outside them); g2: zero spend; g3 loses money;
    g4 is canceled; g5 spends three cents and earns nothing."""
    a = account_of_persona("solo_podcaster")
    b = account_of_persona("podcast_network")
    c = account_of_persona("solo_podcaster")
    g1 = campaign(a, D(2026, 3, 1), D(2026, 5, 31))
    metric(g1, D(2026, 3, 31), spend="999.00", revenue="1.00", impressions=5, clicks=5)
    metric(
        g1,
        D(2026, 4, 1),
        spend="10.00",
        revenue="30.00",
        impressions=1000,
        clicks=10,
        conversions=1,
    )
    metric(
        g1,
        D(2026, 4, 30),
        spend="20.00",
        revenue="15.00",
        impressions=1000,
        clicks=30,
        conversions=2,
    )
    metric(g1, D(2026, 5, 1), spend="999.00", revenue="1.00", impressions=5, clicks=5)
    g2 = campaign(b, D(2026, 4, 1), D(2026, 4, 30))
    metric(g2, D(2026, 4, 15), revenue="50.00", impressions=500)
    g3 = campaign(a, D(2026, 4, 1), D(2026, 4, 30))
    metric(g3, D(2026, 4, 10), spend="10.00", revenue="5.00", impressions=100, clicks=5)
    g4 = campaign(a, D(2026, 4, 1), D(2026, 4, 30), status=CANCELED)
    metric(
        g4,
        D(2026, 4, 10),
        spend="500.00",
        revenue="9000.00",
        impressions=9,
        clicks=9,
        conversions=9,
    )
    g5 = campaign(c, D(2026, 4, 1), D(2026, 4, 30))
    metric(g5, D(2026, 4, 20), spend="0.03")


def test_campaign_efficiency(efficiency_data):
    results = conduct_campaign_efficiency_study(D(2026, 4, 1), D(2026, 4, 30)).results
    # S, V: g1 30.00/45.00 (ROI 1/2, ROAS 3/2), g2 0/50.00, g3 10.00/5.00 (-1/2, 1/2),
    # g5 0.03/0 (-1, 0).
    headline = {k: v for k, v in results.items() if k != "by_persona"}
    assert headline == {
        "campaigns": 4,
        "campaigns_with_spend": 3,
        "revenue": "100.00",
        "spend": "40.03",
        "avg_roi": float(Fraction(1, 2) - Fraction(1, 2) - 1) / 3,
        "median_roi": -0.5,
        "avg_roas": float(Fraction(2, 3)),
        "pooled_roas": float(Fraction(10000, 4003)),
        "cpa": "13.34",  # 40.03 / 3 = 13.3433…
        "ctr": float(Fraction(45, 2600)),
        "conversion_rate": float(Fraction(3, 45)),
    }
    assert results["by_persona"]["solo_podcaster"] == {
        "campaigns": 3,
        "campaigns_with_spend": 3,
        "revenue": "50.00",
        "spend": "40.03",
        "avg_roi": float(Fraction(-1, 3)),
        "median_roi": -0.5,
        "avg_roas": float(Fraction(2, 3)),
        "pooled_roas": float(Fraction(5000, 4003)),
        "cpa": "13.34",
        "ctr": float(Fraction(45, 2100)),
        "conversion_rate": float(Fraction(3, 45)),
    }
    # Zero spend: the campaign counts, its ROI and ROAS do not exist.
    assert results["by_persona"]["podcast_network"] == {
        "campaigns": 1,
        "campaigns_with_spend": 0,
        "revenue": "50.00",
        "spend": "0.00",
        "avg_roi": None,
        "median_roi": None,
        "avg_roas": None,
        "pooled_roas": None,
        "cpa": None,
        "ctr": 0.0,
        "conversion_rate": None,
    }
    assert results["by_persona"]["agency"] == {
        "campaigns": 0,
        "campaigns_with_spend": 0,
        "revenue": "0.00",
        "spend": "0.00",
        "avg_roi": None,
        "median_roi": None,
        "avg_roas": None,
        "pooled_roas": None,
        "cpa": None,
        "ctr": None,
        "conversion_rate": None,
    }


# --- persona impact ---------------------------------------------------------------------------


def test_persona_impact(growth_data):
    from opsplatform.models import Account
    from support.models import Ticket
    from tests.support.factories import make_ticket

    Account.objects.update(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    account_of_persona("agency")  # created now, after the period: not counted
    network = Campaign.objects.get(deal_value="1000.00").account
    inside = make_ticket(account=network)
    outside = make_ticket(account=network)
    Ticket.objects.filter(pk=inside.pk).update(
        created_at=dt.datetime(2026, 3, 10, 23, 59, tzinfo=dt.UTC)
    )
    Ticket.objects.filter(pk=outside.pk).update(
        created_at=dt.datetime(2026, 3, 11, 0, 0, tzinfo=dt.UTC)
    )

    personas = conduct_persona_impact_study(D(2026, 3, 1), D(2026, 3, 10)).results["personas"]

    assert sorted(personas) == ["agency", "brand", "podcast_network", "solo_podcaster"]
    assert {slug: p["accounts"] for slug, p in personas.items()} == {
        "agency": 1,
        "brand": 1,
        "podcast_network": 1,
        "solo_podcaster": 2,
    }
    solo = personas["solo_podcaster"]
    assert (solo["tickets"], solo["tickets_per_account"]) == (0, 0.0)
    assert solo["revenue_share"] == float(Fraction(350, 3) / Fraction(370003, 600))
    assert solo["revenue_growth"]["revenue"] == "116.67"
    assert personas["podcast_network"]["tickets"] == 1
    assert personas["podcast_network"]["tickets_per_account"] == 1.0
    assert personas["podcast_network"]["revenue_share"] == float(500 / Fraction(370003, 600))
    assert personas["brand"]["revenue_share"] == 0.0
    assert personas["agency"]["renewal_rate"] == EMPTY_RENEWAL
    assert personas["podcast_network"]["campaign_efficiency"]["campaigns"] == 0


def test_persona_impact_reads_health_and_onboarding_as_of_the_period_end(growth_data):
    """Each account's latest check on or before the last day counts; later ones do not."""
    from deployments.health.models import AccountHealthCheck
    from opsplatform.models import Account, UsageEvent

    Account.objects.update(created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    solo_a, solo_c = Account.objects.filter(persona__slug="solo_podcaster").order_by("id")
    network = Account.objects.get(persona__slug="podcast_network")

    def check(account, day, hour, score, status):
        AccountHealthCheck.objects.create(
            account=account,
            persona=account.persona,
            checked_at=dt.datetime(2026, 3, day, hour, tzinfo=dt.UTC),
            days=30,
            score=None if score is None else Decimal(score),
            status=status,
            triggered_by="test",
        )

    check(solo_a, 2, 9, "40.00", "critical")
    check(solo_a, 10, 23, "81.25", "healthy")  # the latest by the end of 10 March
    check(solo_a, 11, 0, "10.00", "critical")  # the next day: after the period
    check(solo_c, 5, 12, "62.50", "at_risk")
    check(network, 12, 8, "90.00", "healthy")  # only after the period: not checked

    def onboarded(account, day):
        UsageEvent.objects.create(
            account=account,
            type="onboarding_completed",
            occurred_at=dt.datetime(2026, 3, day, 12, tzinfo=dt.UTC),
            idempotency_key=f"onb-{account.pk}-{day}",
        )

    onboarded(solo_a, 1)
    onboarded(network, 11)  # after the period

    personas = conduct_persona_impact_study(D(2026, 3, 1), D(2026, 3, 10)).results["personas"]

    solo = personas["solo_podcaster"]
    # mean of 81.25 and 62.50 = 71.875 → 71.88 (half up)
    assert solo["health"] == {
        "accounts_checked": 2,
        "mean_score": "71.88",
        "healthy": 1,
        "at_risk": 1,
        "critical": 0,
    }
    assert solo["onboarding_completion_rate"] == 0.5
    network_figures = personas["podcast_network"]
    assert network_figures["health"] == {
        "accounts_checked": 0,
        "mean_score": None,
        "healthy": 0,
        "at_risk": 0,
        "critical": 0,
    }
    assert network_figures["onboarding_completion_rate"] == 0.0


# --- revenue cohorts --------------------------------------------------------------------------


@pytest.fixture
def cohort_data():
    p = account_of_persona("solo_podcaster")
    campaign(p, D(2026, 1, 10), D(2026, 2, 8), "300.00")  # 30 days: Jan 22 (220), Feb 8 (80)
    campaign(p, D(2026, 3, 1), D(2026, 3, 31), "31.00")
    q = account_of_persona("podcast_network")
    campaign(q, D(2026, 1, 20), D(2026, 1, 29), "100.00")
    r = account_of_persona("agency")
    campaign(r, D(2026, 2, 15), D(2026, 2, 20), "0.00")  # a cohort with no month-0 revenue
    campaign(r, D(2026, 3, 5), D(2026, 3, 6), "10.00")
    s = account_of_persona("brand")
    campaign(s, D(2025, 12, 1), D(2026, 1, 31), "62.00")  # first month before the period
    t = account_of_persona("brand")
    campaign(t, D(2026, 1, 5), D(2026, 1, 6), "70.00", status=CANCELED)
    campaign(t, D(2026, 3, 3), D(2026, 3, 3), "5.00")


def test_revenue_cohorts(cohort_data):
    results = conduct_revenue_cohort_study(D(2026, 1, 1), D(2026, 3, 31)).results
    assert results == {
        "cohorts": [
            {
                "cohort": "2026-01",
                "accounts": 2,
                "revenue": ["320.00", "80.00", "31.00"],
                "revenue_retention": [1.0, 0.25, float(Fraction(31, 320))],
                "logo_retention": [1.0, 0.5, 0.5],
            },
            {
                "cohort": "2026-02",
                "accounts": 1,
                "revenue": ["0.00", "10.00"],
                "revenue_retention": [None, None],
                "logo_retention": [0.0, 1.0],
            },
            {
                "cohort": "2026-03",
                "accounts": 1,
                "revenue": ["5.00"],
                "revenue_retention": [1.0],
                "logo_retention": [1.0],
            },
        ]
    }


def test_revenue_cohorts_of_a_segment(cohort_data):
    results = conduct_revenue_cohort_study(D(2026, 1, 1), D(2026, 3, 31), "agency").results
    assert [c["cohort"] for c in results["cohorts"]] == ["2026-02"]
    assert (
        conduct_revenue_cohort_study(D(2026, 1, 1), D(2026, 3, 31), "brand").results["cohorts"][0][
            "cohort"
        ]
        == "2026-03"
    )


def test_months_between_covers_whole_calendar_months():
    assert metrics.months_between(D(2025, 11, 15), D(2026, 2, 1)) == [
        (D(2025, 11, 1), D(2025, 11, 30)),
        (D(2025, 12, 1), D(2025, 12, 31)),
        (D(2026, 1, 1), D(2026, 1, 31)),
        (D(2026, 2, 1), D(2026, 2, 28)),
    ]


# --- PostgreSQL's fast path for revenue growth ------------------------------------------------


def _exact_growth(start, end):
    """The per-length path (SQLite's) on the same database, as the reference."""
    revenue = metrics.Revenue()
    for account_id, persona_id, length, current, previous in metrics._revenue_rows(
        start, end, None
    ):
        revenue.add(account_id, persona_id, int(length), int(current), int(previous))
    return revenue


@pytest.fixture
def postgres(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's fast path")


def test_fast_path_settles_a_tie_between_mixed_lengths(postgres, django_assert_num_queries):
    """Two campaigns of different lengths that cover both 10-day periods whole: the account
    is exactly flat; its sums in doubles tie too, so the statement returns its rows per
    length and Python settles it, with the account that could be the median (b)."""
    a = account_of_persona("brand")
    campaign(a, D(2026, 2, 1), D(2026, 3, 31), "590.00")  # 59 days: 100 in each period
    campaign(a, D(2026, 2, 10), D(2026, 3, 20), "70.00")  # 39 days: 70*10/39 in each
    b = account_of_persona("brand")
    campaign(b, D(2026, 2, 19), D(2026, 3, 10), "20.00")  # 20 days: 10 and 10
    campaign(b, D(2026, 3, 1), D(2026, 3, 3), "30.00")  # 3 days, now only: grows by 30
    revenue = metrics.account_revenue(D(2026, 3, 1), D(2026, 3, 10), None)
    # Both have two lengths: a's call is uncertain, b's rate could be the median.
    assert set(revenue.accounts) == {a.id, b.id}
    assert revenue.uncounted == {a.id}
    with django_assert_num_queries(0):  # everything came back in the one statement
        figures = revenue.growth(None)
    assert (figures["accounts_growing"], figures["accounts_flat"]) == (1, 1)
    assert figures["accounts_shrinking"] == 0
    # Rates: a 0, b 30/10 = 3 → median 3/2.
    assert figures["median_account_growth"] == 1.5
    assert figures["revenue"] == "157.95"  # 100 + 700/39 + 10 + 30 = 157.9487…
    assert figures["previous_revenue"] == "127.95"  # 100 + 700/39 + 10


def test_fast_path_equals_the_exact_path_on_random_accounts(postgres):
    import random

    rng = random.Random(20261130)
    slugs = ["agency", "brand", "podcast_network", "solo_podcaster"]
    for _ in range(120):
        account = account_of_persona(rng.choice(slugs))
        for _ in range(rng.randint(1, 4)):
            start = D(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 120))
            end = start + dt.timedelta(days=rng.choice([0, 2, 6, 9, 29, 44, 90]))
            value = rng.choice(["0.01", "3.00", "99.99", "1000.00", "12345.67"])
            campaign(account, start, end, value)
    for start, end in [(D(2026, 3, 1), D(2026, 3, 31)), (D(2026, 2, 15), D(2026, 4, 15))]:
        fast = metrics.account_revenue(start, end, None)
        exact = _exact_growth(start, end)
        # The database placed most accounts itself; Python saw only the few near a median
        # or with an uncertain call.
        assert fast.decided and len(fast.accounts) < len(exact.accounts) // 2
        for persona_id in [None, *metrics.personas(None)]:
            assert fast.growth(persona_id) == exact.growth(persona_id)


# --- revenue growth: ties, exact-only flats, negative rates and segments (both databases) ----


@pytest.fixture
def median_data():
    """1-10 March 2026 against 19-28 February. brand: P1 one 20-day campaign over both
    periods (flat, rate 0), P3 (rate -1/2 over two lengths), P5 (previous only: -1);
    agency: P2 two campaigns of 59 and 39 days over both periods whole (flat only exactly:
    100 + 1000/39 in each, whose doubles tie), P4 (rate 3 over two lengths), P6 (current
    only: growing, no rate)."""
    p1 = account_of_persona("brand")
    campaign(p1, D(2026, 2, 19), D(2026, 3, 10), "400.00")  # 200 and 200
    p3 = account_of_persona("brand")
    campaign(p3, D(2026, 2, 19), D(2026, 2, 28), "100.00")  # 100 before
    campaign(p3, D(2026, 2, 19), D(2026, 3, 10), "200.00")  # 100 and 100
    p5 = account_of_persona("brand")
    campaign(p5, D(2026, 2, 19), D(2026, 2, 28), "50.00")  # 50 before, nothing now
    p2 = account_of_persona("agency")
    campaign(p2, D(2026, 2, 1), D(2026, 3, 31), "590.00")  # 59 days: 100 and 100
    campaign(p2, D(2026, 2, 10), D(2026, 3, 20), "100.00")  # 39 days: 1000/39 and 1000/39
    p4 = account_of_persona("agency")
    campaign(p4, D(2026, 3, 1), D(2026, 3, 3), "30.00")  # 30 now
    campaign(p4, D(2026, 2, 19), D(2026, 3, 10), "20.00")  # 10 and 10
    p6 = account_of_persona("agency")
    campaign(p6, D(2026, 3, 1), D(2026, 3, 10), "70.00")  # 70 now, nothing before


def test_growth_ties_at_the_median_flat_only_exactly_and_negative_rates(median_data):
    results = conduct_revenue_growth_study(D(2026, 3, 1), D(2026, 3, 10)).results

    # Rates: P5 -1, P3 -1/2, P1 0, P2 0, P4 3 → median 0 (a tie of a one-length account and
    # one known only exactly). Now 300 + (210 + 1000/39) = 20890/39, before
    # 450 + (110 + 1000/39) = 22840/39.
    assert {k: v for k, v in results.items() if k != "by_persona"} == {
        "revenue": "535.64",
        "previous_revenue": "585.64",
        "growth_rate": float(Fraction(-1950, 22840)),
        "median_account_growth": 0.0,
        "accounts_growing": 2,
        "accounts_flat": 2,
        "accounts_shrinking": 2,
    }
    assert results["by_persona"]["brand"] == {
        "revenue": "300.00",
        "previous_revenue": "450.00",
        "growth_rate": float(Fraction(-1, 3)),
        "median_account_growth": -0.5,  # of -1, -1/2 and 0
        "accounts_growing": 0,
        "accounts_flat": 1,
        "accounts_shrinking": 2,
    }
    assert results["by_persona"]["agency"] == {
        "revenue": "235.64",  # 9190/39
        "previous_revenue": "135.64",  # 5290/39
        "growth_rate": float(Fraction(3900, 5290)),
        "median_account_growth": 1.5,  # (0 + 3) / 2: P6 has no rate
        "accounts_growing": 2,
        "accounts_flat": 1,
        "accounts_shrinking": 0,
    }


def test_growth_of_a_segment_counts_only_its_accounts(median_data):
    results = conduct_revenue_growth_study(D(2026, 3, 1), D(2026, 3, 10), "agency").results

    agency = {
        "revenue": "235.64",
        "previous_revenue": "135.64",
        "growth_rate": float(Fraction(3900, 5290)),
        "median_account_growth": 1.5,
        "accounts_growing": 2,
        "accounts_flat": 1,
        "accounts_shrinking": 0,
    }
    assert results == {**agency, "by_persona": {"agency": agency}}


def test_growth_median_of_an_even_count_of_mixed_lengths(median_data):
    """Without P1 the rates are -1, -1/2, 0 (P2, known only exactly) and 3: the median is the
    mean of -1/2 and 0; brand keeps -1 and -1/2."""
    Campaign.objects.filter(deal_value="400.00").delete()
    results = conduct_revenue_growth_study(D(2026, 3, 1), D(2026, 3, 10)).results
    assert results["median_account_growth"] == -0.25
    assert results["accounts_flat"] == 1
    assert results["by_persona"]["brand"]["median_account_growth"] == -0.75
    assert results["by_persona"]["brand"]["revenue"] == "100.00"


def test_fast_path_returns_only_the_accounts_it_could_not_place(postgres, median_data):
    revenue = metrics.account_revenue(D(2026, 3, 1), D(2026, 3, 10), None)
    # Rows per length come back for P2 (uncertain call; everyone's and agency's median
    # candidate), P3 (brand's median, -1/2, over two lengths) and P4 (agency's upper middle,
    # 3, over two lengths); P1's exact rate 0 comes back reduced, as everyone's candidate
    # only; P5 and P6 are only counted by the database.
    by_value = {str(c.deal_value): c.account_id for c in Campaign.objects.all()}
    p2, p3, p4 = by_value["590.00"], by_value["200.00"], by_value["30.00"]
    assert set(revenue.accounts) == {p2, p3, p4}
    assert revenue.uncounted == {p2}
    assert revenue.median_candidates == {p2: (True, True), p3: (False, True), p4: (False, True)}
    brand = metrics.personas(None)
    brand_id = next(pid for pid, slug in brand.items() if slug == "brand")
    assert revenue.candidate_rates == [(brand_id, 0, 1, 1, True, False)]


def test_growth_stays_exact_past_two_to_the_53(db):
    """A deal at the largest value a campaign holds over two 99-day periods: each period's
    cents x days (99,999,999,999,999 x 99) passes 2^53, where doubles no longer hold every
    integer; the totals and the flat call still come out exact."""
    big = account_of_persona("brand")
    campaign(big, D(2026, 1, 22), D(2026, 8, 7), "999999999999.99")  # 198 days, 99 in each
    small = account_of_persona("agency")
    campaign(small, D(2026, 5, 1), D(2026, 5, 10), "1.00")  # 1.00 now

    results = conduct_revenue_growth_study(D(2026, 5, 1), D(2026, 8, 7)).results

    # 99,999,999,999,999 x 99 / 198 = 49,999,999,999,999.5 cents in each period: half a
    # cent, rounded up (the double nearest 9,899,999,999,999,901 would give …99.49 → .99).
    brand = results["by_persona"]["brand"]
    assert (brand["revenue"], brand["previous_revenue"]) == ("500000000000.00", "500000000000.00")
    assert (brand["growth_rate"], brand["median_account_growth"]) == (0.0, 0.0)
    assert (brand["accounts_flat"], brand["accounts_growing"]) == (1, 0)
    assert results["revenue"] == "500000000001.00"  # 50,000,000,000,099.5 cents
    assert results["previous_revenue"] == "500000000000.00"
    assert results["growth_rate"] == float(Fraction(100, Fraction(99999999999999, 2)))
    assert (results["accounts_growing"], results["accounts_flat"]) == (1, 1)


@pytest.fixture
def gone_data():
    """1-10 March 2026: three accounts with revenue only in 19-28 February (rate -1 each) and
    one flat at 20.00 over a 20-day campaign (rate 0)."""
    for value in ("10.00", "20.00", "30.00"):
        campaign(account_of_persona("solo_podcaster"), D(2026, 2, 19), D(2026, 2, 28), value)
    campaign(account_of_persona("solo_podcaster"), D(2026, 2, 19), D(2026, 3, 10), "40.00")


def test_growth_median_of_accounts_that_lost_everything(gone_data):
    results = conduct_revenue_growth_study(D(2026, 3, 1), D(2026, 3, 10)).results
    # Rates -1, -1, -1, 0: the median is the mean of -1 and -1.
    assert {k: v for k, v in results.items() if k != "by_persona"} == {
        "revenue": "20.00",
        "previous_revenue": "80.00",
        "growth_rate": -0.75,
        "median_account_growth": -1.0,
        "accounts_growing": 0,
        "accounts_flat": 1,
        "accounts_shrinking": 3,
    }


def test_fast_path_returns_tied_exact_rates_as_one_row(postgres, gone_data):
    revenue = metrics.account_revenue(D(2026, 3, 1), D(2026, 3, 10), None)
    solo = next(pid for pid, slug in metrics.personas(None).items() if slug == "solo_podcaster")
    assert revenue.accounts == {}  # nothing to settle
    assert revenue.candidate_rates == [(solo, -1, 1, 3, True, True)]
