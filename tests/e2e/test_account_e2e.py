"""A customer who forgot their password: asks for a reset link, sets a new password, signs
in, upgrades with the price shown first, and downloads the invoice as a PDF."""

import datetime as dt
import re
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from opsplatform.models import Account
from tests.e2e.conftest import sign_in
from tests.factories import AccountFactory
from tests.userflows.factories import PaymentMethodFactory, SubscriptionFactory, plan
from userflows.models import Invoice, Subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "violet-harbour-lantern-7"


def test_forgot_password_reset_sign_in_upgrade_with_preview_download_invoice(page):
    cache.clear()
    account = AccountFactory(name="Tidepool Audio")
    Account.objects.filter(pk=account.pk).update(plan="growth")
    now = timezone.now()
    PaymentMethodFactory(account=account)
    subscription = SubscriptionFactory(
        account=account,
        plan=plan("growth"),
        current_period_start=now - dt.timedelta(days=15),
        current_period_end=now + dt.timedelta(days=15),
    )

    page.goto("/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email address").fill(account.user.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()

    (message,) = mail.outbox
    link = re.search(r"https?://\S+(/password-reset/\S+/\S+/)", message.body).group(1)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("heading", name="Your password was changed")).to_be_visible()
    page.goto(link)
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()

    sign_in(page, account.user.username, NEW_PASSWORD)
    page.wait_for_url("**/account/")
    page.get_by_role("link", name="Billing").click()
    expect(page.locator(".plan-card.current")).to_contain_text("Growth")
    page.get_by_role("button", name="Upgrade to Enterprise").click()

    preview = page.locator("#plan-preview")
    expect(preview).to_contain_text("will be charged now")
    due = re.search(r"Due now\s+\$([0-9,]+\.[0-9]{2})", preview.inner_text()).group(1)
    assert not Invoice.objects.exists()  # nothing charged before the confirmation
    assert Subscription.objects.get(pk=subscription.pk).plan.code == "growth"
    page.get_by_role("button", name=f"Confirm and pay ${due}").click()

    expect(page.get_by_text(f"You are on Enterprise now; ${due} was charged")).to_be_visible()
    expect(page.locator(".plan-card.current")).to_contain_text("Enterprise")
    invoice = Invoice.objects.get(account=account)
    assert f"{invoice.amount_paid_cents / 100:,.2f}" == due
    with page.expect_download() as info:
        page.get_by_role("link", name=f"Download invoice {invoice.number} as PDF").click()
    assert info.value.suggested_filename == f"invoice-{invoice.number}.pdf"
    body = Path(info.value.path()).read_bytes()
    assert body.startswith(b"%PDF-1.4") and f"(Invoice {invoice.number})".encode() in body
    assert f"(${due})".encode() in body
