"""Hostile MIME: too many parts or too deep a nesting is refused with 422 and a reason,
quickly and before the recursive stdlib parser can stall or crash a worker."""

import io
from email.message import EmailMessage

import pytest
from django.core.management import CommandError, call_command

from opsplatform.errors import InvalidInput
from support import inbound, services
from support.models import HeldEmail, Ticket, TicketMessage
from tests.support.test_inbound import SECRET, authenticated

pytestmark = pytest.mark.django_db


def many_parts(count: int) -> bytes:
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(count))
    return authenticated(
        (
            "From: jane@example.com\r\nSubject: parts\r\nMessage-ID: <parts@example.com>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            f"{parts}--b--\r\n"
        ).encode()
    )


def nested(depth: int) -> bytes:
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(depth)
    )
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(depth)))
    return authenticated(
        (
            "From: jane@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
            f"{opening}Content-Type: text/plain\r\n\r\nthe innermost text\r\n{closing}"
        ).encode()
    )


def post(client, raw):
    return client.post(
        "/api/v1/support/inbound-email",
        data=raw,
        content_type="message/rfc822",
        headers={"X-Inbound-Secret": SECRET},
    )


@pytest.fixture
def secret(settings):
    settings.SUPPORT_INBOUND_EMAIL_SECRET = SECRET


def nothing_stored():
    return (Ticket.objects.count(), TicketMessage.objects.count(), HeldEmail.objects.count()) == (
        0,
        0,
        0,
    )


def test_ten_thousand_parts_answer_422(client, secret):
    response = post(client, many_parts(10_000))

    assert response.status_code == 422
    body = response.json()
    assert (body["detail"], body["code"]) == (
        "The message has more than 500 MIME parts.",
        "too_many_parts",
    )
    assert nothing_stored()


def test_two_thousand_levels_answer_422_not_500(client, secret):
    response = post(client, nested(2_000))

    assert response.status_code == 422
    body = response.json()
    assert (body["detail"], body["code"]) == (
        "The message nests MIME parts more than 20 levels deep.",
        "too_deeply_nested",
    )
    assert nothing_stored()


def test_messages_within_the_limits_still_open_tickets():
    wide = services.ingest_email(raw=many_parts(400))
    deep = services.ingest_email(raw=nested(19))

    assert (wide.result, deep.result) == ("created", "created")
    assert wide.ticket.messages.get().body.startswith("part 0")
    assert deep.ticket.messages.get().body.startswith("the innermost text")


def test_the_limits_come_from_settings(settings):
    settings.INBOUND_MAX_PARTS = 5
    settings.INBOUND_MAX_DEPTH = 2

    with pytest.raises(InvalidInput) as parts:
        services.ingest_email(raw=many_parts(5))  # the message itself and 5 parts
    with pytest.raises(InvalidInput) as depth:
        services.ingest_email(raw=nested(3))

    assert (parts.value.code, depth.value.code) == ("too_many_parts", "too_deeply_nested")
    assert nothing_stored()
    assert services.ingest_email(raw=nested(2)).result == "created"


def test_an_attached_message_counts_as_a_level():
    inner = EmailMessage()
    inner["From"] = "x@example.com"
    inner["Subject"] = "forwarded"
    inner.set_content("inner text")
    outer = EmailMessage()
    outer["From"] = "jane@example.com"
    outer["Subject"] = "fwd"
    outer.set_content("see below")
    outer.add_attachment(inner)
    raw = bytes(outer)

    with pytest.raises(InvalidInput) as error:
        inbound.check_structure(raw, max_parts=500, max_depth=1)
    assert error.value.code == "too_deeply_nested"
    inbound.check_structure(raw, max_parts=500, max_depth=2)


def test_boundaries_the_scan_cannot_read_are_still_bounded():
    # An RFC 2231 boundary parameter (boundary*=) is not read by the scan; the parser's own
    # part counter still stops the message.
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\n{i}\r\n" for i in range(600))
    raw = (
        "From: jane@example.com\r\nSubject: sneaky\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/mixed; boundary*=us-ascii''b\r\n\r\n{parts}--b--\r\n"
    ).encode()

    with pytest.raises(InvalidInput) as error:
        inbound.parse_email(raw)

    assert error.value.code == "too_many_parts"


def test_the_command_reports_the_reason(tmp_path):
    path = tmp_path / "hostile.eml"
    path.write_bytes(many_parts(10_000))

    with pytest.raises(CommandError) as error:
        call_command("ingest_email", str(path), stdout=io.StringIO())

    assert str(error.value) == "The message has more than 500 MIME parts."
    assert nothing_stored()
