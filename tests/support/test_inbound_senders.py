"""Inbound email senders: the trusted MTA's Authentication-Results decide whether a sender is
verified; unverified email is held for review (never on a ticket, never acknowledged) until
an agent accepts it; acknowledgements go only to senders we know."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.urls import reverse

from opsplatform.errors import Conflict
from support import services
from support.inbound import check_sender
from support.models import Channel, HeldEmail, Ticket, TicketMessage
from tests.factories import AccountFactory
from tests.support.factories import make_ticket
from tests.support.test_inbound import MTA, SECRET, raw_email

pytestmark = pytest.mark.django_db
QUEUE = "admin:support_heldemail_changelist"


# --- the sender check (RFC 8601) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "verified", "reason"),
    [
        ([f"{MTA}; dmarc=pass header.from=example.com"], True, "dmarc=pass"),
        ([f"{MTA.upper()} 1; dmarc=pass (p=reject) header.from=example.com"], True, "dmarc=pass"),
        ([f"{MTA}; dmarc=fail header.from=example.com"], False, "dmarc=fail"),
        (
            [f"{MTA}; dmarc=pass header.from=evil.example.net"],
            False,
            "dmarc=pass for another domain than From",
        ),
        # No DMARC verdict: an aligned DKIM signature or aligned SPF is enough.
        ([f"{MTA}; dkim=pass header.d=example.com"], True, "dkim=pass (d=example.com)"),
        (
            [f"{MTA}; dmarc=none; dkim=pass header.d=mail.example.com"],
            True,
            "dkim=pass (d=mail.example.com)",
        ),
        (
            [f"{MTA}; dkim=pass header.d=evil.example.net"],
            False,
            "no DMARC pass and no aligned DKIM or SPF pass",
        ),
        (
            [f"{MTA}; spf=pass smtp.mailfrom=bounce@example.com"],
            True,
            "spf=pass (mailfrom example.com)",
        ),
        (
            [f"{MTA}; spf=pass smtp.mailfrom=bounce@evil.example.net"],
            False,
            "no DMARC pass and no aligned DKIM or SPF pass",
        ),
        (
            [f"{MTA}; spf=softfail smtp.mailfrom=example.com"],
            False,
            "no DMARC pass and no aligned DKIM or SPF pass",
        ),
        # A failed DMARC is not rescued by DKIM or SPF.
        ([f"{MTA}; dmarc=fail; dkim=pass header.d=example.com"], False, "dmarc=fail"),
        ([f"{MTA}; none"], False, "no DMARC pass and no aligned DKIM or SPF pass"),
        ([], False, f"no Authentication-Results from {MTA} at the top"),
        # Another server's verdict does not count, whatever it says.
        (
            ["mx.evil.example.net; dmarc=pass header.from=example.com"],
            False,
            f"no Authentication-Results from {MTA} at the top",
        ),
    ],
)
def test_sender_check(headers, verified, reason):
    check = check_sender(headers, from_domain="example.com", authserv_id=MTA)

    assert (check.verified, check.reason) == (verified, reason)


def test_a_forged_header_below_another_servers_is_ignored():
    # What the sender wrote sits below the headers the receiving servers added on top.
    headers = [
        "mx.provider.example; dmarc=fail header.from=example.com",
        f"{MTA}; dmarc=pass header.from=example.com",
    ]
    check = check_sender(headers, from_domain="example.com", authserv_id=MTA)
    assert check.verified is False


def test_a_forged_pass_under_our_fail_does_not_win():
    headers = [
        f"{MTA}; dmarc=fail header.from=example.com",
        f"{MTA}; dmarc=pass header.from=example.com",
    ]
    check = check_sender(headers, from_domain="example.com", authserv_id=MTA)
    assert (check.verified, check.reason) == (False, "dmarc=fail")


def test_without_a_trusted_authserv_id_nobody_is_verified():
    headers = [f"{MTA}; dmarc=pass header.from=example.com"]
    check = check_sender(headers, from_domain="example.com", authserv_id="")
    assert (check.verified, check.reason) == (False, "no trusted authserv-id is configured")


# --- holding spoofed mail ---------------------------------------------------------------------


@pytest.fixture
def customer():
    return AccountFactory(user__email="ceo@victim.example", user__username="ceo")


def test_a_spoofed_reply_is_held_and_stays_off_the_customers_thread(
    customer, django_capture_on_commit_callbacks
):
    ticket = make_ticket(account=customer, subject="Invoices")
    mail.outbox.clear()
    before = list(ticket.messages.values_list("id", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        result = services.ingest_email(
            raw=raw_email(
                sender="CEO <ceo@victim.example>",
                subject=f"Re: {ticket.reference} Invoices",
                body="Please send all invoices to attacker@evil.example.net",
                message_id="<spoof@evil.example.net>",
                auth=f"{MTA}; dmarc=fail (p=none) header.from=victim.example",
            )
        )

    assert (result.result, result.ticket) == ("held", None)
    assert result.detail == "unverified sender: dmarc=fail"
    assert list(ticket.messages.values_list("id", flat=True)) == before
    assert Ticket.objects.count() == 1
    assert mail.outbox == []
    held = HeldEmail.objects.get()
    assert (held.from_email, held.status, held.reason) == (
        "ceo@victim.example",
        HeldEmail.Status.HELD,
        "dmarc=fail",
    )
    assert held.history.count() == 1


def test_a_held_email_is_not_on_the_customers_pages(customer, client):
    services.ingest_email(
        raw=raw_email(sender="ceo@victim.example", subject="Wire the refund", auth=None)
    )
    client.force_login(customer.user)

    page = client.get(reverse("support:ticket_list"))

    assert page.status_code == 200
    assert b"Wire the refund" not in page.content
    assert not Ticket.objects.filter(account=customer).exists()


def test_unset_authserv_id_holds_every_message(settings):
    settings.INBOUND_AUTHSERV_ID = ""

    result = services.ingest_email(raw=raw_email())

    assert result.result == "held"
    assert result.detail == "unverified sender: no trusted authserv-id is configured"
    assert not Ticket.objects.exists()


def test_a_forged_authentication_results_header_is_not_trusted():
    # The attacker adds their own "pass" below the one our MTA added (its verdict: fail).
    raw = (
        f"Authentication-Results: {MTA}; dmarc=fail header.from=example.com\r\n".encode()
        + raw_email(auth=f"{MTA}; dmarc=pass header.from=example.com")
    )

    result = services.ingest_email(raw=raw)

    assert result.result == "held"
    assert not Ticket.objects.exists()


def test_the_same_held_message_twice_is_held_once():
    first = services.ingest_email(raw=raw_email(auth=None))
    second = services.ingest_email(raw=raw_email(auth=None))

    assert (first.result, second.result) == ("held", "duplicate")
    assert HeldEmail.objects.count() == 1


def test_the_endpoint_answers_202_for_a_held_email(client, settings):
    settings.SUPPORT_INBOUND_EMAIL_SECRET = SECRET

    response = client.post(
        "/api/v1/support/inbound-email",
        data=raw_email(auth=None),
        content_type="message/rfc822",
        headers={"X-Inbound-Secret": SECRET},
    )

    assert response.status_code == 202
    assert response.json() == {
        "result": "held",
        "reference": None,
        "detail": f"unverified sender: no Authentication-Results from {MTA} at the top",
    }


# --- the review queue -------------------------------------------------------------------------


@pytest.fixture
def desk(client, agent):
    client.force_login(agent)
    return client


def test_agents_see_held_email_flagged_in_the_queue(desk):
    services.ingest_email(raw=raw_email(subject="Suspicious request", auth=None))

    page = desk.get(reverse(QUEUE), {"status__exact": "held"})

    assert page.status_code == 200
    assert b"Suspicious request" in page.content
    assert b"no Authentication-Results from" in page.content


def test_accepting_threads_the_email_and_acknowledges_it(
    desk, agent, customer, django_capture_on_commit_callbacks
):
    ticket = make_ticket(account=customer, subject="Invoices")
    services.ingest_email(
        raw=raw_email(
            sender="ceo@victim.example",
            subject=f"Re: {ticket.reference}",
            body="It is really me.",
            message_id="<real@victim.example>",
            auth=None,
        )
    )
    held = HeldEmail.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = desk.post(
            reverse(QUEUE), {"action": "accept_sender", ACTION_CHECKBOX_NAME: [held.pk]}
        )

    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.ticket, held.reviewed_by) == (
        HeldEmail.Status.ACCEPTED,
        ticket,
        agent,
    )
    message = ticket.messages.get(message_id="<real@victim.example>")
    assert (message.body, message.author_kind) == ("It is really me.", "requester")
    [accepted, created] = held.history.order_by("-history_id")
    assert (accepted.status, accepted.history_user, accepted.history_change_reason) == (
        "accepted",
        agent,
        "Sender accepted",
    )
    assert created.status == "held"


def test_accepting_a_new_email_opens_and_acknowledges_a_ticket(
    agent, customer, django_capture_on_commit_callbacks
):
    services.ingest_email(
        raw=raw_email(sender="ceo@victim.example", subject="New request", auth=None)
    )
    assert mail.outbox == []

    with django_capture_on_commit_callbacks(execute=True):
        result = services.accept_held_email(held=HeldEmail.objects.get(), actor=agent)

    assert result.result == "created"
    assert (result.ticket.account, result.ticket.subject) == (customer, "New request")
    [ack] = mail.outbox
    assert ack.to == ["ceo@victim.example"]
    assert ack.subject == f"[{result.ticket.reference}] We received your request: New request"


def test_a_reviewed_email_cannot_be_reviewed_again(agent):
    services.ingest_email(raw=raw_email(auth=None))
    held = HeldEmail.objects.get()
    services.discard_held_email(held=held, actor=agent)

    with pytest.raises(Conflict):
        services.accept_held_email(held=held, actor=agent)

    held.refresh_from_db()
    assert (held.status, held.ticket) == (HeldEmail.Status.DISCARDED, None)
    assert not Ticket.objects.exists()


def test_the_queue_needs_the_review_permission(client, customer):
    from tests.factories import staff_in

    reader = staff_in("operations")
    services.ingest_email(raw=raw_email(auth=None))
    held = HeldEmail.objects.get()
    client.force_login(reader)

    assert client.get(reverse(QUEUE)).status_code == 200
    client.post(reverse(QUEUE), {"action": "accept_sender", ACTION_CHECKBOX_NAME: [held.pk]})

    held.refresh_from_db()
    assert held.status == HeldEmail.Status.HELD
    assert not Ticket.objects.exists()


# --- acknowledgements (no backscatter) --------------------------------------------------------


def test_a_verified_stranger_gets_no_acknowledgement(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        result = services.ingest_email(raw=raw_email(sender="stranger@example.org"))

    assert result.result == "created"
    assert result.ticket.acknowledged_at is None
    assert mail.outbox == []


def test_a_verified_sender_with_an_earlier_ticket_is_acknowledged(
    django_capture_on_commit_callbacks,
):
    make_ticket(requester_email="known@example.org", channel=Channel.EMAIL, acknowledge=False)

    with django_capture_on_commit_callbacks(execute=True):
        result = services.ingest_email(
            raw=raw_email(sender="known@example.org", subject="Another question")
        )

    [ack] = mail.outbox
    assert ack.to == ["known@example.org"]
    assert ack.subject == f"[{result.ticket.reference}] We received your request: Another question"


def test_an_unverified_sender_is_never_acknowledged(customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.ingest_email(raw=raw_email(sender="ceo@victim.example", auth=None))

    assert mail.outbox == []
    assert not TicketMessage.objects.exists()
