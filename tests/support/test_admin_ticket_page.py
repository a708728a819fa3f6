"""The ticket page's buttons: which ones each status shows, each one through its service
with a confirmation, and the merge that shows both tickets before acting."""

import pytest
from django.urls import reverse

from support import services
from support.models import Ticket, TicketMessage
from tests.factories import AccountFactory
from tests.support.factories import make_agent, make_ticket

pytestmark = pytest.mark.django_db
Status = Ticket.Status


@pytest.fixture
def desk(client, agent):
    client.force_login(agent)
    return client


def change_url(ticket):
    return reverse("admin:support_ticket_change", args=[ticket.pk])


def button_url(ticket, name):
    return reverse(f"admin:support_ticket_{name}", args=[ticket.pk])


BUTTONS = [
    "assign_this_to_me",
    "assign_this",
    "escalate_this",
    "pending_this",
    "hold_this",
    "resolve_this",
    "close_this",
    "reopen_this",
    "merge_this",
]


def buttons_on(client, ticket):
    """The buttons the ticket page links to."""
    response = client.get(change_url(ticket))
    assert response.status_code == 200
    page = response.content.decode()
    return {name for name in BUTTONS if f'href="{button_url(ticket, name)}"' in page}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            Status.NEW,
            {
                "assign_this_to_me",
                "assign_this",
                "escalate_this",
                "pending_this",
                "hold_this",
                "resolve_this",
                "close_this",
                "merge_this",
            },
        ),
        (
            Status.PENDING,
            {
                "assign_this_to_me",
                "assign_this",
                "escalate_this",
                "hold_this",
                "resolve_this",
                "close_this",
                "merge_this",
            },
        ),
        (
            Status.ON_HOLD,
            {
                "assign_this_to_me",
                "assign_this",
                "escalate_this",
                "pending_this",
                "resolve_this",
                "close_this",
                "merge_this",
            },
        ),
        (
            Status.RESOLVED,
            {"assign_this_to_me", "assign_this", "close_this", "reopen_this", "merge_this"},
        ),
        (Status.CLOSED, set()),
    ],
)
def test_buttons_follow_the_status(desk, status, expected):
    ticket = make_ticket()
    if status != Status.NEW:
        services.update_ticket_status(ticket=ticket, status=status)
    assert buttons_on(desk, ticket) == expected


