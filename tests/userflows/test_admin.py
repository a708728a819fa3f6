import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from tests.factories import AccountFactory, staff_in
from tests.userflows.factories import (
    DeletionRequestFactory,
    ExportRequestFactory,
    InvoiceFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
)
from userflows.models import DeletionCertificate, DeletionRequest
from userflows.services import billing


@pytest.fixture
def admin_client(client, db):
    client.force_login(staff_in(is_superuser=True))
    return client


def make_rows(count):
    for _ in range(count):
        account = AccountFactory()
        SubscriptionFactory(
            account=account, cancellation_reason="too_expensive", cancel_at_period_end=True
        )
        PaymentMethodFactory(account=account)
        InvoiceFactory(account=account)
        ExportRequestFactory(account=account)
        DeletionRequestFactory(account=account)


CHANGELISTS = [
    "exportrequest",
    "subscription",
    "invoice",
    "paymentmethod",
    "deletionrequest",
    "deletioncertificate",
    "plan",
    "providerevent",
]


@pytest.mark.parametrize("model", CHANGELISTS)
@pytest.mark.parametrize("count", [1, 50])
def test_changelists_cost_the_same_queries_at_any_size(
    admin_client, model, count, django_assert_max_num_queries
):
    make_rows(count)

    with django_assert_max_num_queries(14):
        response = admin_client.get(reverse(f"admin:userflows_{model}_changelist"))

    assert response.status_code == 200


def test_the_cancellation_reasons_summary(admin_client):
    make_rows(3)
    SubscriptionFactory(
        cancellation_reason="missing_features", status="canceled", canceled_at=timezone.now()
    )

    response = admin_client.get(reverse("admin:userflows_subscription_cancellation_reasons"))
    changelist = admin_client.get(reverse("admin:userflows_subscription_changelist"))

    html = response.content.decode()
    assert response.status_code == 200
    assert "Too expensive" in html and "75.0%" in html
    assert "Missing features" in html and "25.0%" in html
    assert "Cancellation reasons" in changelist.content.decode()
    assert (
        admin_client.get(
            reverse("admin:userflows_subscription_cancellation_reasons"), {"days": "all"}
        ).status_code
        == 200
    )


def test_the_summary_needs_the_view_permission(client, db):
    client.force_login(staff_in("support_l1"))
    refused = client.get(reverse("admin:userflows_subscription_cancellation_reasons"))
    client.force_login(staff_in("operations"))
    allowed = client.get(reverse("admin:userflows_subscription_cancellation_reasons"))

    assert (refused.status_code, allowed.status_code) == (403, 200)


def test_staff_schedule_a_deletion_from_admin(admin_client):
    account = AccountFactory()

    response = admin_client.post(
        reverse("admin:userflows_deletionrequest_add"),
        {"account": account.pk, "reason": "Asked by phone"},
    )
    duplicate = admin_client.post(
        reverse("admin:userflows_deletionrequest_add"), {"account": account.pk, "reason": "again"}
    )

    assert response.status_code == 302
    request = DeletionRequest.objects.get()
    assert (request.status, request.reason) == ("scheduled", "Asked by phone")
    assert "already has a pending deletion" in duplicate.content.decode()
    assert DeletionRequest.objects.count() == 1


def test_admin_actions_run_and_cancel_deletions(admin_client):
    run = DeletionRequestFactory()
    keep = DeletionRequestFactory()
    url = reverse("admin:userflows_deletionrequest_changelist")

    admin_client.post(url, {"action": "run_now", "_selected_action": [run.pk]})
    admin_client.post(url, {"action": "cancel", "_selected_action": [keep.pk]})

    run.refresh_from_db()
    keep.refresh_from_db()
    assert (run.status, keep.status) == ("completed", "cancelled")
    certificate = DeletionCertificate.objects.get(deletion=run)
    page = admin_client.get(
        reverse("admin:userflows_deletioncertificate_change", args=[certificate.pk])
    ).content.decode()
    assert "api tokens" in page and "Legal ground" in page


def test_customer_rows_are_read_only_in_admin(admin_client):
    export = ExportRequestFactory()

    response = admin_client.post(
        reverse("admin:userflows_exportrequest_change", args=[export.pk]), {"status": "failed"}
    )

    export.refresh_from_db()
    assert response.status_code == 403
    assert export.status == "completed"


def test_subscription_history_is_shown(admin_client):
    subscription = SubscriptionFactory()
    billing.cancel_subscription(
        account=subscription.account, reason="not_using", actor=subscription.account.user
    )

    response = admin_client.get(
        reverse("admin:userflows_subscription_history", args=[subscription.pk])
    )

    assert response.status_code == 200
    assert subscription.history.count() == 2
    assert subscription.account.user.username in response.content.decode()


def test_groups_get_their_permissions(db):
    def perms(name):
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    assert {"view_exportrequest", "view_subscription", "view_invoice"} <= perms("operations")
    assert {"view_exportrequest", "view_deletionrequest", "view_deletioncertificate"} <= perms(
        "compliance"
    )
    assert "view_deletioncertificate" not in perms("support_l1")


def test_schedules_are_registered(db):
    call_command("sync_schedules", stdout=__import__("io").StringIO())

    names = set(
        Schedule.objects.filter(name__startswith="userflows.").values_list("name", flat=True)
    )
    assert names == {
        "userflows.run_due_deletions",
        "userflows.send_deletion_reminders",
        "userflows.expire_exports",
        "userflows.run_billing_cycle",
    }
