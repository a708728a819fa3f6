import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD
from tests.userflows.factories import DeletionRequestFactory
from userflows.models import DeletionRequest

PAGE = "/account/delete/"


@pytest.fixture
def customer(client, account):
    client.force_login(account.user)
    return client


def test_the_page_explains_the_consequences(customer, settings):
    html = customer.get(PAGE).content.decode()

    assert f"grace period of {settings.DELETION_GRACE_DAYS} days" in html
    assert "Invoices are kept" in html and "Type DELETE to confirm" in html


@pytest.mark.parametrize("typed", ["", "delete", "DELET", "yes"])
def test_the_word_delete_must_be_typed(customer, typed):
    response = customer.post(PAGE, {"confirm": typed})

    assert response.status_code == 422
    assert not DeletionRequest.objects.exists()


def test_scheduling_shows_the_date_a_banner_everywhere_and_a_cancel_button(customer, account):
    response = customer.post(PAGE, {"confirm": "DELETE", "reason": "Taking a break"})

    request = DeletionRequest.objects.get(account=account)
    date = request.scheduled_for.strftime("%B %-d, %Y")
    assert response.status_code == 302
    for path in (PAGE, "/account/", "/account/exports/", "/account/billing/"):
        html = customer.get(path).content.decode()
        assert f"scheduled for deletion on {date}" in html, path
    page = customer.get(PAGE).content.decode()
    assert "Cancel the deletion" in page and "Delete my account" not in page


def test_cancelling_from_the_page_removes_the_banner(customer, account):
    DeletionRequestFactory(account=account)

    response = customer.post(reverse("userflows:delete_cancel"), follow=True)

    html = response.content.decode()
    assert "The deletion was canceled" in html
    assert "scheduled for deletion" not in html
    assert DeletionRequest.objects.get().status == "canceled"


def test_cancelling_with_nothing_scheduled_is_a_message(customer):
    response = customer.post(reverse("userflows:delete_cancel"), follow=True)

    assert "There is no scheduled deletion to cancel." in response.content.decode()


def test_immediate_deletion_needs_the_password_again(customer, account):
    missing = customer.post(PAGE, {"confirm": "DELETE", "immediate": "on"})
    wrong = customer.post(PAGE, {"confirm": "DELETE", "immediate": "on", "password": "x"})

    assert "Enter your password" in missing.content.decode()
    assert "That password is not correct." in wrong.content.decode()
    assert not DeletionRequest.objects.exists()


def test_immediate_deletion_signs_out_and_erases(
    customer, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = customer.post(
            PAGE, {"confirm": "DELETE", "immediate": "on", "password": PASSWORD}
        )

    assert "Your account is being deleted" in response.content.decode()
    assert DeletionRequest.objects.get().status == "completed"
    assert customer.get("/account/").status_code == 302  # signed out


def test_another_accounts_deletion_is_invisible(customer, other_account):
    theirs = DeletionRequestFactory(
        account=other_account, scheduled_for=timezone.now() + dt.timedelta(days=9)
    )

    html = customer.get(PAGE).content.decode()
    customer.post(reverse("userflows:delete_cancel"))

    assert "scheduled for deletion" not in html
    theirs.refresh_from_db()
    assert theirs.status == "scheduled"
