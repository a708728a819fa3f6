"""Each metric on hand-built data, with the expected values worked out by hand."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

from checkpoints import metrics
from checkpoints.services import Run
from compliance.models import Monitor
from deployments.health.models import AccountHealthCheck
from deployments.models import Deployment, Release
from opsplatform.models import Account, Persona, UsageEvent
from support.models import Ticket
from tests.checkpoints.conftest import open_ticket, solo_accounts
from tests.factories import AccountFactory, CampaignFactory, CampaignMetricFactory
from userflows.models import ExportRequest

END = dt.date(2026, 10, 31)
W = metrics.Window(days=31, end=END)  # October 2026
IN = dt.datetime(2026, 10, 10, 12, tzinfo=dt.UTC)


def _run():
    return Run(list(Persona.objects.order_by("slug").values_list("slug", flat=True)), is_now=True)


def test_nearest_rank_percentiles():
    values = [Fraction(v) for v in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    assert metrics.nearest_rank(values, 50) == 5  # rank ceil(5.0) = 5
    assert metrics.nearest_rank(values, 95) == 10  # rank ceil(9.5) = 10
    assert metrics.nearest_rank([Fraction(7)], 95) == 7
    assert metrics.nearest_rank([], 50) is None


def test_journey_stats_exact():
    # 20 finished durations 1..20 hours out of 25 started, 18 on time.
    stats = metrics.journey_stats([Fraction(h) for h in range(20, 0, -1)], 25, 18)
    assert stats.p50_hours == Decimal("10.00")  # rank 10
    assert stats.p95_hours == Decimal("19.00")  # rank ceil(19.0) = 19
    assert stats.success_rate == Decimal("0.7200")


def test_window_is_whole_utc_days_before_as_of():
    window = metrics.window_ending(dt.datetime(2026, 11, 1, 5, tzinfo=dt.UTC), 31)
    assert (window.start, window.end) == (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    assert window.since == dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    assert window.until == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_ratio_rounds_half_up_exactly():
    assert metrics.ratio(1, 3) == Decimal("0.3333")
    assert metrics.ratio(2, 3) == Decimal("0.6667")
    assert metrics.ratio(1, 20000) == Decimal("0.0001")  # 0.00005 rounds up
    assert metrics.ratio(-1, 20000) == Decimal("-0.0001")
    assert metrics.ratio(1, 0) is None


def test_health_mean_share_critical_and_onboarding(db):
    persona = Persona.objects.get(slug="brand")
    accounts = [AccountFactory(persona=persona, created_at=IN) for _ in range(3)]
    for account, score, status in zip(
        accounts, ("80.00", "45.50", "20.25"), ("healthy", "at_risk", "critical"), strict=True
    ):
        AccountHealthCheck.objects.create(
            account=account,
            persona=persona,
            checked_at=IN,
            days=30,
            score=Decimal(score),
            status=status,
            triggered_by="test",
        )
    # A later check after the window does not count.
    AccountHealthCheck.objects.create(
        account=accounts[2],
        persona=persona,
        checked_at=IN + dt.timedelta(days=40),
        days=30,
        score=Decimal("99"),
        status="healthy",
        triggered_by="test",
    )
    UsageEvent.objects.create(
        account=accounts[0], type="onboarding_completed", occurred_at=IN, idempotency_key="o1"
    )
    run = _run()
    assert metrics.health_mean_score(run, W)["brand"] == Decimal("48.58")  # 145.75 / 3
    assert metrics.health_share_critical(run, W)["brand"] == Decimal("0.3333")
    assert metrics.onboarding_completion(run, W)["brand"] == Decimal("0.3333")
    assert metrics.onboarding_completion_all(run, W)["onboarding"] == Decimal("0.3333")
    assert metrics.health_mean_score(run, W)["agency"] is None


def test_renewal_rate_and_pooled_roas(db):
    persona = Persona.objects.get(slug="agency")
    account = AccountFactory(persona=persona)
    ending = [
        CampaignFactory(
            account=account, starts_on=dt.date(2026, 9, 1), ends_on=dt.date(2026, 10, 15)
        )
        for _ in range(4)
    ]
    CampaignFactory(
        account=account,
        sponsor=ending[0].sponsor,
        starts_on=dt.date(2026, 10, 16),
        ends_on=dt.date(2026, 12, 1),
        renewed_from=ending[0],
    )
    CampaignMetricFactory(
        campaign=ending[1], date=dt.date(2026, 10, 2), revenue=Decimal("300"), spend=Decimal("100")
    )
    CampaignMetricFactory(
        campaign=ending[2], date=dt.date(2026, 10, 3), revenue=Decimal("50"), spend=Decimal("100")
    )
    run = _run()
    assert metrics.renewal_rate(run, W)["agency"] == Decimal("0.2500")  # 1 of 4
    assert metrics.pooled_roas(run, W)["agency"] == Decimal("1.7500")  # 350 / 200
    assert metrics.pooled_roas(run, W)["brand"] is None


def test_tickets_per_account(db):
    accounts = solo_accounts(4)
    Account.objects.update(created_at=IN)  # all four existed in October
    for account in accounts[:3]:
        ticket = open_ticket(account)
        Ticket.objects.filter(pk=ticket.pk).update(created_at=IN)
    assert metrics.tickets_per_account(_run(), W)["solo_podcaster"] == Decimal("0.7500")


def _ticket(account, *, response_hours, due_hours):
    ticket = open_ticket(account)
    Ticket.objects.filter(pk=ticket.pk).update(
        created_at=IN,
        first_response_at=None
        if response_hours is None
        else IN + dt.timedelta(hours=response_hours),
        first_response_due_at=IN + dt.timedelta(hours=due_hours),
    )


def test_support_median_and_sla_and_the_ticket_journey(db):
    (account,) = solo_accounts(1)
    for hours in (1, 2, 3, 10):
        _ticket(account, response_hours=hours, due_hours=4)
    _ticket(account, response_hours=None, due_hours=4)  # due, never answered: a miss
    run = _run()
    assert metrics.support_first_response_median_hours(run, W)["support"] == Decimal("2.00")
    assert metrics.support_sla_attainment(run, W)["support"] == Decimal("0.6000")  # 3 of 5
    journey = metrics.measure_journeys(run, W)["ticket_first_response"]
    assert (journey.count, journey.succeeded) == (5, 3)
    assert journey.p50_hours == Decimal("2.00") and journey.p95_hours == Decimal("10.00")


def test_export_journey_p50_p95_and_success(db):
    (account,) = solo_accounts(1)
    minutes = [5, 10, 15, 20, 30, 45, 60, 90, 120, 600]
    for m in minutes:
        ExportRequest.objects.create(
            account=account,
            format="csv",
            data_types=["campaigns"],
            date_from=END,
            date_to=END,
            status="completed",
            created_at=IN,
            completed_at=IN + dt.timedelta(minutes=m),
        )
    ExportRequest.objects.create(
        account=account,
        format="csv",
        data_types=["campaigns"],
        date_from=END,
        date_to=END,
        status="failed",
        created_at=IN,
    )
    stats = metrics.measure_journeys(_run(), W)["export_ready"]
    assert (stats.count, stats.succeeded) == (11, 10)
    assert stats.success_rate == Decimal("0.9091")
    assert stats.p50_hours == Decimal("0.50")  # rank 5 of 10: 30 minutes
    assert stats.p95_hours == Decimal("10.00")  # rank 10: 600 minutes


def test_signup_journey(db):
    persona = Persona.objects.get(slug="solo_podcaster")
    done = [AccountFactory(persona=persona, created_at=IN) for _ in range(3)]
    AccountFactory(persona=persona, created_at=IN)  # never onboarded
    for account, hours in zip(done, (2, 24, 48), strict=True):
        UsageEvent.objects.create(
            account=account,
            type="onboarding_completed",
            occurred_at=IN + dt.timedelta(hours=hours),
            idempotency_key=f"s{account.id}",
        )
    stats = metrics.measure_journeys(_run(), W)["signup_onboarding"]
    assert (stats.count, stats.succeeded, stats.success_rate) == (4, 3, Decimal("0.7500"))
    assert (stats.p50_hours, stats.p95_hours) == (Decimal("24.00"), Decimal("48.00"))


def test_deployment_success_and_rollbacks(db):
    for i, status in enumerate(["completed", "completed", "completed", "rolled_back"]):
        release = Release.objects.create(version=f"1.0.{i}")
        stamp = {"completed": "completed_at", "rolled_back": "rolled_back_at"}[status]
        Deployment.objects.create(
            release=release, strategy="all_at_once", stages=["100"], status=status, **{stamp: IN}
        )
    run = _run()
    assert metrics.deployment_success_rate(run, W)["deployments"] == Decimal("0.7500")
    assert metrics.deployment_rollbacks(run, W)["deployments"] == Decimal("1")


def test_failing_monitors(db):
    Monitor.objects.update(passed=True)
    first = Monitor.objects.order_by("key").first()
    first.passed = False
    first.save()
    assert metrics.compliance_failing_monitors(_run(), W)["compliance"] == Decimal("1")


def _subscription(account, *, created, canceled=None, reason=""):
    from userflows.models import Plan, Subscription

    return Subscription.objects.create(
        account=account,
        plan=Plan.objects.get(code="starter"),
        status="canceled" if canceled else "active",
        current_period_start=created,
        current_period_end=created + dt.timedelta(days=30),
        canceled_at=canceled,
        cancellation_reason=reason,
        created_at=created,
    )


def test_billing_payment_failures_and_involuntary_churn(db):
    from userflows.models import Invoice

    accounts = solo_accounts(5)
    before = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
    subs = [_subscription(a, created=before) for a in accounts[:4]]
    # Canceled for failed payment in October: 1 of the 4 live at the window's start.
    subs[0].status, subs[0].canceled_at, subs[0].cancellation_reason = (
        "canceled",
        IN,
        "payment_failed",
    )
    subs[0].save()
    # Canceled in October by choice, and one canceled before the window: neither counts.
    subs[1].status, subs[1].canceled_at, subs[1].cancellation_reason = (
        "canceled",
        IN,
        "too_expensive",
    )
    subs[1].save()
    _subscription(accounts[4], created=before, canceled=dt.datetime(2026, 9, 5, tzinfo=dt.UTC))
    kinds = [
        ("paid", 1, ""),  # clean
        ("paid", 2, ""),  # paid after a retry: failed once
        ("open", 1, "card_declined"),  # failure on record
        ("uncollectible", 3, "card_declined"),
        ("void", 1, "card_declined"),  # void: not counted at all
    ]
    for i, (status, attempts, failure) in enumerate(kinds):
        Invoice.objects.create(
            account=accounts[i],
            number=f"INV-{i}",
            description="Starter",
            amount_due_cents=1900,
            period_start=IN,
            period_end=IN + dt.timedelta(days=30),
            status=status,
            issued_at=IN,
            due_at=IN,
            attempt_count=attempts,
            last_failure=failure,
        )
    run = _run()
    assert metrics.billing_payment_failure_rate(run, W)["billing"] == Decimal("0.7500")  # 3/4
    assert metrics.billing_involuntary_churn(run, W)["billing"] == Decimal("0.2500")  # 1/4


def test_revenue_growth_per_persona_and_total(db):
    persona = Persona.objects.get(slug="podcast_network")
    account = AccountFactory(persona=persona)
    # Previous window (Aug 31 - Sep 30): 2,000 recognised; this window (October): 3,000.
    CampaignFactory(
        account=account,
        starts_on=dt.date(2026, 9, 1),
        ends_on=dt.date(2026, 9, 30),
        deal_value=Decimal("2000.00"),
        status="completed",
    )
    CampaignFactory(
        account=account,
        starts_on=dt.date(2026, 10, 1),
        ends_on=dt.date(2026, 10, 30),
        deal_value=Decimal("3000.00"),
        status="completed",
    )
    run = _run()
    assert metrics.revenue_growth(run, W)["podcast_network"] == Decimal("0.5000")
    assert metrics.revenue_growth(run, W)["agency"] is None  # no revenue before: no data
    assert metrics.revenue_growth_total(run, W)["revenue"] == Decimal("0.5000")


def test_campaign_first_metrics_journey(db):
    from opsplatform.models import Campaign

    (account,) = solo_accounts(1)
    first = CampaignFactory(account=account)
    second = CampaignFactory(account=account)
    CampaignFactory(account=account)  # no metrics yet: started, not finished
    Campaign.objects.update(created_at=IN)  # Oct 10 12:00
    # Metrics dated Oct 10 exist at Oct 11 00:00 (12 h); dated Oct 12: at Oct 13 00:00 (60 h).
    CampaignMetricFactory(campaign=first, date=dt.date(2026, 10, 10))
    CampaignMetricFactory(campaign=second, date=dt.date(2026, 10, 12))
    CampaignMetricFactory(campaign=second, date=dt.date(2026, 10, 20))
    stats = metrics.measure_journeys(_run(), W)["campaign_first_metrics"]
    assert (stats.count, stats.succeeded, stats.success_rate) == (3, 2, Decimal("0.6667"))
    assert (stats.p50_hours, stats.p95_hours) == (Decimal("12.00"), Decimal("60.00"))


def test_deletion_journey_on_its_date(db):
    from userflows.models import DeletionRequest

    accounts = solo_accounts(4)
    requested = dt.datetime(2026, 9, 12, 12, tzinfo=dt.UTC)
    due = requested + dt.timedelta(days=29)  # Oct 11 12:00
    cases = [
        ("completed", due + dt.timedelta(hours=2)),  # on its date: 29 days 2 h
        ("completed", due + dt.timedelta(days=3)),  # late: 32 days
        ("failed", None),  # never executed
        ("canceled", None),  # canceled: not a journey
    ]
    for account, (status, done) in zip(accounts, cases, strict=True):
        DeletionRequest.objects.create(
            account=account,
            status=status,
            requested_at=requested,
            scheduled_for=due,
            completed_at=done,
        )
    stats = metrics.measure_journeys(_run(), W)["deletion_executed"]
    assert (stats.count, stats.succeeded, stats.success_rate) == (3, 1, Decimal("0.3333"))
    assert stats.p50_hours == Decimal("698.00")  # 29 d 2 h, rank 1 of 2
    assert stats.p95_hours == Decimal("768.00")  # 32 d, rank 2
