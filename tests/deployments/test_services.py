"""Rollout services: the transition table driven exhaustively, the dry run that writes
nothing, gates that roll back or wait, and history of every percentage change."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.core import mail

from deployments import gates, services
from deployments.bucketing import is_exposed
from deployments.models import Deployment, GateEvaluation, Release
from opsplatform.errors import Conflict, InvalidInput
from tests.deployments.conftest import add_events, make_accounts
from tests.factories import staff_in

pytestmark = pytest.mark.django_db

STATUSES = ["pending", "in_progress", "paused", "completed", "rolled_back", "failed"]
# Spelled out here on purpose, not read from Deployment.STATUS_MACHINE.
ALLOWED = {
    ("pending", "in_progress"),
    ("pending", "failed"),
    ("in_progress", "paused"),
    ("in_progress", "completed"),
    ("in_progress", "rolled_back"),
    ("in_progress", "failed"),
    ("paused", "in_progress"),
    ("paused", "rolled_back"),
    ("paused", "failed"),
    ("completed", "rolled_back"),
}


def _deployment(status: str = "pending", **kwargs) -> Deployment:
    deployment = services.create_deployment(
        version=kwargs.pop("version", "2.0.0"),
        strategy=kwargs.pop("strategy", "all_at_once"),
        rollout_percentage=kwargs.pop("rollout_percentage", 100),
        **kwargs,
    )
    if status != "pending":
        deployment.status = status
        deployment.current_percentage = Decimal(100)
        deployment.save()
    return deployment


def _move(deployment: Deployment, frm: str, to: str, actor):
    i = deployment.id
    if to == "in_progress":
        if frm == "paused":
            return services.resume_deployment(deployment_id=i, actor=actor)
        return services.execute_deployment(deployment_id=i, actor=actor)
    if to == "paused":
        return services.pause_deployment(deployment_id=i, actor=actor)
    if to == "completed":
        return services.promote_deployment(deployment_id=i, actor=actor)
    if to == "rolled_back":
        return services.rollback_deployment(deployment_id=i, reason="bad", actor=actor)
    if to == "failed":
        return services.fail_deployment(deployment_id=i, reason="broken build", actor=actor)
    raise AssertionError(f"no service enters {to}")


def test_the_table_is_exactly_the_spelled_out_pairs():
    assert Deployment.STATUS_MACHINE.pairs() == ALLOWED
    assert not any(to == "pending" for _, to in ALLOWED)  # no service enters pending


@pytest.mark.parametrize("frm", STATUSES)
@pytest.mark.parametrize("to", [s for s in STATUSES if s != "pending"])
def test_every_pair_through_the_services(frm, to):
    actor = staff_in("operations")
    deployment = _deployment(frm)
    history_before = deployment.history.count()
    if (frm, to) in ALLOWED:
        moved = _move(deployment, frm, to, actor)
        assert moved.status == to
        assert Deployment.objects.get(pk=deployment.pk).status == to
        latest = deployment.history.latest()
        assert latest.history_user == actor
        assert latest.status == to
    else:
        with pytest.raises(Conflict) as caught:
            _move(deployment, frm, to, actor)
        assert caught.value.code == "invalid_transition"
        assert Deployment.objects.get(pk=deployment.pk).status == frm
        assert deployment.history.count() == history_before


def test_only_one_live_deployment():
    first = _deployment(version="2.0.0")
    second = _deployment(version="2.1.0")
    services.execute_deployment(deployment_id=first.id)
    with pytest.raises(Conflict) as caught:
        services.execute_deployment(deployment_id=second.id)
    assert caught.value.code == "deployment_in_progress"
    assert Deployment.objects.get(pk=second.pk).status == "pending"


def test_create_builds_the_strategy_plan_and_validates():
    rolling = services.create_deployment(version="3.0.0", strategy="rolling", rollout_percentage=5)
    assert rolling.stages == ["5.00", "25", "50", "100"]
    canary = services.create_deployment(version="3.0.1", strategy="canary", rollout_percentage=1)
    assert canary.stages == ["1.00", "100"]
    given = services.create_deployment(
        version="3.0.2", strategy="rolling", rollout_percentage=10, stages=[10, 40, 100]
    )
    assert given.stages == ["10.00", "40.00", "100.00"]
    count = Deployment.objects.count()
    for bad in (
        {"version": "not-semver", "strategy": "rolling", "rollout_percentage": 5},
        {"version": "3.1.0", "strategy": "rolling", "rollout_percentage": 5, "stages": [5, 3, 100]},
        {"version": "3.1.0", "strategy": "rolling", "rollout_percentage": 5, "stages": [5, 50]},
        {"version": "3.1.0", "strategy": "rolling", "rollout_percentage": 7, "stages": [5, 100]},
        {"version": "3.1.0", "strategy": "rolling", "rollout_percentage": 0},
    ):
        with pytest.raises(InvalidInput):
            services.create_deployment(**bad)
    assert Deployment.objects.count() == count
    assert not Release.objects.filter(version__in=["not-semver", "3.1.0"]).exists()


def _row_counts() -> dict:
    return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


def test_dry_run_returns_the_plan_and_writes_no_row_anywhere(django_assert_max_num_queries):
    accounts = make_accounts(6) + make_accounts(4, "agency")
    deployment = _deployment(strategy="rolling", rollout_percentage=25)
    before = _row_counts()
    with django_assert_max_num_queries(3):
        plan = services.execute_deployment(deployment_id=deployment.id, dry_run=True)
    assert _row_counts() == before
    assert Deployment.objects.get(pk=deployment.pk).status == "pending"
    assert [s["percentage"] for s in plan["stages"]] == [25.0, 50.0, 100.0]
    for stage in plan["stages"]:
        expected = {"solo_podcaster": 0, "agency": 0}
        for a in accounts:
            if is_exposed(deployment.salt, a.id, stage["percentage"]):
                expected[a.persona.slug] += 1
        assert stage["accounts_by_persona"] == expected
    assert plan["stages"][-1]["accounts"] == 10


def test_execute_promote_and_history_say_who(clock):
    actor = staff_in("operations")
    deployment = _deployment(strategy="rolling", rollout_percentage=5)
    services.execute_deployment(deployment_id=deployment.id, actor=actor)
    services.promote_deployment(deployment_id=deployment.id, actor=actor)
    d = Deployment.objects.get(pk=deployment.pk)
    assert (d.status, d.current_percentage, d.stage_index) == ("in_progress", Decimal(25), 1)
    rows = list(d.history.order_by("history_id").values_list("current_percentage", "history_user"))
    assert rows == [(Decimal(0), None), (Decimal(5), actor.id), (Decimal(25), actor.id)]
    assert "promoted by" in d.history.latest().history_change_reason


def _live_with_arms(clock, *, exposed_errors: int, control_errors: int, min_events=10):
    """A live deployment at 50% with accounts in both arms and events in the window."""
    accounts = make_accounts(40)
    deployment = services.create_deployment(
        version="4.0.0",
        strategy="rolling",
        rollout_percentage=50,
        bake_minutes=30,
        min_events_per_arm=min_events,
    )
    services.execute_deployment(deployment_id=deployment.id)
    exposed = [a for a in accounts if is_exposed(deployment.salt, a.id, 50)]
    control = [a for a in accounts if not is_exposed(deployment.salt, a.id, 50)]
    assert exposed and control
    at = clock.now + dt.timedelta(minutes=5)
    add_events(exposed, per_account=10, errors=exposed_errors, at=at, tag="x")
    add_events(control, per_account=10, errors=control_errors, at=at, tag="c")
    return deployment, exposed, control


def test_a_failing_error_gate_rolls_back_notifies_and_records(
    clock, settings, django_capture_on_commit_callbacks
):
    ops = staff_in("operations")
    deployment, exposed, _control = _live_with_arms(clock, exposed_errors=3, control_errors=0)
    clock.advance(minutes=10)  # before the bake time: a failure still rolls back
    with django_capture_on_commit_callbacks(execute=True):
        evaluation = services.evaluate_gates(deployment_id=deployment.id)
    d = Deployment.objects.get(pk=deployment.pk)
    assert d.status == "rolled_back"
    assert d.current_percentage == 0
    assert evaluation.outcome == "rolled_back"
    assert evaluation.failed_gate == "error_rate"
    gate = evaluation.gates[0]
    assert gate["result"] == "fail"
    assert gate["exposed_rate"] == pytest.approx(0.3)
    assert gate["control_rate"] == pytest.approx(0.0)
    assert gate["margin"] == pytest.approx(0.01)
    assert "gate error_rate failed" in d.rollback_reason
    assert d.history.latest().history_change_reason.startswith("rolled back by schedule")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [ops.email]
    assert "4.0.0 rolled back" in mail.outbox[0].subject
    assert Deployment.objects.get(pk=d.pk).rollback_notified_at is not None
    # Safe to run twice: the notice goes once.
    from deployments.tasks import notify_rollback

    assert notify_rollback(d.id) is False
    assert len(mail.outbox) == 1
    # Nobody is exposed after a rollback.
    assert not any(is_exposed(d.salt, a.id, d.current_percentage) for a in exposed)


def test_too_few_events_waits_and_says_so(clock):
    deployment, *_ = _live_with_arms(clock, exposed_errors=5, control_errors=0, min_events=10_000)
    clock.advance(minutes=45)  # baked, but the error gate lacks data
    evaluation = services.evaluate_gates(deployment_id=deployment.id)
    d = Deployment.objects.get(pk=deployment.pk)
    assert (d.status, d.current_percentage) == ("in_progress", Decimal(50))
    assert evaluation.outcome == "waiting"
    assert evaluation.gates[0]["result"] == "waiting"
    assert "Waiting for 10000 usage events" in evaluation.gates[0]["detail"]
    assert mail.outbox == []


def test_passing_gates_wait_for_bake_time_then_advance(clock):
    deployment, *_ = _live_with_arms(clock, exposed_errors=1, control_errors=1)
    clock.advance(minutes=10)
    first = services.evaluate_gates(deployment_id=deployment.id)
    assert first.outcome == "waiting" and not first.baked
    clock.advance(minutes=25)
    second = services.evaluate_gates(deployment_id=deployment.id)
    assert second.outcome == "advanced"
    d = Deployment.objects.get(pk=deployment.pk)
    assert (d.stage_index, d.current_percentage) == (1, Decimal(100))
    assert d.history.latest().history_change_reason.startswith("gates passed by schedule")
    results = {g["gate"]: g["result"] for g in second.gates}
    assert results == {"error_rate": "pass", "tickets": "pass", "health": "no_data"}


def test_health_gate_blocks_once_health_exists(clock):
    deployment, *_ = _live_with_arms(clock, exposed_errors=0, control_errors=0)
    gates.set_health_source(lambda **kw: (60.0, 20, 80.0, 20))
    evaluation = services.evaluate_gates(deployment_id=deployment.id)
    assert evaluation.failed_gate == "health"
    assert Deployment.objects.get(pk=deployment.pk).status == "rolled_back"


def test_ticket_gate_compares_tickets_per_account(clock):
    from support.models import Ticket

    deployment, exposed, _control = _live_with_arms(clock, exposed_errors=0, control_errors=0)
    for a in exposed[:10]:
        Ticket.objects.create(
            account=a,
            subject="broken",
            requester_email=a.user.email,
            first_response_due_at=clock.now,
            resolution_due_at=clock.now,
            created_at=clock.now,  # the field's default is the real clock
        )
    clock.advance(minutes=1)
    evaluation = services.evaluate_gates(deployment_id=deployment.id)
    tickets = next(g for g in evaluation.gates if g["gate"] == "tickets")
    assert tickets["result"] == "fail"
    assert tickets["exposed_rate"] == pytest.approx(10 / len(exposed))
    assert tickets["control_rate"] == 0.0
    assert Deployment.objects.get(pk=deployment.pk).status == "rolled_back"


def test_the_schedule_evaluates_only_the_live_deployment(clock):
    deployment, *_ = _live_with_arms(clock, exposed_errors=0, control_errors=0)
    from deployments.tasks import evaluate_gates

    assert evaluate_gates() == [deployment.id]
    services.pause_deployment(deployment_id=deployment.id)
    assert evaluate_gates() == []
    assert GateEvaluation.objects.filter(deployment=deployment).count() == 1


def test_a_rollout_freeze_holds_passing_gates_and_lifting_lets_them_advance(clock):
    deployment, *_ = _live_with_arms(clock, exposed_errors=1, control_errors=1)
    services.freeze_rollouts(
        reason="Reliability KPI failed",
        checkpoint_name="November",
        checkpoint_id=7,
        kpi_key="deployments-success",
    )
    clock.advance(minutes=35)  # baked, gates pass
    held = services.evaluate_gates(deployment_id=deployment.id)
    assert held.outcome == "held"
    assert Deployment.objects.get(pk=deployment.pk).current_percentage == Decimal(50)
    with pytest.raises(Conflict) as refused:
        services.promote_deployment(deployment_id=deployment.id)
    assert refused.value.code == "rollouts_frozen"
    assert "checkpoint 'November' failed KPI deployments-success" in refused.value.detail
    services.lift_rollout_freeze(reason="Fixed", actor=staff_in("operations"))
    advanced = services.evaluate_gates(deployment_id=deployment.id)
    assert advanced.outcome == "advanced"
    assert Deployment.objects.get(pk=deployment.pk).current_percentage == Decimal(100)


def test_freeze_is_one_per_kpi_and_lifting_nothing_is_a_conflict():
    first, created = services.freeze_rollouts(
        reason="r", checkpoint_name="a", checkpoint_id=1, kpi_key="k"
    )
    again, created_again = services.freeze_rollouts(
        reason="r", checkpoint_name="b", checkpoint_id=2, kpi_key="k"
    )
    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert again.checkpoint_name == "b"
    services.lift_rollout_freeze(reason="done")
    with pytest.raises(Conflict) as nothing:
        services.lift_rollout_freeze(reason="again")
    assert nothing.value.code == "not_frozen"
    with pytest.raises(InvalidInput):
        services.freeze_rollouts(reason="\x00", kpi_key="k")
