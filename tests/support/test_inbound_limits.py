"""Hostile MIME: too many parts or too deep a nesting is refused with 422 and a reason,
quickly and before the recursive stdlib parser can stall or crash a worker."""

import io
from email.message import EmailMessage

import pytest
from django.core.management import CommandError, call_command

from opsplatform.errors import InvalidInput
from support import inbound, services
from support.models import HeldEmail, QueuedEmail, Ticket, TicketMessage
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
    return not (
        Ticket.objects.exists()
        or TicketMessage.objects.exists()
        or HeldEmail.objects.exists()
        or QueuedEmail.objects.exists()
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


# --- large messages are parsed by a worker ----------------------------------------------------


def padded(raw: bytes, size: int = 2 * 1024 * 1024) -> bytes:
    """The message made over `size` bytes by a long first text part."""
    line = b"p" * 900 + b"\r\n"
    return raw.replace(b"part 0\r\n", b"part 0\r\n" + line * (size // len(line) + 1), 1)


def test_a_header_block_over_128_kb_is_refused():
    raw = b"X-Padding: " + b"p" * 200_000 + b"\r\n" + many_parts(1)

    with pytest.raises(InvalidInput) as error:
        services.ingest_email(raw=raw)

    assert (error.value.code, error.value.detail) == (
        "headers_too_large",
        "A header block of the message is longer than 128 KB.",
    )
    assert nothing_stored()


def test_a_large_hostile_message_is_refused_before_it_is_queued(client, secret):
    response = post(client, padded(many_parts(10_000)))

    assert response.status_code == 422
    assert response.json()["code"] == "too_many_parts"
    assert nothing_stored()


def test_a_large_message_is_parsed_once_by_the_worker(
    client, secret, django_capture_on_commit_callbacks
):
    raw = padded(many_parts(3))

    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, raw)

    assert response.status_code == 202
    queued = QueuedEmail.objects.get()
    assert response.json() == {
        "result": "queued",
        "reference": None,
        "detail": f"parsed in the background (#{queued.pk})",
    }
    ticket = Ticket.objects.get()
    assert (queued.result, queued.ticket, bytes(queued.raw)) == ("created", ticket, b"")
    assert queued.processed_at is not None
    # A second run of the task (a retry) stores nothing more.
    assert services.ingest_queued_email(queued_id=queued.pk) is False
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (1, 1)


def test_a_queued_message_without_a_sender_is_recorded_as_refused(
    client, secret, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, b"Subject: no sender\r\n\r\n" + b"body\r\n" * 300_000)

    assert response.status_code == 202
    queued = QueuedEmail.objects.get()
    assert (queued.result, queued.detail) == ("refused", "The message has no valid From address.")
    assert not Ticket.objects.exists()
