"""The agents' queue: it opens on open work sorted by SLA (breached first), its saved views,
the SLA countdown column, bulk actions reporting per ticket, and a fixed query budget."""

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from support import services
from support.models import Priority, Ticket
from tests.support.factories import age_ticket, make_agent, make_ticket, reply

pytestmark = pytest.mark.django_db
Status = Ticket.Status
CHANGELIST = "admin:support_ticket_changelist"


@pytest.fixture
def desk(client, agent):
    client.force_login(agent)
    return client


def shown(client, **params):
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return [t.subject for t in response.context["cl"].result_list]


@pytest.fixture
def board(agent):
    """Tickets in every state; due times (normal priority: first response in 8 h)."""
    other = make_agent(2, email="agent.two@opsplatform.local")
    fresh = make_ticket(subject="fresh normal")  # first response due in 8 h
    urgent = make_ticket(subject="urgent", priority=Priority.URGENT)  # due in 30 min
    breached = age_ticket(make_ticket(subject="breached"), dt.timedelta(hours=9))
    older_breach = age_ticket(make_ticket(subject="breached longer"), dt.timedelta(hours=20))
    mine = make_ticket(subject="mine")
    services.assign_ticket(ticket=mine, assignee=agent, actor=agent)
    theirs = make_ticket(subject="theirs")
    services.assign_ticket(ticket=theirs, assignee=other, actor=other)
    waiting = make_ticket(subject="waiting")
    services.update_ticket_status(ticket=waiting, status=Status.PENDING, actor=agent)
    held = make_ticket(subject="on hold")
    services.update_ticket_status(ticket=held, status=Status.ON_HOLD, actor=agent)
    solved = make_ticket(subject="solved")
    services.update_ticket_status(ticket=solved, status=Status.RESOLVED, actor=agent)
    closed = make_ticket(subject="closed")
    services.update_ticket_status(ticket=closed, status=Status.CLOSED, actor=agent)
    return {
        "fresh": fresh,
        "urgent": urgent,
        "breached": breached,
        "older_breach": older_breach,
        "mine": mine,
        "waiting": waiting,
        "solved": solved,
        "closed": closed,
    }


def test_queue_opens_on_open_work_breached_first_then_nearest_due(desk, board):
    subjects = shown(desk)

    assert set(subjects) == {
        "fresh normal",
        "urgent",
        "breached",
        "breached longer",
        "mine",
        "theirs",
        "waiting",
        "on hold",
    }
    # The longest breach is the most overdue, then the other breach, then the urgent ticket
    # (due in 30 minutes) before the normal ones (due in about 8 hours).
    assert subjects[:3] == ["breached longer", "breached", "urgent"]


def test_each_saved_view_shows_its_tickets(desk, board):
    assert set(shown(desk, view="mine")) == {"mine"}
    assert set(shown(desk, view="unassigned")) == {
        "fresh normal",
        "urgent",
        "breached",
        "breached longer",
        "waiting",
        "on hold",
    }
    assert set(shown(desk, view="breached")) == {"breached", "breached longer"}
    assert set(shown(desk, view="waiting")) == {"waiting"}
    # Closed without being resolved is not "solved".
    assert shown(desk, view="solved") == ["solved"]
    assert len(shown(desk, view="all")) == 10


def test_recently_solved_leaves_out_tickets_solved_over_a_week_ago(desk, board):
    solved = Ticket.objects.get(pk=board["solved"].pk)
    Ticket.objects.filter(pk=solved.pk).update(
        resolved_at=solved.resolved_at - dt.timedelta(days=8)
    )
    assert shown(desk, view="solved") == []


def test_an_unknown_view_falls_back_to_open_work(desk, board):
    assert "solved" not in shown(desk, view="everything")
    assert "fresh normal" in shown(desk, view="everything")


def test_filtering_by_status_alone_searches_every_ticket(desk, board):
    assert shown(desk, status__exact="resolved") == ["solved"]


def test_views_are_links_above_the_list_with_the_current_one_marked(desk, board):
    page = desk.get(reverse(CHANGELIST), {"view": "breached"}).content.decode()
    for label in [
        "My open",
        "Unassigned",
        "Breached",
        "Waiting on customer",
        "Recently solved",
        "All",
    ]:
        assert f">{label}</a>" in page
    assert 'aria-current="page" data-view="breached"' in page


def test_sla_column_counts_down_and_colours_the_state(desk, board):
    page = desk.get(reverse(CHANGELIST)).content.decode()
    assert "support-sla-breached" in page and "⚠ 12h 00m over" in page  # aged 20 h, due 8 h
    assert 'class="support-sla-soon"' in page  # the urgent ticket, due within the hour
    assert "paused, 8h 00m left" in page or "paused, 7h 59m left" in page


def test_queue_columns_are_the_ones_an_agent_needs(desk, board):
    response = desk.get(reverse(CHANGELIST))
    headers = [h["text"] for h in response.context["result_headers"]][1:]  # after the checkbox
    assert [str(h).lower() for h in headers] == [
        "reference",
        "subject",
        "requester",
        "priority",
        "status",
        "level",
        "assignee",
        "sla due",
    ]


def test_bulk_actions_say_what_they_did_per_ticket(desk, board, agent):
    response = desk.post(
        reverse(CHANGELIST) + "?view=all",
        {
            "action": "resolve",
            ACTION_CHECKBOX_NAME: [board["fresh"].pk, board["closed"].pk],
        },
        follow=True,
    )
    text = response.content.decode()
    assert "Resolved: 1 ticket(s)." in text
    assert f"{board['closed'].reference}: A closed ticket cannot become resolved" in text


@pytest.mark.parametrize("size", [1, 40])
def test_queue_query_count_is_fixed(desk, agent, django_assert_max_num_queries, size):
    for n in range(size):
        ticket = make_ticket(subject=f"t{n}")
        if n % 2:
            reply(ticket, agent)
    desk.get(reverse(CHANGELIST))  # warm the session and permission caches
    with django_assert_max_num_queries(12):
        assert desk.get(reverse(CHANGELIST)).status_code == 200


def test_level_filter_lists_l1_to_l4_and_filters(desk, board):
    Ticket.objects.filter(pk=board["urgent"].pk).update(escalation_level=3)
    response = desk.get(reverse(CHANGELIST), {"escalation_level__exact": "3"})
    assert [t.subject for t in response.context["cl"].result_list] == ["urgent"]
    html = desk.get(reverse(CHANGELIST)).content.decode()
    for level in ["L1", "L2", "L3", "L4"]:
        assert f"escalation_level__exact={level[1]}" in html
