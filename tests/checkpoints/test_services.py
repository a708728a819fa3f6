from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from checkpoints import services
from checkpoints.models import BacklogItem, Checkpoint, KPIState
from deployments import services as deployments
from deployments.models import RolloutFreeze
from opsplatform.errors import Conflict
from support.models import Ticket, TicketMessage
from tests.checkpoints.conftest import kpi, open_ticket, solo_accounts, tomorrow
from tests.factories import staff_in


def run(name="cp", **kw):
    return services.run_checkpoint(name, 30, as_of=tomorrow(), **kw)


def test_judge_spelled_out():
    assert services.judge(Decimal("1"), ">=", Decimal("1"), Decimal("0")) == "passed"
    assert services.judge(Decimal("0.95"), ">=", Decimal("1"), Decimal("0.05")) == "warning"
    assert services.judge(Decimal("0.94"), ">=", Decimal("1"), Decimal("0.05")) == "failed"
    assert services.judge(Decimal("3"), "<=", Decimal("2"), Decimal("1")) == "warning"
    assert services.judge(Decimal("3.01"), "<=", Decimal("2"), Decimal("1")) == "failed"
    assert services.judge(None, "<=", Decimal("2"), Decimal("1")) == "no_data"


def test_priority_from_severity_and_gap():
    assert services.priority_of("high", Decimal("0.1"), Decimal("1")) == "p2"
    assert services.priority_of("high", Decimal("0.25"), Decimal("1")) == "p1"
    assert services.priority_of("low", Decimal("0.01"), Decimal("1")) == "p4"
    assert services.priority_of("critical", Decimal("5"), Decimal("1")) == "p1"
    assert services.priority_of("medium", Decimal("0.3"), Decimal("0")) == "p2"


@pytest.mark.django_db(transaction=True)
def test_failing_kpi_opens_one_ticket_across_three_runs_and_resolves_when_it_passes():
    definition = kpi(severity="critical")
    (account,) = solo_accounts(1)
    open_ticket(account)  # 1 ticket per account > 0.5

    first = run("march")
    second = run("april")
    third = run("may")

    assert [c.status for c in (first, second, third)] == ["failed", "failed", "failed"]
    escalated = Ticket.objects.filter(tags__contains="checkpoint")
    assert escalated.count() == 1
    ticket = escalated.get()
    assert ticket.channel == "api"
    assert ticket.escalation_level == 4
    assert set(ticket.tags.split(",")) >= {"checkpoint", "tickets-solo"}
    assert [e["ticket"] for e in (first.escalations + second.escalations + third.escalations)] == [
        ticket.reference
    ] * 3
    assert [e["new"] for e in first.escalations + third.escalations] == [True, False]
    assert first.escalations[0]["level"] == "L4"

    definition.target = Decimal("2")
    definition.save()
    fourth = run("june")

    assert fourth.status == "passed"
    ticket.refresh_from_db()
    assert ticket.status == "resolved"
    note = ticket.messages.filter(internal=False).order_by("-created_at", "-id").first()
    assert "meets its target again" in note.body
    assert note.author_kind == TicketMessage.Author.SYSTEM
    assert KPIState.objects.get(kpi=definition).ticket_id is None


@pytest.mark.django_db(transaction=True)
def test_high_kpi_ticket_is_l3_and_a_failing_again_kpi_opens_a_new_ticket_after_resolution():
    definition = kpi(severity="high")
    (account,) = solo_accounts(1)
    open_ticket(account)
    run("one")
    definition.target = Decimal("5")
    definition.save()
    run("two")
    definition.target = Decimal("0.5")
    definition.save()
    third = run("three")

    tickets = list(Ticket.objects.filter(tags__contains="checkpoint").order_by("id"))
    assert [t.status for t in tickets] == ["resolved", "new"]
    assert tickets[1].escalation_level == 3
    assert third.escalations[0]["ticket"] == tickets[1].reference


def test_medium_kpi_is_backlogged_not_escalated(db):
    kpi(severity="medium")
    (account,) = solo_accounts(1)
    open_ticket(account)
    checkpoint = run()
    assert checkpoint.escalations == []
    assert len(checkpoint.backlog_items) == 1
    assert Ticket.objects.filter(tags__contains="checkpoint").count() == 0


