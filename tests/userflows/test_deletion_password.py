""" "Immediate deletion needs the password" is one rule in the deletion service: the API, the
account page and admin give the same answer (a customer without their password: 403
`password_required`, nothing stored; staff need none), and admin shows the service's refusals
instead of turning them into a 403."""

import pytest
from django import forms
from django.urls import reverse

from opsplatform.errors import Forbidden
from tests.factories import PASSWORD, AccountFactory, staff_in
from userflows.admin import DeletionRequestForm
from userflows.models import DeletionRequest
from userflows.services import deletion

pytestmark = pytest.mark.django_db
PAGE = "/account/delete/"


@pytest.mark.parametrize(
    ("password", "detail"),
    [(None, "Enter your password to delete immediately."), ("", None), ("nope", None)],
)
def test_the_service_refuses_a_customers_immediate_deletion_without_the_password(
    account, password, detail
):
    with pytest.raises(Forbidden) as exc:
        deletion.request_deletion(
            account=account, actor=account.user, immediate=True, password=password
        )

    assert (exc.value.status_code, exc.value.code, exc.value.field) == (
        403,
        "password_required",
        "password",
    )
    if detail:
        assert exc.value.detail == detail
    assert not DeletionRequest.objects.exists()


def test_the_service_needs_no_password_for_a_scheduled_deletion_or_from_staff(
    account, other_account
):
    scheduled = deletion.request_deletion(account=account, actor=account.user)
    by_staff = deletion.request_deletion(
        account=other_account, actor=staff_in(is_superuser=True), immediate=True
    )

    assert (scheduled.immediate, by_staff.immediate) == (False, True)


def test_the_api_answers_403_password_required_for_missing_and_wrong(api, account):
    missing = api.post("deletion", {"immediate": True})
    wrong = api.post("deletion", {"immediate": True, "password": "nope"})

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert missing.json()["detail"] == "Enter your password to delete immediately."
    assert missing.json()["code"] == "password_required"
    assert wrong.json()["code"] == "password_required"
    assert not DeletionRequest.objects.exists()


def test_the_page_answers_403_with_the_error_at_the_password(client, account):
    client.force_login(account.user)

    missing = client.post(PAGE, {"confirm": "DELETE", "immediate": "on"})
    wrong = client.post(PAGE, {"confirm": "DELETE", "immediate": "on", "password": "x"})

    assert (missing.status_code, wrong.status_code) == (403, 403)
    assert missing.context["form"].errors["password"] == [
        "Enter your password to delete immediately."
    ]
    assert wrong.context["form"].errors["password"] == ["That password is not correct."]
    assert not DeletionRequest.objects.exists()


def test_the_right_password_deletes_at_once(api, account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("deletion", {"immediate": True, "password": PASSWORD})

    assert response.status_code == 202
    assert DeletionRequest.objects.get().status == "completed"


def test_staff_delete_immediately_from_admin_without_a_password(admin_client):
    account = AccountFactory()

    response = admin_client.post(
        reverse("admin:userflows_deletionrequest_add"),
        {"account": account.pk, "reason": "Asked by phone", "immediate": "on"},
    )

    assert response.status_code == 302
    assert DeletionRequest.objects.get().immediate is True


def test_admin_shows_the_services_refusal_instead_of_a_403(admin_client, monkeypatch):
    """A deletion scheduled between the form's check and the save: the service's 409 detail
    as a message, nothing stored (it used to be a 403 page)."""
    account = AccountFactory()
    first = deletion.request_deletion(account=account, actor=account.user)
    monkeypatch.setattr(DeletionRequestForm, "clean", forms.ModelForm.clean)

    response = admin_client.post(
        reverse("admin:userflows_deletionrequest_add"),
        {"account": account.pk, "reason": "again"},
        follow=True,
    )

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert shown == [f"A deletion is already scheduled for {first.scheduled_for:%B %-d, %Y}."]
    assert list(DeletionRequest.objects.values_list("id", flat=True)) == [first.pk]
