"""Every customer form, fed hostile input, answers with a page or a redirect — never a 500 —
and another account's objects stay out of reach (404)."""

import pytest
from django.apps import apps
from django.test import Client

from tests.factories import AccountFactory
from tests.support.factories import make_ticket
from tests.userflows.factories import ExportRequestFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

FIELDS = [
    "subject",
    "description",
    "priority",
    "body",
    "status",
    "notes",
    "rating",
    "comment",
    "format",
    "data_types",
    "date_from",
    "date_to",
    "payment_method_id",
    "reason",
    "details",
    "at_period_end",
    "when",
    "confirm",
    "confirmation",
    "plan",
    "immediate",
    "password",
    "label",
]
HOSTILE = {
    "empty": {},
    "nul": dict.fromkeys(FIELDS, "a\x00b"),
    "huge": dict.fromkeys(FIELDS, "x" * 200_000),
    "negative": dict.fromkeys(FIELDS, "-1"),
    "bad date": dict.fromkeys(FIELDS, "2026-02-30"),
    "lists": {key: ["a", "b", "c"] for key in FIELDS},
    "markup": dict.fromkeys(FIELDS, "<script>alert(1)</script>"),
    "unicode": dict.fromkeys(FIELDS, "\udcff\u202e\ufeff"),
}


@pytest.fixture
def customer():
    account = AccountFactory()
    client = Client()
    client.force_login(account.user)
    return account, client


def post_urls(ticket_ref: str) -> list[str]:
    return [
        "/account/support/new/",
        f"/account/support/{ticket_ref}/reply/",
        f"/account/support/{ticket_ref}/status/",
        f"/account/support/{ticket_ref}/rate/",
        "/account/exports/",
        "/account/billing/payment-method/",
        "/account/billing/cancel/",
        "/account/billing/resume/",
        "/account/billing/plan/",
        "/account/delete/",
        "/account/delete/cancel/",
        "/account/tokens/",
    ]


@pytest.mark.parametrize("payload_name", list(HOSTILE))
def test_hostile_form_posts_never_give_a_server_error(customer, payload_name):
    account, client = customer
    ticket = make_ticket(account=account)
    payload = {
        k: (
            v.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            if isinstance(v, str)
            else v
        )
        for k, v in HOSTILE[payload_name].items()
    }

    before = row_counts()

    statuses = {url: client.post(url, payload).status_code for url in post_urls(ticket.reference)}

    assert all(code < 500 for code in statuses.values()), statuses
    if payload_name in REFUSED_EVERYWHERE:
        assert row_counts() == before, "a refused form wrote something"


# Payloads no form may accept (every field carries a NUL, or is far over any length limit).
REFUSED_EVERYWHERE = {"nul", "huge"}
SESSION_TABLES = {"django_session", "opsplatform_usersession"}


def row_counts() -> dict[str, int]:
    """Rows in every table, history tables included: a refused request must change none."""
    return {
        model._meta.db_table: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.db_table not in SESSION_TABLES and model._meta.managed
    }


@pytest.mark.parametrize(
    "reference",
    ["SUP-\x00", "x" * 300, "SUP-999999999999999999999", "../../etc/passwd", "SUP-000000"],
)
def test_garbage_ticket_references_answer_404(customer, reference):
    _, client = customer

    assert client.get(f"/account/support/{reference}/").status_code == 404
    assert client.post(f"/account/support/{reference}/reply/", {"body": "hi"}).status_code == 404


def test_another_accounts_objects_answer_404_on_every_page(customer):
    _, client = customer
    other = AccountFactory()
    theirs = make_ticket(account=other, subject="Their secret ticket")
    invoice = InvoiceFactory(account=other)
    export = ExportRequestFactory(account=other)

    pages = [
        f"/account/support/{theirs.reference}/",
        f"/account/billing/invoices/{invoice.id}/",
        f"/account/exports/{export.id}/status/",
    ]
    posts = [
        f"/account/support/{theirs.reference}/reply/",
        f"/account/support/{theirs.reference}/status/",
        f"/account/support/{theirs.reference}/rate/",
    ]

    assert [client.get(url).status_code for url in pages] == [404, 404, 404]
    assert [
        client.post(url, {"body": "hi", "status": "closed", "rating": "5"}).status_code
        for url in posts
    ] == [404, 404, 404]
    theirs.refresh_from_db()
    assert theirs.status == "new"
    assert theirs.messages.count() == 1


def test_signed_out_visitors_are_sent_to_login_from_every_page():
    client = Client()
    account = AccountFactory()
    ticket = make_ticket(account=account)

    pages = [
        "/account/",
        "/account/tokens/",
        "/account/support/",
        "/account/support/new/",
        f"/account/support/{ticket.reference}/",
        "/account/exports/",
        "/account/billing/",
        "/account/delete/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url
    for url in post_urls(ticket.reference):
        response = client.post(url, {"body": "hi"})
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/"), url
    assert ticket.messages.count() == 1