def test_backlog_items_are_not_duplicated_and_are_scored(db):
    definition = kpi(severity="medium")
    accounts = solo_accounts(2)
    open_ticket(accounts[0])
    open_ticket(accounts[0])  # 2 tickets / 2 accounts = 1.0, target 0.5: gap 0.5 (100%)
    first = run("one")
    second = run("two")

    assert BacklogItem.objects.count() == 1
    item = BacklogItem.objects.get()
    assert item.kpi == definition
    assert item.times_failed == 2
    assert item.first_checkpoint == first
    assert item.last_checkpoint == second
    assert item.gap == Decimal("0.5")
    assert item.priority == "p2"  # medium, one step up for a gap of 100% of the target
    assert item.feature_key == "kpi-tickets-solo"
    assert item.score is not None
    assert "solo_podcaster: 1.0000 (gap 0.5000)" in item.description
    assert [b["id"] for b in first.backlog_items + second.backlog_items] == [item.id, item.id]
    from scoring.models import Feature, FeatureScore

    feature = Feature.objects.get(key="kpi-tickets-solo")
    assert feature.metadata["target_personas"] == ["solo_podcaster"]
    assert FeatureScore.objects.filter(feature=feature).count() == 2


def test_done_backlog_item_reopens_when_the_kpi_fails_again(db):
    kpi(severity="low")
    (account,) = solo_accounts(1)
    open_ticket(account)
    run("one")
    item = BacklogItem.objects.get()
    services.move_backlog_item(item_id=item.id, status="done")
    run("two")
    item.refresh_from_db()
    assert item.status == "open"
    assert BacklogItem.objects.count() == 1


def test_summary_names_what_failed(db):
    kpi(severity="low")
    (account,) = solo_accounts(1)
    open_ticket(account)
    checkpoint = run("Q1 review")
    assert checkpoint.summary.startswith("No: 1 KPI reading missed its target")
    assert "tickets-solo for solo_podcaster (1.0000 vs <= 0.5000)" in checkpoint.summary
    result = checkpoint.persona_results["solo_podcaster"]
    assert result["status"] == "failed"
    assert result["failures"] == ["tickets-solo"]
    assert result["kpis"][0] == {
        "key": "tickets-solo",
        "name": "Tickets per account (solo)",
        "metric": "tickets_per_account",
        "value": "1.0000",
        "target": "0.5000",
        "comparator": "<=",
        "status": "failed",
        "severity": "low",
    }


def test_passing_summary_answers_yes(db):
    kpi(severity="low")
    solo_accounts(1)
    checkpoint = run()
    assert checkpoint.status == "passed"
    assert checkpoint.summary.startswith(
        "Yes: every persona, business function and critical journey meets or exceeds"
    )


def test_no_data_is_neither_pass_nor_fail(db):
    kpi(severity="critical")  # no solo account at all: tickets per account has no data
    checkpoint = run()
    assert checkpoint.persona_results["solo_podcaster"]["kpis"][0]["status"] == "no_data"
    assert checkpoint.persona_results["solo_podcaster"]["status"] == "no_data"
    assert checkpoint.escalations == [] and checkpoint.backlog_items == []
    assert "1 without data" in checkpoint.summary


def _pending_deployment():
    return deployments.create_deployment(
        version="9.9.9", strategy="all_at_once", rollout_percentage=100
    )


def test_freeze_stops_a_rollout_and_a_later_passing_checkpoint_lifts_it(db):
    definition = kpi(reliability=True, severity="low")
    (account,) = solo_accounts(1)
    open_ticket(account)
    failed = run("freeze me")
    freeze = RolloutFreeze.objects.get()
    assert freeze.active and freeze.kpi_key == "tickets-solo"
    assert freeze.checkpoint_name == "freeze me" and freeze.checkpoint_id == failed.id

    deployment = _pending_deployment()
    with pytest.raises(Conflict) as refused:
        deployments.execute_deployment(deployment_id=deployment.id)
    assert refused.value.code == "rollouts_frozen"
    assert "checkpoint 'freeze me' failed KPI tickets-solo" in refused.value.detail

    run("still failing")
    assert RolloutFreeze.objects.filter(lifted_at__isnull=True).count() == 1

    definition.target = Decimal("3")
    definition.save()
    run("recovered")
    freeze.refresh_from_db()
    assert not freeze.active
    assert freeze.lift_reason == "KPI tickets-solo passes at checkpoint recovered."
    started = deployments.execute_deployment(deployment_id=deployment.id)
    assert started.status == "in_progress"


