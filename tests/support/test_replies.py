"""Email replies without clutter: the new text separated from quoted history and signature
on real reply formats (tests/support/replies/*.txt with the text expected in *.expected),
the whole email kept and viewable."""

from email.message import EmailMessage
from pathlib import Path

import pytest
from django.urls import reverse

from support import services
from support.models import TicketMessage
from support.replies import split_reply
from tests.support.factories import make_ticket

FIXTURES = Path(__file__).parent / "replies"
FORMATS = sorted(p.stem for p in FIXTURES.glob("*.expected"))
MTA = "mx.opsplatform.test"


def test_the_fixture_set_covers_the_clients_and_languages():
    assert FORMATS == [
        "apple_mail_en",
        "gmail_de",
        "gmail_en",
        "gmail_fr",
        "outlook_de",
        "outlook_en",
        "outlook_es",
        "signature_en",
    ]


@pytest.mark.parametrize("name", FORMATS)
def test_new_text_is_separated_from_quotes_and_signature(name):
    raw = (FIXTURES / f"{name}.txt").read_text()
    expected = (FIXTURES / f"{name}.expected").read_text().strip()
    split = split_reply(raw)
    assert split.text == expected
    assert split.full == raw  # the whole message is kept


def test_a_message_without_quotes_is_kept_as_is():
    raw = (FIXTURES / "plain_new.txt").read_text()
    split = split_reply(raw)
    assert split.text == raw and split.full == ""


def test_a_very_long_message_is_kept_whole_without_parsing():
    raw = "Hello\n\nOn Mon, Support wrote:\n> old\n" + "x" * 60_000
    assert split_reply(raw).text == raw


@pytest.mark.django_db
def test_an_emailed_reply_stores_only_the_new_text_and_keeps_the_original(client, settings):
    settings.INBOUND_AUTHSERV_ID = MTA
    ticket = make_ticket(requester_email="jane@example.com", account=None)
    msg = EmailMessage()
    msg["From"] = "Jane <jane@example.com>"
    msg["Subject"] = f"Re: [{ticket.reference}] Campaign not tracking"
    msg["Message-ID"] = "<reply-1@mail.example.com>"
    raw_text = (FIXTURES / "gmail_en.txt").read_text()
    msg.set_content(raw_text)
    raw = f"Authentication-Results: {MTA}; dmarc=pass\r\n".encode() + bytes(msg)

    result = services.ingest_email(raw=raw)

    assert result.result == "appended"
    message = ticket.messages.get(author_kind=TicketMessage.Author.REQUESTER, message_id__gt="")
    assert message.body == "Thanks, clearing the cache fixed it!"
    assert "Please clear the cache and try again." in message.full_body


@pytest.mark.django_db
def test_the_customer_can_show_the_quoted_text(client, account):
    ticket = make_ticket(account=account)
    services.add_message(
        ticket=ticket,
        body="Works now.",
        full_body="Works now.\n\n> On Mon, Support wrote:\n> Please clear the cache.",
        author_kind=TicketMessage.Author.REQUESTER,
    )
    client.force_login(account.user)
    html = client.get(reverse("support:ticket_detail", args=[ticket.reference])).content.decode()
    assert "<summary>Show quoted text</summary>" in html
    assert "Please clear the cache." in html
