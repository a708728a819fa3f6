"""Inbound email: threading, duplicates, auto-replies, MIME and charsets, the endpoint's two
ways to authenticate, and the ingest_email command."""

import io
import sys
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
from django.core.management import CommandError, call_command

from support import services
from support.models import Channel, Ticket, TicketMessage
from tests.conftest import ApiClient
from tests.factories import AccountFactory, staff_in, token_for
from tests.support.factories import make_ticket, reply

pytestmark = pytest.mark.django_db
SECRET = "inbound-test-secret"
MTA = "mx.opsplatform.test"  # INBOUND_AUTHSERV_ID in tests/support/conftest.py
PASS = object()


def authenticated(raw: bytes, results: str = "dmarc=pass") -> bytes:
    """The message as our border MTA hands it on: its Authentication-Results on top."""
    return f"Authentication-Results: {MTA}; {results}\r\n".encode() + raw


def raw_email(
    *,
    sender="Jane <jane@example.com>",
    subject="Help with my campaign",
    body="My campaign stopped tracking.",
    message_id="<m1@mail.example.com>",
    auth=PASS,
    **headers,
) -> bytes:
    """A message from `sender`; by default our MTA says its DMARC passed (`auth` is the
    whole Authentication-Results value, or None for no such header)."""
    msg = EmailMessage()
    if auth is PASS:
        domain = sender.rsplit("@", 1)[-1].strip(">")
        auth = f"{MTA}; dmarc=pass header.from={domain}"
    if auth is not None:
        msg["Authentication-Results"] = auth
    msg["From"] = sender
    msg["To"] = "support@opsplatform.local"
    msg["Subject"] = subject
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return bytes(msg)


def test_new_email_from_unknown_sender_opens_a_ticket_without_account():
    result = services.ingest_email(raw=raw_email())

    assert result.result == "created"
    ticket = result.ticket
    assert ticket.account is None
    assert ticket.requester_email == "jane@example.com"
    assert ticket.requester_name == "Jane"
    assert ticket.channel == Channel.EMAIL
    assert ticket.subject == "Help with my campaign"
    message = ticket.messages.get()
    assert message.body == "My campaign stopped tracking."
    assert message.message_id == "<m1@mail.example.com>"


def test_known_sender_is_attached_to_their_account():
    account = AccountFactory(user__email="Known@Example.com", user__username="known")
    result = services.ingest_email(raw=raw_email(sender="known@example.com"))
    assert result.ticket.account == account


def test_same_message_id_twice_is_stored_once():
    first = services.ingest_email(raw=raw_email())
    second = services.ingest_email(raw=raw_email(body="different body, same id"))

    assert second.result == "duplicate"
    assert second.ticket.pk == first.ticket.pk
    assert Ticket.objects.count() == 1
    assert TicketMessage.objects.count() == 1


def test_reply_with_reference_in_subject_appends_to_the_ticket(agent):
    ticket = services.ingest_email(raw=raw_email()).ticket
    reply(ticket, agent)
    services.update_ticket_status(ticket=ticket, status=Ticket.Status.PENDING, actor=agent)

    result = services.ingest_email(
        raw=raw_email(
            subject=f"Re: [{ticket.reference}] Help with my campaign",
            message_id="<m2@x>",
            body="Here are the details.",
        )
    )

    assert result.result == "appended"
    assert result.ticket.pk == ticket.pk
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN  # the customer answered: clock runs again
    assert ticket.messages.last().body == "Here are the details."
    assert Ticket.objects.count() == 1


def test_reply_threads_by_in_reply_to_and_references(agent, django_capture_on_commit_callbacks):
    ticket = services.ingest_email(raw=raw_email()).ticket
    with django_capture_on_commit_callbacks(execute=True):
        answer = reply(ticket, agent, "Which campaign?")
    answer.refresh_from_db()
    assert answer.message_id  # the id our reply email carried

    by_in_reply_to = services.ingest_email(
        raw=raw_email(
            subject="Re: your question", message_id="<m3@x>", In_Reply_To=answer.message_id
        )
    )
    by_references = services.ingest_email(
        raw=raw_email(
            subject="another subject",
            message_id="<m4@x>",
            References="<unrelated@x> <m1@mail.example.com>",
        )
    )

    assert by_in_reply_to.result == by_references.result == "appended"
    assert by_in_reply_to.ticket.pk == by_references.ticket.pk == ticket.pk
    assert ticket.messages.count() == 4


def test_reply_from_someone_else_opens_a_new_ticket_instead():
    ticket = services.ingest_email(raw=raw_email()).ticket
    result = services.ingest_email(
        raw=raw_email(
            sender="mallory@example.org", subject=f"Re: {ticket.reference}", message_id="<m5@x>"
        )
    )
    assert result.result == "created"
    assert result.ticket.pk != ticket.pk
    assert ticket.messages.count() == 1


