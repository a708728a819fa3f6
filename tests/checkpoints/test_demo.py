import datetime as dt
from decimal import Decimal

import pytest
from django_q.models import Schedule

from checkpoints.models import BacklogItem, Checkpoint, KPIDefinition
from opsplatform.demo import DemoContext
from opsplatform.registry import app_modules
from support.models import Ticket


@pytest.mark.django_db(transaction=True)
def test_demo_runs_monthly_checkpoints_one_failed_with_tickets_and_backlog():
    KPIDefinition.objects.update(active=True)
    ctx = DemoContext(seed=7, accounts_wanted=12, as_of=dt.date(2026, 6, 2), write=lambda *a: None)
    for module in app_modules("demo"):  # every app's demo, checkpoints' last
        module.seed_demo(ctx)
    names = list(Checkpoint.objects.order_by("created_at").values_list("name", flat=True))
    assert names == ["monthly 2026-03", "monthly 2026-04", "monthly 2026-05"]
    failed = Checkpoint.objects.filter(status="failed").first()
    assert failed is not None
    assert failed.backlog_items
    assert BacklogItem.objects.exists()
    for c in Checkpoint.objects.order_by("created_at"):
        print(c.name, c.status, c.summary, [e["kpi"] for e in c.escalations])
    assert failed.escalations
    assert Ticket.objects.filter(tags__contains="checkpoint").exists()


def test_monthly_schedule_is_declared():
    from checkpoints.schedules import SCHEDULES

    (spec,) = SCHEDULES
    assert spec.func == "checkpoints.tasks.monthly_checkpoint"
    assert spec.schedule_type == Schedule.CRON and spec.cron == "0 5 1 * *"


def test_monthly_task_runs_once_per_month(db, monkeypatch):
    from django.utils import timezone

    from checkpoints import tasks

    KPIDefinition.objects.update(active=False)
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 12, 1, 5, tzinfo=dt.UTC))
    first = tasks.monthly_checkpoint()
    again = tasks.monthly_checkpoint()
    assert first == again
    checkpoint = Checkpoint.objects.get()
    assert checkpoint.name == "monthly 2026-11"
    assert checkpoint.triggered_by == "schedule:checkpoints.monthly"


def test_default_kpis_are_loaded_with_history(db):
    assert KPIDefinition.objects.count() == 25
    seeded = KPIDefinition.objects.get(key="deployments-success")
    assert (seeded.comparator, seeded.target, seeded.severity, seeded.reliability) == (
        ">=",
        Decimal("0.9000"),
        "critical",
        True,
    )
    assert seeded.history.get().history_type == "+"
