import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import ApiClient
from tests.factories import PASSWORD, staff_in, token_for
from tests.userflows.factories import DeletionRequestFactory
from userflows.models import DeletionRequest


def test_requesting_answers_202_with_the_scheduled_date(api, account, settings):
    response = api.post("deletion", {"reason": "Closing the show"})

    assert response.status_code == 202
    data = response.json()
    assert data["status"] == "scheduled" and data["immediate"] is False
    scheduled = dt.datetime.fromisoformat(data["scheduled_for"])
    expected = timezone.now() + dt.timedelta(days=settings.DELETION_GRACE_DAYS)
    assert abs((scheduled - expected).total_seconds()) < 60
    assert api.get("deletion").json()["items"][0]["id"] == data["id"]
    assert api.get(f"deletion/{data['id']}").json()["reason"] == "Closing the show"


def test_a_second_request_is_409(api, account):
    api.post("deletion", {})

    response = api.post("deletion", {"reason": "again"})

    assert response.status_code == 409
    assert DeletionRequest.objects.count() == 1


def test_cancelling_through_the_api(api, other_api, account):
    created = api.post("deletion", {}).json()

    assert other_api.post(f"deletion/{created['id']}/cancel").status_code == 404
    cancelled = api.post(f"deletion/{created['id']}/cancel")
    again = api.post(f"deletion/{created['id']}/cancel")

    assert cancelled.json()["status"] == "canceled"
    assert again.status_code == 409


def test_immediate_deletion_needs_the_password(api, account, django_capture_on_commit_callbacks):
    missing = api.post("deletion", {"immediate": True})
    wrong = api.post("deletion", {"immediate": True, "password": "nope"})
    assert (missing.status_code, wrong.status_code) == (403, 403)  # one rule, one answer
    assert not DeletionRequest.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("deletion", {"immediate": True, "password": PASSWORD})

    assert response.status_code == 202
    request = DeletionRequest.objects.get()
    assert (request.status, request.immediate) == ("completed", True)
    assert request.certificate is not None


def test_staff_delete_any_account_with_permission(account, django_capture_on_commit_callbacks):
    admin = ApiClient(token_for(staff_in(is_superuser=True)))
    agent = ApiClient(token_for(staff_in("support_l4")))

    refused = agent.post("deletion", {"account_id": account.pk, "immediate": True})
    no_account = admin.post("deletion", {"immediate": True})
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post("deletion", {"account_id": account.pk, "immediate": True})

    assert (refused.status_code, no_account.status_code, done.status_code) == (403, 422, 202)
    assert done.json()["status"] == "scheduled"  # accepted; the worker runs it
    after = admin.get(f"deletion/{done.json()['id']}").json()
    assert after["status"] == "completed" and after["certificate"] is not None


def test_customers_cannot_name_another_account(api, other_account):
    response = api.post("deletion", {"account_id": other_account.pk})

    assert response.status_code == 422
    assert not DeletionRequest.objects.exists()


def test_deletion_requests_are_tenant_walled(api, other_account):
    theirs = DeletionRequestFactory(account=other_account)

    assert api.get(f"deletion/{theirs.pk}").status_code == 404
    assert api.post(f"deletion/{theirs.pk}/cancel").status_code == 404
    assert api.get("deletion").json()["items"] == []
    assert api.get("deletion", {"account_id": other_account.pk}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "scheduled"


def test_compliance_reads_deletions(account):
    request = DeletionRequestFactory(account=account)
    compliance = ApiClient(token_for(staff_in("compliance")))

    assert compliance.get(f"deletion/{request.pk}").status_code == 200
    assert compliance.post(f"deletion/{request.pk}/cancel").status_code == 403


@pytest.mark.parametrize(
    "payload",
    [
        {"reason": "x" * 1001},
        {"reason": "a\x00b"},
        {"immediate": "yes please"},
        {"reason": 5},
        {"surprise": True},
        ["DELETE"],
    ],
)
def test_malformed_deletion_requests_are_422(api, payload):
    response = api.post("deletion", payload)

    assert response.status_code == 422
    assert not DeletionRequest.objects.exists()


@pytest.mark.parametrize("count", [1, 50])
def test_listing_deletions_costs_the_same_at_any_size(db, count, django_assert_max_num_queries):
    staff = ApiClient(token_for(staff_in(is_superuser=True)))
    DeletionRequestFactory.create_batch(count)

    with django_assert_max_num_queries(8):
        response = staff.get("deletion", {"limit": 50})

    assert response.json()["count"] == count
