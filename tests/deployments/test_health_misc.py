"""Account health around the edges: the rollout gates read it, the management command, the
demo's 90 days of checks, the ticket task run twice, the daily schedule, account erasure."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deployments import gates, privacy, schedules
from deployments.bucketing import is_exposed
from deployments.health import proactive, selectors, services
from deployments.health.models import AccountHealth, AccountHealthCheck, Scorecard
from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from support.models import Ticket
from tests.deployments.health_helpers import event
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def test_the_health_gate_compares_exposed_and_other_accounts(clock):
    accounts = [AccountFactory() for _ in range(8)]
    salt, pct = "gate-salt", Decimal(50)
    exposed = [a for a in accounts if is_exposed(salt, a.id, pct)]
    others = [a for a in accounts if not is_exposed(salt, a.id, pct)]
    assert exposed and others
    for a in others:  # the others log in a lot: 86.67 (see test_health_services)
        for i in range(12):
            event(a, "login", clock.now - dt.timedelta(hours=i + 1), f"{a.id}-{i}")
    start = clock.now - dt.timedelta(minutes=5)
    services.check_all_accounts()  # the exposed score 68.89
    mean_exposed, n_exposed, mean_others, n_others = selectors.arm_health(
        salt=salt, percentage=pct, start=start, end=clock.now + dt.timedelta(minutes=1)
    )
    assert (n_exposed, n_others) == (len(exposed), len(others))
    assert mean_exposed == pytest.approx(68.89)
    assert mean_others == pytest.approx(86.67)
    result = gates.health_gate(
        (mean_exposed, n_exposed, mean_others, n_others), margin=Decimal("5")
    )
    assert result.result == gates.FAIL  # 17.78 points lower, 5 allowed
    # Nobody checked during the window (half-open: the end is out): no data, not blocking.
    assert selectors.arm_health(salt=salt, percentage=pct, start=start, end=clock.now) is None


def test_the_app_registers_health_as_the_gates_source():
    from django.apps import apps

    apps.get_app_config("deployments").ready()
    assert gates.health_source() is selectors.arm_health


def test_the_command_checks_all_and_prints_counts_and_rate(clock, capsys):
    AccountFactory()
    AccountFactory()
    call_command("check_account_health", "--all", "--days", "14")
    out = capsys.readouterr().out
    assert "Checked 2 accounts" in out
    assert "  at_risk: 2" in out
    assert "accounts per second:" in out
    assert AccountHealthCheck.objects.filter(days=14).count() == 2


def test_the_command_checks_one_account(clock, capsys):
    account = AccountFactory()
    call_command("check_account_health", "--account", str(account.id))
    out = capsys.readouterr().out
    assert f"Account {account.id}: at_risk, score 68.89" in out
    assert "Only 0 logins in 30 days" in out
    with pytest.raises(CommandError):
        call_command("check_account_health", "--account", "987654")
    with pytest.raises(CommandError):
        call_command("check_account_health", "--all", "--days", "0")


def test_the_daily_schedule_runs_check_all():
    spec = next(s for s in schedules.SCHEDULES if s.name == "deployments.check_all_accounts")
    assert spec.func == "deployments.health.tasks.check_all_accounts"
    assert spec.schedule_type == "D"


def test_the_ticket_task_run_twice_opens_one_ticket(clock):
    account = AccountFactory()
    Scorecard.objects.filter(persona=account.persona).update(
        healthy_min=Decimal(90), at_risk_min=Decimal(80)
    )
    services.check_account_health(account=account)  # critical; the task is not run here
    first = proactive.open_critical_tickets(account_ids=[account.id])
    second = proactive.open_critical_tickets(account_ids=[account.id])
    assert len(first) == 1 and second == []
    assert Ticket.objects.filter(account=account, tags="health").count() == 1
    # Not critical: nothing to open.
    other = AccountFactory()
    Scorecard.objects.filter(persona=account.persona).update(
        healthy_min=Decimal(80), at_risk_min=Decimal(60)
    )
    services.check_account_health(account=other)
    assert proactive.open_critical_tickets(account_ids=[other.id, 987654]) == []


def test_erasing_an_account_erases_its_health(clock):
    account = AccountFactory()
    other = AccountFactory()
    services.check_all_accounts()
    services.check_all_accounts()
    results = privacy.erase_account(account, actor=None)
    assert [(r.category, r.count) for r in results] == [
        ("account health", 1),
        ("account health checks", 2),
    ]
    assert not AccountHealthCheck.objects.filter(account=account).exists()
    assert AccountHealthCheck.objects.filter(account=other).count() == 2
    assert AccountHealth.objects.filter(account=other).exists()


def test_the_demo_has_90_days_of_checks_with_every_status():
    from deployments import demo

    ctx = DemoContext(seed=7, accounts_wanted=80, as_of=dt.date(2025, 6, 2), write=lambda *a: None)
    seed_core(ctx)
    demo.seed_demo(ctx)
    assert AccountHealthCheck.objects.count() == 80 * 13 == ctx.counts["health_checks"]
    days = sorted(
        {c.date() for c in AccountHealthCheck.objects.values_list("checked_at", flat=True)}
    )
    assert days[0] == dt.date(2025, 6, 2) - dt.timedelta(weeks=12)
    assert days[-1] == dt.date(2025, 6, 2)
    statuses = set(AccountHealth.objects.values_list("status", flat=True))
    assert {"healthy", "at_risk"} <= statuses
    trend = selectors.trend(days=90, now=ctx.now)
    assert len(trend) == 13
