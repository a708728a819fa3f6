"""Attachments: stored from the web form, the API and inbound email, within the limits and
with the content type checked; listed in the thread; downloaded through signed, expiring
links behind the tenant wall; exported as a file list; erased with the account."""

import base64
import time
from email.message import EmailMessage

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from support import privacy, services
from support.attachments import IncomingFile
from support.models import Attachment, Ticket, TicketMessage
from tests.conftest import ApiClient
from tests.factories import AccountFactory, token_for
from tests.support.factories import make_ticket

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x01pixels" * 4
PDF = b"%PDF-1.4 a small invoice"
MTA = "mx.opsplatform.test"


def upload(name="shot.png", data=PNG, content_type="image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def customer(client, account):
    client.force_login(account.user)
    return client


def open_with(client, *files, subject="Broken chart"):
    return client.post(
        reverse("support:ticket_create"),
        {
            "subject": subject,
            "description": "See the screenshot",
            "priority": "normal",
            "attachments": list(files),
        },
    )


# --- web form -------------------------------------------------------------------------------


def test_web_form_stores_the_file_and_the_thread_links_it(customer, account):
    response = open_with(customer, upload())
    assert response.status_code == 302
    ticket = Ticket.objects.get(account=account)
    attachment = Attachment.objects.get(ticket=ticket)
    assert attachment.filename == "shot.png"
    assert attachment.content_type == "image/png"
    assert attachment.size == len(PNG)
    assert attachment.message == ticket.messages.get()
    with default_storage.open(attachment.file.name, "rb") as stored:
        assert stored.read() == PNG
    assert "shot.png" not in attachment.file.name  # stored under a random name

    page = customer.get(reverse("support:ticket_detail", args=[ticket.reference]))
    html = page.content.decode()
    assert ">shot.png</a>" in html
    link = html.split('href="/account/support/attachments/')[1].split('"')[0]
    download = customer.get("/account/support/attachments/" + link.replace("&amp;", "&"))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PNG
    assert download["Content-Disposition"].startswith('attachment; filename="shot.png"')
    assert download["X-Content-Type-Options"] == "nosniff"


def test_reply_with_a_file_on_the_customer_page(customer, account):
    ticket = make_ticket(account=account)
    response = customer.post(
        reverse("support:ticket_reply", args=[ticket.reference]),
        {"body": "Here is the invoice", "attachments": [upload("inv.pdf", PDF, "application/pdf")]},
    )
    assert response.status_code == 302
    message = ticket.messages.get(body="Here is the invoice")
    assert [a.filename for a in message.attachments.all()] == ["inv.pdf"]


@pytest.mark.parametrize(
    ("file", "error"),
    [
        (upload("big.png", PNG + b"x" * 200), "larger than"),
        (upload("run.exe", b"MZ\x90\x00", "application/x-msdownload"), "not accepted"),
        (upload("fake.png", b"GIF89a not a png", "image/png"), "is not a image/png file"),
        (upload("empty.txt", b"", "text/plain"), "empty"),
    ],
)
def test_a_refused_file_opens_no_ticket(customer, account, settings, file, error):
    settings.SUPPORT_ATTACHMENT_MAX_BYTES = 100
    response = open_with(customer, file)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Ticket.objects.filter(account=account).exists()
    assert not Attachment.objects.exists()


def test_too_many_files_are_refused(customer, account, settings):
    settings.SUPPORT_ATTACHMENT_MAX_COUNT = 2
    response = open_with(customer, upload("a.png"), upload("b.png"), upload("c.png"))
    assert response.status_code == 400
    assert "At most 2 files" in response.content.decode()
    assert not Ticket.objects.filter(account=account).exists()


# --- signed links and the tenant wall ----------------------------------------------------------


@pytest.fixture
def stored(account):
    ticket = make_ticket(account=account)
    message = ticket.messages.get()
    [attachment] = services.store_attachments(
        ticket=ticket, message=message, files=[IncomingFile("shot.png", "image/png", PNG)]
    )
    return attachment


def page_link(attachment):
    from support.attachments import download_url

    return download_url(attachment)


def test_a_tampered_or_missing_token_is_not_found(customer, stored):
    url = reverse("support:attachment_download", args=[stored.pk])
    assert customer.get(url).status_code == 404
    assert customer.get(url + "?token=" + "x" * 40).status_code == 404
    good = page_link(stored)
    assert customer.get(good[:-3] + "abc").status_code == 404


def test_a_link_expires(customer, stored, settings, monkeypatch):
    settings.SUPPORT_ATTACHMENT_LINK_MINUTES = 15
    link = page_link(stored)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 16 * 60)
    response = customer.get(link)
    assert response.status_code == 410
    assert "expired" in response.content.decode()


def test_another_account_cannot_download_even_with_the_link(client, stored):
    client.force_login(AccountFactory().user)
    assert client.get(page_link(stored)).status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, stored):
    response = client.get(page_link(stored))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_files_on_internal_notes_stay_with_agents(client, agent, account):
    ticket = make_ticket(account=account)
    note = services.add_message(
        ticket=ticket,
        body="Log file from the server",
        author=agent,
        author_kind=TicketMessage.Author.AGENT,
        internal=True,
        files=[IncomingFile("server.log", "text/plain", b"error at line 3")],
    )
    attachment = note.attachments.get()
    client.force_login(account.user)
    assert client.get(page_link(attachment)).status_code == 404
    page = client.get(reverse("support:ticket_detail", args=[ticket.reference]))
    assert "server.log" not in page.content.decode()
    client.force_login(agent)
    assert client.get(page_link(attachment)).status_code == 200