def test_reply_to_a_closed_ticket_opens_a_follow_up(agent):
    ticket = services.ingest_email(raw=raw_email()).ticket
    services.update_ticket_status(ticket=ticket, status=Ticket.Status.CLOSED, actor=agent)
    result = services.ingest_email(
        raw=raw_email(subject=f"Re: {ticket.reference}", message_id="<m6@x>", body="One more")
    )
    assert result.result == "created"
    assert result.ticket.follow_up_of == ticket
    assert result.ticket.messages.get().body == "One more"


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"Precedence": "auto_reply"},
        {"X_Autoreply": "yes"},
        {"Return_Path": "<>"},
    ],
)
def test_auto_replies_and_bounces_open_nothing(headers):
    result = services.ingest_email(raw=raw_email(**headers))
    assert result.result == "ignored"
    assert not Ticket.objects.exists()


def test_auto_submitted_no_is_a_person():
    assert services.ingest_email(raw=raw_email(Auto_Submitted="no")).result == "created"


def test_bounce_from_mailer_daemon_is_ignored():
    result = services.ingest_email(raw=raw_email(sender="MAILER-DAEMON@mx.example.com"))
    assert result.result == "ignored"
    assert not Ticket.objects.exists()


def test_multipart_non_utf8_message_decodes():
    msg = MIMEMultipart("alternative")
    msg["From"] = "=?iso-8859-1?q?Fran=E7ois_M=FCller?= <francois@example.fr>"
    msg["Subject"] = "=?iso-8859-1?q?Probl=E8me_de_facturation?="
    msg["Message-ID"] = "<latin1@example.fr>"
    msg.attach(
        MIMEText(
            "Le reçu affiche 12 € de trop. Grüße".encode("iso-8859-15"), "plain", "iso-8859-15"
        )
    )
    msg.attach(MIMEText("<p>HTML version</p>", "html", "utf-8"))

    ticket = services.ingest_email(raw=authenticated(msg.as_bytes())).ticket

    assert ticket.subject == "Problème de facturation"
    assert ticket.requester_name == "François Müller"
    assert ticket.messages.get().body == "Le reçu affiche 12 € de trop. Grüße"


def test_html_only_message_is_stripped_to_text():
    msg = MIMEMultipart("alternative")
    msg["From"] = "html@example.com"
    msg["Subject"] = "HTML only"
    msg.attach(
        MIMEText(
            "<html><style>p{}</style><body><p>Hello &amp; welcome</p>"
            "<p>Second<br>line</p><script>x()</script></body></html>",
            "html",
            "windows-1252",
        )
    )
    body = services.ingest_email(raw=authenticated(msg.as_bytes())).ticket.messages.get().body
    assert body == "Hello & welcome\nSecond\nline"


def test_unknown_charset_does_not_lose_the_message():
    raw = (
        b"From: a@example.com\r\nSubject: odd\r\nContent-Type: text/plain; "
        b"charset=x-unknown-charset\r\n\r\nCaf\xe9 ok\r\n"
    )
    body = services.ingest_email(raw=authenticated(raw)).ticket.messages.get().body
    assert body.startswith("Caf") and body.endswith("ok")


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"Subject: no sender\r\n\r\nbody", b"From: not an address\r\n\r\nbody"]
)
def test_unusable_messages_are_invalid_input(raw):
    from opsplatform.errors import InvalidInput

    with pytest.raises(InvalidInput):
        services.ingest_email(raw=raw)
    assert not Ticket.objects.exists()


# --- the endpoint -----------------------------------------------------------------------------


@pytest.fixture
def secret(settings):
    settings.SUPPORT_INBOUND_EMAIL_SECRET = SECRET
    return SECRET


def post_inbound(client, raw, headers=None, content_type="message/rfc822"):
    return client.post(
        "/api/v1/support/inbound-email", data=raw, content_type=content_type, headers=headers or {}
    )


def test_endpoint_accepts_the_shared_secret(client, secret):
    response = post_inbound(client, raw_email(), {"X-Inbound-Secret": secret})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["result"] == "created"
    assert body["reference"] == Ticket.objects.get().reference

    again = post_inbound(
        client, raw_email(), {"X-Inbound-Secret": secret}, content_type="text/plain"
    )
    assert again.status_code == 200
    assert again.json()["result"] == "duplicate"


