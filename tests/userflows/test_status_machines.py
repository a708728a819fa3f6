"""The three userflows status machines, spelled out here (not read from the models) and every
pair driven through `opsplatform.transitions.transition`: an allowed move re-reads the row
under its lock, saves the new status (and its timestamp) and writes one history row with the
actor and reason; a forbidden move is a 409 `invalid_transition` that changes nothing."""

import itertools

import pytest
from django.db.models import QuerySet
from django.forms.models import model_to_dict

from opsplatform.errors import Conflict
from opsplatform.transitions import transition
from tests.factories import staff_in
from tests.userflows.factories import (
    DeletionRequestFactory,
    ExportRequestFactory,
    SubscriptionFactory,
)
from userflows.models import DeletionRequest, ExportRequest, Subscription

pytestmark = pytest.mark.django_db

MACHINES = {
    "subscription": {
        "model": Subscription,
        "factory": SubscriptionFactory,
        "statuses": ["trialing", "active", "past_due", "canceled"],
        "allowed": {
            ("trialing", "active"),
            ("trialing", "past_due"),
            ("trialing", "canceled"),
            ("active", "past_due"),
            ("active", "canceled"),
            ("past_due", "active"),
            ("past_due", "canceled"),
            ("canceled", "active"),
        },
        "stamps": {"canceled": "canceled_at"},
    },
    "export": {
        "model": ExportRequest,
        "factory": ExportRequestFactory,
        "statuses": ["pending", "processing", "completed", "failed", "expired", "canceled"],
        "allowed": {
            ("pending", "processing"),
            ("pending", "failed"),
            ("pending", "canceled"),
            ("processing", "completed"),
            ("processing", "failed"),
            ("processing", "canceled"),
            ("completed", "expired"),
        },
        "stamps": {"processing": "started_at", "completed": "completed_at"},
    },
    "deletion": {
        "model": DeletionRequest,
        "factory": DeletionRequestFactory,
        "statuses": ["scheduled", "canceled", "completed", "failed"],
        "allowed": {
            ("scheduled", "canceled"),
            ("scheduled", "completed"),
            ("scheduled", "failed"),
            ("failed", "canceled"),
            ("failed", "completed"),
            ("failed", "failed"),  # a failed deletion is retried until it completes
        },
        "stamps": {"canceled": "canceled_at", "completed": "completed_at", "failed": "failed_at"},
    },
}
ALL = [
    (kind, current, new)
    for kind, machine in MACHINES.items()
    for current, new in itertools.product(machine["statuses"], repeat=2)
]
ALLOWED = [case for case in ALL if case[1:] in MACHINES[case[0]]["allowed"]]
FORBIDDEN = [case for case in ALL if case[1:] not in MACHINES[case[0]]["allowed"]]


@pytest.fixture
def locks(monkeypatch):
    """The models whose rows were read with select_for_update."""
    locked = []
    original = QuerySet.select_for_update

    def spy(self, *args, **kwargs):
        locked.append(self.model)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "select_for_update", spy)
    return locked


def make(kind: str, status: str):
    return MACHINES[kind]["factory"](status=status)


@pytest.mark.parametrize("kind", list(MACHINES))
def test_each_model_declares_the_documented_table(kind):
    machine = MACHINES[kind]
    assert machine["model"].STATUS_MACHINE.pairs() == machine["allowed"]
    assert set(machine["model"].STATUS_MACHINE.table) == set(machine["statuses"])
    assert machine["model"].STATUS_MACHINE.stamps == machine["stamps"]


def test_the_spelled_out_tables_cover_every_pair():
    assert (len(ALL), len(ALLOWED), len(FORBIDDEN)) == (16 + 36 + 16, 21, 47)


@pytest.mark.parametrize(("kind", "current", "new"), ALLOWED)
def test_an_allowed_move_is_saved_under_the_lock_with_a_history_row(kind, current, new, locks):
    obj = make(kind, current)
    actor = staff_in(is_superuser=True)
    before = obj.history.count()

    moved = transition(obj, new, actor=actor, reason="test move")

    assert locks == [type(obj)]
    obj.refresh_from_db()
    assert (moved.status, obj.status) == (new, new)
    assert obj.history.count() == before + 1
    latest = obj.history.first()
    assert (latest.status, latest.history_user, latest.history_change_reason) == (
        new,
        actor,
        "test move",
    )
    stamp = MACHINES[kind]["stamps"].get(new)
    if stamp:
        assert getattr(obj, stamp) is not None


@pytest.mark.parametrize(("kind", "current", "new"), FORBIDDEN)
def test_a_forbidden_move_is_a_409_and_changes_nothing(kind, current, new, locks):
    obj = make(kind, current)
    saved = model_to_dict(type(obj).objects.get(pk=obj.pk))
    before = obj.history.count()

    with pytest.raises(Conflict) as exc:
        transition(obj, new, actor=staff_in(is_superuser=True), reason="test move")

    assert (exc.value.status_code, exc.value.code) == (409, "invalid_transition")
    assert locks == [type(obj)]
    assert model_to_dict(type(obj).objects.get(pk=obj.pk)) == saved
    assert obj.history.count() == before


def test_the_move_is_decided_on_the_row_read_under_the_lock_not_on_a_stale_copy():
    stale = make("export", "pending")
    ExportRequest.objects.filter(pk=stale.pk).update(status="canceled")

    with pytest.raises(Conflict):
        transition(stale, "processing")

    assert ExportRequest.objects.get(pk=stale.pk).status == "canceled"
