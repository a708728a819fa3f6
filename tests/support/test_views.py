"""Customer support pages: my tickets, open a ticket, the thread, reply, close/reopen, CSAT."""

import pytest
from django.urls import reverse

from support import services
from support.models import CSATRating, Ticket, TicketMessage
from tests.factories import AccountFactory, staff_in
from tests.support.factories import make_ticket, reply

pytestmark = pytest.mark.django_db
Status = Ticket.Status


@pytest.fixture
def customer(client, account):
    client.force_login(account.user)
    return client


def detail_url(ticket):
    return reverse("support:ticket_detail", args=[ticket.reference])


def test_my_tickets_lists_only_mine(customer, account, other_account):
    mine = make_ticket(account=account, subject="Mine")
    make_ticket(account=other_account, subject="Theirs")

    page = customer.get(reverse("support:ticket_list")).content.decode()

    assert mine.reference in page and "Mine" in page
    assert "Theirs" not in page


def test_support_is_in_the_account_menu(customer):
    page = customer.get(reverse("account_home")).content.decode()
    assert f'href="{reverse("support:ticket_list")}"' in page


def test_open_a_ticket(customer, account):
    response = customer.post(
        reverse("support:ticket_create"),
        {"subject": "Sponsor link broken", "description": "It 404s", "priority": "high"},
    )

    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(ticket)
    assert ticket.account == account and ticket.channel == "web" and ticket.priority == "high"


def test_form_errors_are_shown_and_nothing_is_stored(customer):
    response = customer.post(
        reverse("support:ticket_create"),
        {"subject": "", "description": "x\x00y", "priority": "nope"},
    )
    assert response.status_code == 400
    assert response.content.decode().count('role="alert"') >= 2
    assert not Ticket.objects.exists()


def test_thread_shows_public_messages_only(customer, account, staff_user_agent):
    ticket = make_ticket(account=account, description="My question")
    reply(ticket, staff_user_agent, "SECRET-NOTE about this customer", internal=True)
    reply(ticket, staff_user_agent, "Here is the answer")

    page = customer.get(detail_url(ticket)).content.decode()

    assert "My question" in page and "Here is the answer" in page
    assert "SECRET-NOTE" not in page
    assert "Support team" in page


def test_reply_from_the_page_reopens_a_pending_ticket(customer, account, staff_user_agent):
    ticket = make_ticket(account=account)
    services.update_ticket_status(ticket=ticket, status=Status.PENDING, actor=staff_user_agent)

    response = customer.post(
        reverse("support:ticket_reply", args=[ticket.reference]), {"body": "Here is the screenshot"}
    )

    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    message = ticket.messages.last()
    assert message.body == "Here is the screenshot"
    assert message.author_kind == TicketMessage.Author.REQUESTER


def test_empty_reply_shows_an_error(customer, account):
    ticket = make_ticket(account=account)
    response = customer.post(reverse("support:ticket_reply", args=[ticket.reference]), {"body": ""})
    assert response.status_code == 400
    assert 'role="alert"' in response.content.decode()
    assert ticket.messages.count() == 1


def test_close_and_reopen_and_rate(customer, account, staff_user_agent):
    ticket = make_ticket(account=account)
    services.update_ticket_status(ticket=ticket, status=Status.RESOLVED, actor=staff_user_agent)
    page = customer.get(detail_url(ticket)).content.decode()
    assert "Rate our support" in page and "Reopen ticket" in page

    customer.post(
        reverse("support:ticket_rate", args=[ticket.reference]),
        {"rating": "4", "comment": "Thanks"},
    )
    assert CSATRating.objects.get(ticket=ticket).rating == 4
    page = customer.get(detail_url(ticket)).content.decode()
    assert "You rated this ticket 4/5" in page

    customer.post(reverse("support:ticket_status", args=[ticket.reference]), {"action": "reopen"})
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    customer.post(reverse("support:ticket_status", args=[ticket.reference]), {"action": "close"})
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    assert "Send reply" not in customer.get(detail_url(ticket)).content.decode()


def test_bad_rating_shows_error(customer, account, staff_user_agent):
    ticket = make_ticket(account=account)
    services.update_ticket_status(ticket=ticket, status=Status.RESOLVED, actor=staff_user_agent)
    response = customer.post(
        reverse("support:ticket_rate", args=[ticket.reference]), {"rating": "11"}
    )
    assert response.status_code == 400
    assert not CSATRating.objects.exists()


@pytest.mark.parametrize(
    ("name", "method", "data"),
    [
        ("support:ticket_detail", "get", None),
        ("support:ticket_reply", "post", {"body": "hi"}),
        ("support:ticket_status", "post", {"action": "close"}),
        ("support:ticket_rate", "post", {"rating": "5"}),
    ],
)
def test_another_tenants_ticket_is_404(customer, other_account, name, method, data):
    ticket = make_ticket(account=other_account)
    url = reverse(name, args=[ticket.reference])
    response = customer.get(url) if method == "get" else customer.post(url, data)
    assert response.status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and ticket.messages.count() == 1


def test_pages_need_login_and_an_account(client):
    url = reverse("support:ticket_list")
    assert client.get(url).status_code == 302
    staff = staff_in("support_l1")
    client.force_login(staff)
    assert client.get(url).status_code == 403


def test_list_page_query_budget(customer, account, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_ticket(account=account)
    with CaptureQueriesContext(connection) as one:
        customer.get(reverse("support:ticket_list") + "?show=all")
    for _ in range(30):
        make_ticket(account=account)
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = customer.get(reverse("support:ticket_list") + "?show=all")
    assert page.content.decode().count("SUP-") >= 25


@pytest.fixture
def staff_user_agent(db):
    return staff_in("support_l1")


def test_unknown_sender_tickets_are_not_on_anyones_page(customer):
    services.create_ticket(
        subject="From a stranger",
        description="x",
        channel="email",
        requester_email="stranger@example.com",
    )
    AccountFactory()
    assert (
        "From a stranger"
        not in customer.get(reverse("support:ticket_list") + "?show=all").content.decode()
    )


@pytest.mark.parametrize(
    ("name", "method", "data"),
    [
        ("support:ticket_list", "get", None),
        ("support:ticket_create", "post", {"subject": "s", "description": "d"}),
        ("support:ticket_detail", "get", None),
        ("support:ticket_reply", "post", {"body": "hi"}),
        ("support:ticket_status", "post", {"action": "close"}),
        ("support:ticket_rate", "post", {"rating": "5"}),
    ],
)
def test_staff_never_act_as_a_customer_even_with_an_account(client, name, method, data):
    # A staff login that owns an account gets the no-account page on every customer page.
    staff = staff_in("support_l1")
    account = AccountFactory(user=staff)
    ticket = make_ticket(account=account)
    args = [] if name in ("support:ticket_list", "support:ticket_create") else [ticket.reference]
    client.force_login(staff)

    url = reverse(name, args=args)
    response = client.get(url) if method == "get" else client.post(url, data)

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and ticket.messages.count() == 1
    assert Ticket.objects.count() == 1


def test_post_only_pages_refuse_a_get_and_send_anonymous_visitors_to_login(client, account):
    ticket = make_ticket(account=account)
    url = reverse("support:ticket_reply", args=[ticket.reference])

    assert client.get(url).status_code == 302  # to the login page first
    client.force_login(account.user)
    assert client.get(url).status_code == 405
    assert ticket.messages.count() == 1
