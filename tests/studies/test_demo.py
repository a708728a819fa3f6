"""seed_demo leaves a year of monthly studies, computed from the demo data."""

import datetime as dt

import pytest

from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from studies import demo
from studies.models import Study

pytestmark = pytest.mark.django_db


def test_demo_leaves_a_year_of_monthly_studies():
    ctx = DemoContext(seed=7, accounts_wanted=30, as_of=dt.date(2025, 6, 2), write=lambda *a: None)
    seed_core(ctx)
    demo.seed_demo(ctx)

    studies = Study.objects.all()
    assert ctx.counts["studies"] == studies.count() == 12 * 4 + 1
    assert set(studies.values_list("status", flat=True)) == {"completed"}
    renewal = studies.filter(study_type="renewal_rate").order_by("period_start")
    assert [(s.period_start, s.period_end) for s in renewal[:2]] == [
        (dt.date(2024, 6, 1), dt.date(2024, 6, 30)),
        (dt.date(2024, 7, 1), dt.date(2024, 7, 31)),
    ]
    assert renewal.last().period_end == dt.date(2025, 5, 31)
    growth = studies.filter(study_type="revenue_growth").order_by("period_start")
    assert all(s.results["revenue"] != "0.00" for s in growth)
    cohorts = studies.get(study_type="revenue_cohorts")
    assert (cohorts.period_start, cohorts.period_end) == (
        dt.date(2024, 6, 1),
        dt.date(2025, 5, 31),
    )
    assert cohorts.results["cohorts"]