@pytest.mark.parametrize(
    ("button", "before", "after"),
    [
        ("pending_this", Status.NEW, Status.PENDING),
        ("hold_this", Status.NEW, Status.ON_HOLD),
        ("resolve_this", Status.NEW, Status.RESOLVED),
        ("close_this", Status.NEW, Status.CLOSED),
        ("reopen_this", Status.RESOLVED, Status.OPEN),
    ],
)
def test_status_buttons_ask_then_move_through_the_service(desk, agent, button, before, after):
    ticket = make_ticket()
    if before != Status.NEW:
        services.update_ticket_status(ticket=ticket, status=before)

    page = desk.get(button_url(ticket, button))
    assert page.status_code == 200 and ticket.reference in page.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).status == before  # a GET only asks

    response = desk.post(button_url(ticket, button), {"confirm": "yes"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == after
    assert ticket.history.first().history_user == agent


def test_assign_button_gives_the_ticket_to_the_chosen_agent(desk, agent):
    other = make_agent(2, email="agent.two@opsplatform.local")
    ticket = make_ticket()
    desk.post(button_url(ticket, "assign_this"), {"confirm": "yes", "agent": other.pk})
    ticket.refresh_from_db()
    assert ticket.assignee == other
    assert ticket.history.first().history_user == agent


def test_assign_button_refuses_a_non_agent(desk):
    customer_user = AccountFactory().user
    ticket = make_ticket()
    response = desk.post(
        button_url(ticket, "assign_this"), {"confirm": "yes", "agent": customer_user.pk}
    )
    assert response.status_code == 200  # the form again, with the error
    ticket.refresh_from_db()
    assert ticket.assignee is None


def test_forbidden_move_by_button_changes_nothing_and_says_why(desk):
    ticket = make_ticket()
    services.update_ticket_status(ticket=ticket, status=Status.CLOSED)
    response = desk.post(button_url(ticket, "resolve_this"), {"confirm": "yes"}, follow=True)
    assert "A closed ticket cannot become resolved" in response.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).status == Status.CLOSED


def test_customer_cannot_use_the_buttons(client):
    ticket = make_ticket()
    client.force_login(ticket.account.user)
    response = client.post(button_url(ticket, "close_this"), {"confirm": "yes"})
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Ticket.objects.get(pk=ticket.pk).status == Status.NEW


# --- merge ------------------------------------------------------------------------------------


@pytest.fixture
def duplicates():
    account = AccountFactory(name="Acme Pods")
    first = make_ticket(account=account, subject="Invoice wrong", description="First words")
    second = make_ticket(account=account, subject="Invoice wrong again", description="Again")
    return first, second


def test_merge_asks_for_the_target_then_shows_both_side_by_side(desk, duplicates):
    first, second = duplicates
    form = desk.get(button_url(second, "merge_this"))
    assert form.status_code == 200 and 'name="into"' in form.content.decode()

    review = desk.post(button_url(second, "merge_this"), {"into": first.reference})
    page = review.content.decode()
    assert review.status_code == 200
    assert f'data-ticket="{second.reference}"' in page
    assert f'data-ticket="{first.reference}"' in page
    assert "First words" in page and "Again" in page
    assert 'name="confirm" value="yes"' in page
    # Nothing merged until confirmed.
    assert Ticket.objects.get(pk=second.pk).merged_into_id is None
    assert TicketMessage.objects.filter(ticket=second).count() == 1


def test_confirmed_merge_moves_the_thread_and_closes_the_duplicate(desk, agent, duplicates):
    first, second = duplicates
    response = desk.post(
        button_url(second, "merge_this"), {"into": first.reference, "confirm": "yes"}
    )
    assert response.status_code == 302 and response["Location"] == change_url(first)
    second.refresh_from_db()
    assert second.status == Status.CLOSED and second.merged_into_id == first.pk
    assert second.history.first().history_user == agent
    bodies = set(TicketMessage.objects.filter(ticket=first).values_list("body", flat=True))
    assert {"First words", "Again"} <= bodies


def test_merge_of_different_requesters_offers_no_confirm_button(desk):
    mine = make_ticket(subject="mine")
    theirs = make_ticket(subject="theirs")  # another account
    review = desk.post(button_url(mine, "merge_this"), {"into": theirs.reference}).content.decode()
    assert "different requesters" in review
    assert 'name="_confirm"' not in review
    desk.post(button_url(mine, "merge_this"), {"into": theirs.reference, "confirm": "yes"})
    assert Ticket.objects.get(pk=mine.pk).merged_into_id is None


def test_merge_into_an_unknown_or_the_same_ticket_is_refused(desk, duplicates):
    first, _ = duplicates
    for into in ["SUP-999999", first.reference, "nonsense"]:
        response = desk.post(button_url(first, "merge_this"), {"into": into, "confirm": "yes"})
        assert response.status_code == 200
        assert Ticket.objects.get(pk=first.pk).status == Status.NEW


def test_merged_ticket_customer_page_points_to_the_surviving_ticket(client, desk, duplicates):
    first, second = duplicates
    desk.post(button_url(second, "merge_this"), {"into": first.reference, "confirm": "yes"})

    client.force_login(first.account.user)
    response = client.get(reverse("support:ticket_detail", args=[second.reference]), follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse(
        "support:ticket_detail", args=[first.reference]
    )
    assert f"{second.reference} was merged into {first.reference}" in page
    assert "Again" in page  # the merged ticket's message, now on the surviving thread


def test_merged_ticket_of_another_account_is_still_not_found(client, duplicates):
    first, second = duplicates
    services.merge_tickets(source=second, target=first)
    client.force_login(AccountFactory().user)
    response = client.get(reverse("support:ticket_detail", args=[second.reference]))
    assert response.status_code == 404
