"""Study services: the status machine, running and failing, queueing, validation, schedules."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import Schedule

from opsplatform.errors import Conflict, InvalidInput
from opsplatform.models import Account, Campaign, CampaignMetric, Persona, Sponsor
from opsplatform.transitions import transition
from studies import metrics, services
from studies.models import Study
from tests.factories import staff_in
from tests.studies.factories import D, account_of_persona

pytestmark = pytest.mark.django_db

STATUSES = ["queued", "running", "completed", "failed"]
ALLOWED = {("queued", "running"), ("running", "completed"), ("running", "failed")}


def _study(status="queued", **kwargs) -> Study:
    study = Study.objects.create(
        study_type="renewal_rate",
        period_start=D(2026, 1, 1),
        period_end=D(2026, 1, 31),
        **kwargs,
    )
    Study.objects.filter(pk=study.pk).update(status=status)  # test setup, not a transition
    return Study.objects.get(pk=study.pk)


def test_the_table_is_the_one_spelled_out_here():
    assert Study.STATUS_MACHINE.pairs() == ALLOWED


@pytest.mark.parametrize("before", STATUSES)
@pytest.mark.parametrize("after", STATUSES)
def test_every_pair_of_the_status_machine(before, after):
    study = _study(before)
    history = study.history.count()
    if (before, after) in ALLOWED:
        moved = transition(study, after)
        assert Study.objects.get(pk=study.pk).status == after
        assert moved.history.count() == history + 1
    else:
        with pytest.raises(Conflict) as caught:
            transition(study, after)
        assert caught.value.code == "invalid_transition"
        assert Study.objects.get(pk=study.pk).status == before
        assert study.history.count() == history


def test_run_study_goes_queued_running_completed_with_stamps_and_history():
    user = staff_in("operations")
    study = services.request_study(
        study_type="renewal_rate",
        period_start=D(2026, 1, 1),
        period_end=D(2026, 1, 31),
        actor=user,
    )
    assert study.status == "completed"
    assert study.started_at is not None and study.computed_at is not None
    assert study.duration_ms is not None and study.duration_ms >= 0
    assert study.definition_version == "2026.11-2"
    assert study.requested_by == user
    statuses = list(study.history.order_by("history_id").values_list("status", flat=True))
    assert statuses == ["queued", "running", "completed"]
    assert set(study.history.values_list("history_user", flat=True)) == {user.pk}


def test_a_failing_computation_is_recorded_not_raised(monkeypatch):
    def boom(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(metrics.COMPUTE, "renewal_rate", boom)
    study = services.conduct_renewal_rate_study(D(2026, 1, 1), D(2026, 1, 31))
    assert study.status == "failed"
    assert study.error == "RuntimeError: disk on fire"
    assert study.results == {}
    assert study.failed_at is not None


def test_running_twice_changes_nothing():
    study = services.conduct_renewal_rate_study(D(2026, 1, 1), D(2026, 1, 31))
    history = study.history.count()
    again = services.run_study(study_id=study.pk)
    assert again.status == "completed"
    assert again.computed_at == study.computed_at
    assert study.history.count() == history


def test_background_queues_and_the_worker_completes_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        study = services.request_study(
            study_type="revenue_growth",
            period_start=D(2026, 1, 1),
            period_end=D(2026, 1, 31),
            background=True,
        )
    assert study.status == "queued"
    assert Study.objects.get(pk=study.pk).results == {}
    assert len(callbacks) == 1
    callbacks[0]()  # django-q2 runs synchronously in the test settings
    assert Study.objects.get(pk=study.pk).status == "completed"


@pytest.mark.parametrize(
    ("start", "end", "segment", "field"),
    [
        (D(2026, 2, 1), D(2026, 1, 31), None, "period_end"),
        (D(2016, 1, 1), D(2026, 1, 1), None, "period_end"),  # ten years and a day
        (D(2016, 2, 29), D(2026, 3, 1), None, "period_end"),
        (D(2026, 1, 1), D(2026, 1, 31), "pirates", "persona_segment"),
    ],
)
def test_bad_periods_and_personas_are_refused_and_nothing_is_written(start, end, segment, field):
    with pytest.raises(InvalidInput) as caught:
        services.conduct_revenue_growth_study(start, end, segment)
    assert caught.value.field == field
    assert Study.objects.count() == 0


def test_exactly_ten_years_is_allowed():
    study = services.conduct_renewal_rate_study(D(2016, 1, 1), D(2025, 12, 31))
    assert study.status == "completed"


def test_schedules_are_upserted_once_by_name():
    first = services.schedule_longitudinal_studies(["renewal_rate", "revenue_growth"], 7)
    again = services.schedule_longitudinal_studies(["renewal_rate", "revenue_growth"], 7)
    assert [s.pk for s in first] == [s.pk for s in again]
    schedules = Schedule.objects.filter(name__startswith="studies.").order_by("name")
    assert list(
        schedules.values_list("name", "func", "schedule_type", "minutes", "kwargs", "repeats")
    ) == [
        (
            "studies.renewal_rate.every_7d",
            "studies.tasks.run_scheduled_study",
            "D",
            None,
            "{'study_type': 'renewal_rate', 'frequency_days': 7}",
            -1,
        ),
        (
            "studies.revenue_growth.every_7d",
            "studies.tasks.run_scheduled_study",
            "D",
            None,
            "{'study_type': 'revenue_growth', 'frequency_days': 7}",
            -1,
        ),
    ]


@pytest.mark.parametrize(
    ("types", "days", "field"),
    [([], 7, "study_types"), (["nope"], 7, "study_types"), (["renewal_rate"], 0, "frequency_days")],
)
def test_bad_schedules_are_refused(types, days, field):
    with pytest.raises(InvalidInput) as caught:
        services.schedule_longitudinal_studies(types, days)
    assert caught.value.field == field
    assert not Schedule.objects.filter(name__startswith="studies.").exists()


def test_a_scheduled_run_covers_the_last_days_up_to_yesterday_once():
    study = services.run_scheduled_study(
        study_type="campaign_efficiency", frequency_days=7, today=D(2026, 3, 15)
    )
    assert (study.period_start, study.period_end) == (D(2026, 3, 8), D(2026, 3, 14))
    assert study.schedule_name == "studies.campaign_efficiency.every_7d"
    again = services.run_scheduled_study(
        study_type="campaign_efficiency", frequency_days=7, today=D(2026, 3, 15)
    )
    assert again.pk == study.pk
    assert Study.objects.count() == 1


def test_a_scheduled_run_waits_until_the_next_period_is_due():
    def tick(day):
        return services.run_scheduled_study(study_type="renewal_rate", frequency_days=7, today=day)

    first = tick(D(2026, 3, 15))
    assert [tick(D(2026, 3, day)) for day in range(16, 22)] == [None] * 6
    assert Study.objects.count() == 1
    second = tick(D(2026, 3, 22))
    assert (second.period_start, second.period_end) == (D(2026, 3, 15), D(2026, 3, 21))
    assert second.pk != first.pk
    # After the worker was down for weeks, the next tick covers the last seven days.
    late = tick(D(2026, 5, 1))
    assert (late.period_start, late.period_end) == (D(2026, 4, 24), D(2026, 4, 30))


def test_sync_schedules_upserts_the_default_monthly_schedules():
    from django.core.management import call_command

    call_command("sync_schedules", stdout=io.StringIO())
    services.schedule_longitudinal_studies(["renewal_rate"], 30)  # the same row, by name
    second = io.StringIO()
    call_command("sync_schedules", stdout=second)
    # The schedules carry kwargs: a second run must not see them as changed.
    assert ", 0 updated," in second.getvalue()
    assert sorted(
        Schedule.objects.filter(name__startswith="studies.").values_list("name", flat=True)
    ) == [
        "studies.campaign_efficiency.every_30d",
        "studies.persona_impact.every_30d",
        "studies.renewal_rate.every_30d",
        "studies.revenue_growth.every_30d",
    ]


def _bulk_campaigns(count: int) -> None:
    """`count` campaigns over the four personas, each with two metric rows in the period and
    a renewal for every third, written in bulk."""
    personas = list(Persona.objects.order_by("slug"))
    accounts = [account_of_persona(p.slug) for p in personas]
    sponsors = [Sponsor.objects.create(account=a, name="Bulk") for a in accounts]
    campaigns = Campaign.objects.bulk_create(
        [
            Campaign(
                account=accounts[i % 4],
                sponsor=sponsors[i % 4],
                name=f"c{i}",
                starts_on=D(2025, 12, 1) + dt.timedelta(days=i % 40),
                ends_on=D(2026, 1, 1) + dt.timedelta(days=i % 60),
                deal_value=Decimal(f"{100 + i % 997}.{i % 100:02d}"),
                status="completed",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    CampaignMetric.objects.bulk_create(
        [
            CampaignMetric(
                campaign=c,
                date=D(2026, 1, day),
                spend=Decimal("1.10"),
                clicks=1,
                impressions=10,
                revenue=Decimal("2.25"),
                conversions=1,
            )
            for c in campaigns
            for day in (3, 17)
        ],
        batch_size=5000,
    )
    Campaign.objects.bulk_create(
        [
            Campaign(
                account_id=c.account_id,
                sponsor_id=c.sponsor_id,
                name=f"r{n}",
                starts_on=c.ends_on + dt.timedelta(days=1),
                ends_on=c.ends_on + dt.timedelta(days=30),
                deal_value=Decimal("10.00"),
                renewed_from=c,
            )
            for n, c in enumerate(campaigns[::3])
        ],
        batch_size=2000,
    )


def _queries(study_type: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        study = services.request_study(
            study_type=study_type, period_start=D(2026, 1, 1), period_end=D(2026, 1, 31)
        )
    assert study.status == "completed", study.error
    return len(ctx.captured_queries)


def test_the_same_number_of_queries_at_10_and_10000_campaigns():
    _bulk_campaigns(10)
    small = {t: _queries(t) for t in Study.Type.values}
    Campaign.objects.all().delete()
    Account.objects.all().delete()
    _bulk_campaigns(10_000)
    large = {t: _queries(t) for t in Study.Type.values}
    assert small == large
    assert max(large.values()) <= 32  # the study rows, history and savepoints included