def test_operator_lifts_the_freeze_with_a_reason_kept_in_history(db):
    kpi(reliability=True, severity="low")
    (account,) = solo_accounts(1)
    open_ticket(account)
    run()
    operator = staff_in("operations")
    lifted = services.lift_freeze(reason="Incident understood; shipping the fix", actor=operator)
    assert [f.kpi_key for f in lifted] == ["tickets-solo"]
    freeze = RolloutFreeze.objects.get()
    assert freeze.lifted_by == operator
    assert freeze.history.first().history_change_reason.startswith("lifted: Incident understood")
    deployment = _pending_deployment()
    assert deployments.execute_deployment(deployment_id=deployment.id).status == "in_progress"
    with pytest.raises(Conflict):
        services.lift_freeze(reason="again", actor=operator)


def test_freeze_also_stops_promotion(db):
    deployment = deployments.create_deployment(
        version="1.2.3", strategy="rolling", rollout_percentage=10
    )
    deployments.execute_deployment(deployment_id=deployment.id)
    deployments.freeze_rollouts(
        reason="test", checkpoint_name="cp", checkpoint_id=1, kpi_key="deployments-success"
    )
    with pytest.raises(Conflict) as refused:
        deployments.promote_deployment(deployment_id=deployment.id)
    assert "KPI deployments-success" in refused.value.detail


class _Rollback(Exception):
    pass


def _queries(n_accounts: int) -> int:
    """Queries of one checkpoint over `n_accounts` more agency accounts, rolled back after."""
    from opsplatform.models import Account, Persona
    from tests.factories import UserFactory

    persona = Persona.objects.get(slug="agency")
    users = [UserFactory.build(username=f"bulk{n_accounts}-{i}@x.test") for i in range(n_accounts)]
    from django.contrib.auth import get_user_model

    get_user_model().objects.bulk_create(users)
    users = list(get_user_model().objects.filter(username__startswith=f"bulk{n_accounts}-"))
    Account.objects.bulk_create(
        [Account(user=u, name=u.username, persona=persona, country="US") for u in users]
    )
    try:
        with transaction.atomic():
            with CaptureQueriesContext(connection) as captured:
                services.run_checkpoint(f"size {n_accounts}", 90, as_of=tomorrow())
            raise _Rollback
    except _Rollback:
        pass
    return len(captured.captured_queries)


def test_query_count_is_the_same_at_10_and_1000_accounts(db):
    from checkpoints.models import KPIDefinition

    KPIDefinition.objects.update(active=True)  # every default KPI, every metric
    small = _queries(10)
    large = _queries(1000)
    assert Checkpoint.objects.count() == 0
    assert small == large


def test_days_bounds_and_name_are_validated(db):
    from opsplatform.errors import InvalidInput

    for days in (0, 3651, True):
        with pytest.raises(InvalidInput) as bad:
            services.run_checkpoint("x", days)
        assert bad.value.field == "days"
    with pytest.raises(InvalidInput) as bad:
        services.run_checkpoint("\x00", 5)
    assert bad.value.field == "checkpoint_name"


def test_list_checkpoints_filters_by_status(db):
    kpi(severity="low")
    (account,) = solo_accounts(1)
    passed = run("before")
    open_ticket(account)
    failed = run("after")
    assert list(services.list_checkpoints(status="failed")) == [failed]
    assert list(services.list_checkpoints(status="passed")) == [passed]
    assert list(services.list_checkpoints()) == [failed, passed]


def test_escalation_requester_is_the_configured_team_address(db, settings):
    settings.CHECKPOINTS_REQUESTER_EMAIL = "ops-team@example.test"
    kpi(severity="high")
    (account,) = solo_accounts(1)
    open_ticket(account)
    run()
    ticket = Ticket.objects.get(tags__contains="checkpoint")
    assert ticket.requester_email == "ops-team@example.test"
    assert ticket.account_id is None
