"""Two agents escalating the same ticket at the same moment leave one consistent state: the
row lock serialises them, so no escalation is lost or applied on a stale level."""

import threading

import pytest
from django.db import connection

from opsplatform.errors import Conflict
from support import services
from support.models import Escalation, Ticket
from tests.support.factories import make_agent, make_ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (DATABASE_URL=postgres://…)")


def race(ticket, *moves):
    """Run escalate_ticket for each (agent, level) in its own thread and connection."""
    barrier = threading.Barrier(len(moves))
    outcomes = []

    def work(agent, level):
        try:
            fresh = Ticket.objects.get(pk=ticket.pk)
            barrier.wait(timeout=10)
            services.escalate_ticket(ticket=fresh, level=level, reason=f"to L{level}", actor=agent)
            outcomes.append(("ok", level))
        except Conflict as exc:
            outcomes.append((exc.code, level))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=move) for move in moves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


@pytest.mark.parametrize("attempt", range(3))
def test_two_agents_escalating_to_the_same_level(attempt):
    one, two = make_agent(1), make_agent(2)
    ticket = make_ticket()

    outcomes = race(ticket, (one, 3), (two, 3))

    assert outcomes == [("not_upward", 3), ("ok", 3)]
    ticket.refresh_from_db()
    assert ticket.escalation_level == 3
    escalation = Escalation.objects.get(ticket=ticket)
    assert (escalation.from_level, escalation.to_level) == (1, 3)
    assert ticket.history.filter(history_change_reason__startswith="Escalated").count() == 1


@pytest.mark.parametrize("attempt", range(3))
def test_two_agents_escalating_to_different_levels(attempt):
    one, two = make_agent(1), make_agent(2)
    ticket = make_ticket()

    outcomes = race(ticket, (one, 2), (two, 4))

    ticket.refresh_from_db()
    assert ticket.escalation_level == 4
    chain = list(
        Escalation.objects.filter(ticket=ticket)
        .order_by("id")
        .values_list("from_level", "to_level")
    )
    # Either L2 then L4 (both applied, each from the level the other left) or L4 first and
    # the L2 request refused: never an escalation computed from a stale level.
    assert chain in ([(1, 2), (2, 4)], [(1, 4)])
    assert outcomes == (
        [("ok", 2), ("ok", 4)] if len(chain) == 2 else [("not_upward", 2), ("ok", 4)]
    )