@pytest.mark.parametrize("header", [None, "wrong-secret", ""])
def test_endpoint_rejects_a_missing_or_wrong_secret(client, secret, header):
    headers = {"X-Inbound-Secret": header} if header is not None else {}
    response = post_inbound(client, raw_email(), headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert not Ticket.objects.exists()


def test_guessing_the_inbound_secret_is_throttled_per_client_address(client, secret, settings):
    from django.core.cache import cache
    from django.test import Client

    cache.clear()
    settings.CREDENTIAL_FAILURE_LIMIT = 3
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    answers = [
        post_inbound(guesser, raw_email(), {"X-Inbound-Secret": f"guess-{n}"}).status_code
        for n in range(3)
    ]
    right_guess = post_inbound(guesser, raw_email(), {"X-Inbound-Secret": secret})
    mail_server = post_inbound(
        Client(REMOTE_ADDR="192.0.2.25"), raw_email(), {"X-Inbound-Secret": secret}
    )

    assert answers == [401, 401, 401]
    assert right_guess.status_code == 429 and right_guess.json()["code"] == "rate_limited"
    assert mail_server.status_code == 201
    assert Ticket.objects.count() == 1
    cache.clear()


def test_endpoint_without_configured_secret_accepts_no_secret(client, settings):
    settings.SUPPORT_INBOUND_EMAIL_SECRET = ""
    response = post_inbound(client, raw_email(), {"X-Inbound-Secret": ""})
    assert response.status_code == 401
    assert not Ticket.objects.exists()


def test_endpoint_accepts_a_staff_token_with_permission():
    from django.contrib.auth.models import Permission

    staff = staff_in()
    staff.user_permissions.add(Permission.objects.get(codename="ingest_email"))
    api = ApiClient(token_for(staff))
    response = api.post("support/inbound-email", raw=raw_email(), content_type="message/rfc822")
    assert response.status_code == 201
    assert Ticket.objects.count() == 1


def test_endpoint_refuses_tokens_without_permission(api, agent_api):
    for client in (api, agent_api):
        response = client.post(
            "support/inbound-email", raw=raw_email(), content_type="message/rfc822"
        )
        assert response.status_code == 403
    assert not Ticket.objects.exists()


def test_endpoint_wants_a_raw_message(client, secret):
    response = post_inbound(
        client, b'{"from": "x"}', {"X-Inbound-Secret": secret}, content_type="application/json"
    )
    assert response.status_code == 415
    bad = post_inbound(client, b"no headers at all", {"X-Inbound-Secret": secret})
    assert bad.status_code == 422
    assert not Ticket.objects.exists()


def test_endpoint_reports_ignored_auto_replies(client, secret):
    response = post_inbound(
        client, raw_email(Auto_Submitted="auto-replied"), {"X-Inbound-Secret": secret}
    )
    assert response.status_code == 200
    assert response.json()["result"] == "ignored"
    assert not Ticket.objects.exists()


# --- the command ------------------------------------------------------------------------------


def test_command_reads_a_file(tmp_path):
    path = tmp_path / "message.eml"
    path.write_bytes(raw_email())
    out = io.StringIO()
    call_command("ingest_email", str(path), stdout=out)
    ticket = Ticket.objects.get()
    assert out.getvalue().strip() == f"created {ticket.reference}"


def test_command_reads_stdin(monkeypatch):
    make_ticket()  # unrelated
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw_email())))
    out = io.StringIO()
    call_command("ingest_email", stdout=out)
    assert out.getvalue().startswith("created SUP-")
    assert Ticket.objects.filter(channel=Channel.EMAIL).count() == 1


def test_command_reports_errors(tmp_path):
    with pytest.raises(CommandError):
        call_command("ingest_email", str(tmp_path / "missing.eml"))
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    with pytest.raises(CommandError):
        call_command("ingest_email", str(empty))
    assert not Ticket.objects.exists()


def test_an_email_with_a_large_attachment_still_opens_a_ticket(
    client, secret, django_capture_on_commit_callbacks
):
    msg = EmailMessage()
    msg["From"] = "Jane <jane@example.com>"
    msg["Subject"] = "Screenshot of the broken report"
    msg["Message-ID"] = "<big@mail.example.com>"
    msg.set_content("See the attached screenshot.")
    msg.add_attachment(
        b"\x89PNG" + b"\x00" * (8 * 1024 * 1024),
        maintype="image",
        subtype="png",
        filename="report.png",
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = post_inbound(client, authenticated(bytes(msg)), {"X-Inbound-Secret": secret})

    # Over 1 MB: a worker parses it (the test settings run tasks inline).
    assert response.status_code == 202, response.content
    assert response.json()["result"] == "queued"
    ticket = Ticket.objects.get()
    assert ticket.subject == "Screenshot of the broken report"
    assert "report.png" in ticket.messages.get().body


def test_an_email_over_the_limit_answers_413_and_stores_nothing(client, secret, monkeypatch):
    from support import inbound

    monkeypatch.setattr(inbound, "MAX_RAW_BYTES", 1024)

    response = post_inbound(client, raw_email(body="x" * 4000), {"X-Inbound-Secret": secret})

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
    assert Ticket.objects.count() == 0
