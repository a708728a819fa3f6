"""Invoices as PDF downloads (a well-formed PDF with the invoice's figures), tenant-walled, and
a receipt email with the PDF after each successful charge."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from opsplatform.models import Account
from tests.factories import AccountFactory
from tests.userflows.factories import (
    InvoiceFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
    plan,
)
from userflows.billing.base import PaymentDeclined
from userflows.invoice_pdf import render_invoice_pdf
from userflows.models import Invoice
from userflows.services import billing

ISSUED = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def check_structure(pdf: bytes) -> bytes:
    """What a PDF reader relies on: the header, every xref offset landing on its object, the
    startxref landing on the table, the stream's length. Returns the page's content stream."""
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref\n")
    table = pdf[startxref:].split(b"trailer")[0].splitlines()
    count = int(table[1].split()[1])
    entries = table[3 : 2 + count]
    assert len(entries) == count - 1
    for number, entry in enumerate(entries, start=1):
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj\n" % number), number
    length = int(re.search(rb"/Length (\d+) >>\nstream\n", pdf).group(1))
    start = re.search(rb"/Length \d+ >>\nstream\n", pdf).end()
    assert pdf[start + length : start + length + 10] == b"\nendstream"
    return pdf[start : start + length]


def shown_text(content: bytes) -> list[str]:
    return [
        s.replace(b"\\(", b"(").replace(b"\\)", b")").decode("cp1252")
        for s in re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", content)
    ]


def test_the_pdf_is_well_formed_and_carries_the_invoice(db):
    account = AccountFactory(name="Night Owl (Pod) Network")
    invoice = InvoiceFactory(
        account=account,
        number="INV-0000042-0003",
        description="Upgrade from Growth to Enterprise, prorated to Mar 31, 2026",
        amount_due_cents=10000,
        amount_paid_cents=10000,
        status=Invoice.Status.PAID,
        period_start=ISSUED,
        period_end=ISSUED + dt.timedelta(days=30),
        issued_at=ISSUED,
        due_at=ISSUED,
        paid_at=ISSUED,
        bill_to_name="Night Owl (Pod) Network",
        bill_to_email="owner@example.test",
        bill_to_country="DE",
    )

    pdf = render_invoice_pdf(invoice, seller_email="billing@opsplatform.test")

    text = shown_text(check_structure(pdf))
    assert "Invoice INV-0000042-0003" in text
    assert "Paid" in text and "Night Owl (Pod) Network" in text
    assert "owner@example.test" in text and "DE" in text
    assert "billing@opsplatform.test" in text
    assert text.count("$100.00") == 3  # the line, the total, paid
    assert "$0.00" in text  # amount due
    assert "Paid on Mar 1, 2026" in text
    assert "Mar 1, 2026 - Mar 31, 2026" in text


def test_the_pdf_download_is_tenant_walled(client, account, other_account):
    mine = InvoiceFactory(account=account, number="INV-MINE-1")
    theirs = InvoiceFactory(account=other_account, number="INV-THEIRS-1")
    client.force_login(account.user)

    own = client.get(reverse("userflows:invoice_pdf", args=[mine.pk]))
    other = client.get(reverse("userflows:invoice_pdf", args=[theirs.pk]))

    assert own.status_code == 200 and own["Content-Type"] == "application/pdf"
    assert own["Content-Disposition"] == 'attachment; filename="invoice-INV-MINE-1.pdf"'
    assert "Invoice INV-MINE-1" in shown_text(check_structure(own.content))
    assert other.status_code == 404
    assert b"INV-THEIRS-1" not in other.content


def test_the_invoice_page_and_the_list_link_the_pdf(client, account):
    invoice = InvoiceFactory(account=account)
    client.force_login(account.user)
    href = reverse("userflows:invoice_pdf", args=[invoice.pk])

    assert href in client.get(reverse("userflows:invoice", args=[invoice.pk])).content.decode()
    assert href in client.get("/account/billing/").content.decode()


def test_an_upgrade_charge_sends_a_receipt_with_the_pdf(
    account, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(timezone, "now", lambda: ISSUED + dt.timedelta(days=10))
    Account.objects.filter(pk=account.pk).update(plan="growth")
    PaymentMethodFactory(account=account)
    SubscriptionFactory(
        account=account,
        plan=plan("growth"),
        current_period_start=ISSUED,
        current_period_end=ISSUED + dt.timedelta(days=30),
    )

    with django_capture_on_commit_callbacks(execute=True):
        billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    invoice = Invoice.objects.get(account=account)
    (receipt,) = [m for m in mail.outbox if m.subject.startswith("Receipt")]
    assert receipt.subject == f"Receipt for invoice {invoice.number}"
    assert receipt.to == [account.user.email]
    assert "we received $100.00" in receipt.body
    ((name, body, mimetype),) = receipt.attachments
    assert (name, mimetype) == (f"invoice-{invoice.number}.pdf", "application/pdf")
    assert f"Invoice {invoice.number}" in shown_text(check_structure(body))


def test_a_declined_charge_sends_no_receipt(
    account, monkeypatch, django_capture_on_commit_callbacks
):
    Account.objects.filter(pk=account.pk).update(plan="growth")
    PaymentMethodFactory(account=account, provider_reference="pm_card_chargeDeclined", last4="0002")
    SubscriptionFactory(account=account, plan=plan("growth"))

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PaymentDeclined):
        billing.change_plan(account=account, plan_code="enterprise", actor=account.user)

    assert not [m for m in mail.outbox if m.subject.startswith("Receipt")]


def test_a_renewal_charge_sends_a_receipt(account, django_capture_on_commit_callbacks):
    PaymentMethodFactory(account=account)
    now = timezone.now()
    SubscriptionFactory(
        account=account,
        current_period_start=now - dt.timedelta(days=31),
        current_period_end=now - dt.timedelta(minutes=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        billing.run_billing_cycle(now=now)

    invoice = Invoice.objects.get(account=account, status=Invoice.Status.PAID)
    (receipt,) = [m for m in mail.outbox if m.subject.startswith("Receipt")]
    assert receipt.subject == f"Receipt for invoice {invoice.number}"
    assert receipt.attachments[0][0] == f"invoice-{invoice.number}.pdf"