# --- API ----------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_api_message_with_attachment_and_download(api, account, other_api):
    ticket = make_ticket(account=account)
    response = api.post(
        f"support/tickets/{ticket.reference}/messages",
        {
            "body": "Invoice attached",
            "attachments": [
                {
                    "filename": "inv.pdf",
                    "content_type": "application/pdf",
                    "content_base64": b64(PDF),
                }
            ],
        },
    )
    assert response.status_code == 201, response.content
    [out] = response.json()["attachments"]
    assert out["filename"] == "inv.pdf" and out["size"] == len(PDF)
    download = api.get(out["url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == PDF
    assert other_api.get(out["url"]).status_code == 404
    thread = api.get(f"support/tickets/{ticket.reference}").json()["messages"]
    assert [a["filename"] for m in thread for a in m["attachments"]] == ["inv.pdf"]


@pytest.mark.parametrize(
    "attachment",
    [
        {"filename": "x.pdf", "content_type": "application/pdf", "content_base64": "***"},
        {"filename": "x.pdf", "content_type": "application/pdf", "content_base64": b64(b"no pdf")},
        {"filename": "x.sh", "content_type": "text/x-shellscript", "content_base64": b64(b"ls")},
        {"filename": "x.pdf", "content_type": "application/pdf"},
    ],
)
def test_api_refuses_bad_files_with_422_and_stores_nothing(api, account, attachment):
    ticket = make_ticket(account=account)
    response = api.post(
        f"support/tickets/{ticket.reference}/messages",
        {"body": "with a file", "attachments": [attachment]},
    )
    assert response.status_code == 422
    assert not ticket.messages.filter(body="with a file").exists()
    assert not Attachment.objects.exists()


def test_api_ticket_opened_with_a_file(api, account):
    response = api.post(
        "support/tickets",
        {
            "subject": "Chart broken",
            "description": "See file",
            "attachments": [
                {"filename": "s.png", "content_type": "image/png", "content_base64": b64(PNG)}
            ],
        },
    )
    assert response.status_code == 201
    assert response.json()["messages"][0]["attachments"][0]["filename"] == "s.png"


# --- inbound email ---------------------------------------------------------------------------


def email_with(*files, sender="jane@example.com"):
    msg = EmailMessage()
    msg["From"] = sender
    msg["Subject"] = "With files"
    msg["Message-ID"] = "<files-1@mail.example.com>"
    msg.set_content("See attached")
    for name, maintype, subtype, data in files:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return f"Authentication-Results: {MTA}; dmarc=pass\r\n".encode() + bytes(msg)


def test_inbound_attachments_are_stored_and_bad_ones_noted(settings):
    settings.INBOUND_AUTHSERV_ID = MTA
    result = services.ingest_email(
        raw=email_with(
            ("invoice.pdf", "application", "pdf", PDF),
            ("virus.exe", "application", "x-msdownload", b"MZ\x90"),
        )
    )
    message = result.ticket.messages.get()
    assert [a.filename for a in message.attachments.all()] == ["invoice.pdf"]
    assert message.body.startswith("See attached")
    assert "[attachment virus.exe not stored:" in message.body
    with default_storage.open(message.attachments.get().file.name, "rb") as stored:
        assert stored.read() == PDF


def test_attachments_follow_their_messages_in_a_merge(account):
    first = make_ticket(account=account)
    second = make_ticket(account=account)
    message = second.messages.get()
    services.store_attachments(
        ticket=second, message=message, files=[IncomingFile("a.png", "image/png", PNG)]
    )
    services.merge_tickets(source=second, target=first)
    assert Attachment.objects.get().ticket_id == first.pk


# --- export and erasure -----------------------------------------------------------------------


def test_export_lists_the_files_but_not_those_on_internal_notes(stored, account, agent):
    services.add_message(
        ticket=stored.ticket,
        body="note",
        author=agent,
        author_kind=TicketMessage.Author.AGENT,
        internal=True,
        files=[IncomingFile("secret.txt", "text/plain", b"internal")],
    )
    export = privacy.EXPORT_TYPES["ticket_attachments"]
    day = stored.ticket.created_at.date()
    header, rows = export(account, day, day)
    rows = list(rows)
    assert header == [
        "reference",
        "message_at",
        "message_from",
        "filename",
        "content_type",
        "size_bytes",
        "sha256",
    ]
    assert len(rows) == 1
    assert rows[0][0] == stored.ticket.reference
    assert rows[0][2:6] == ("you", "shot.png", "image/png", len(PNG))
    assert rows[0][6] == "b97d4cf08caa48c1fb0c713947e5c95506e5ef04f0eb9f2385fcc632701446cb"


def test_files_are_erased_with_the_account(
    stored, account, agent, django_capture_on_commit_callbacks
):
    name = stored.file.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        results = {r.category: r.count for r in privacy.erase_account(account, actor=agent)}
    assert results["support attachments"] == 1
    assert not Attachment.objects.exists()
    assert not default_storage.exists(name)


def test_api_download_needs_credentials(stored):
    from support.api import api_download_url

    assert ApiClient(None).get(api_download_url(stored)).status_code == 401
    staff_link = api_download_url(stored)
    assert ApiClient(token_for(AccountFactory().user)).get(staff_link).status_code == 404
