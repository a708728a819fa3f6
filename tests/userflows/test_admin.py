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
from userflows.models import DeletionCertificate, DeletionRequest, Plan, Subscription
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

    admin_client.post(url, {"action": "run_now", "_selected_action": [run.pk], "confirm": "yes"})
    admin_client.post(url, {"action": "cancel", "_selected_action": [keep.pk]})

    run.refresh_from_db()
    keep.refresh_from_db()
    assert (run.status, keep.status) == ("completed", "canceled")
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
        "userflows.requeue_stalled_exports",
        "userflows.run_billing_cycle",
    }


# --- Unfold: confirmation pages, buttons on the change page, badges ---------------------------


def test_run_now_asks_first_and_deletes_only_on_confirm(admin_client):
    deletion = DeletionRequestFactory()
    url = reverse("admin:userflows_deletionrequest_changelist")

    asked = admin_client.post(url, {"action": "run_now", "_selected_action": [deletion.pk]})

    assert asked.status_code == 200
    assert "Delete these accounts now?" in asked.content.decode()
    deletion.refresh_from_db()
    assert deletion.status == "scheduled"
    assert not DeletionCertificate.objects.exists()


def test_execute_now_button_asks_then_deletes(admin_client):
    deletion = DeletionRequestFactory()
    button = reverse("admin:userflows_deletionrequest_execute_now", args=[deletion.pk])
    change = reverse("admin:userflows_deletionrequest_change", args=[deletion.pk])

    assert f'href="{button}"' in admin_client.get(change).content.decode()
    asked = admin_client.get(button)
    deletion.refresh_from_db()
    assert asked.status_code == 200 and deletion.status == "scheduled"
    assert f"Delete {deletion.account} now?" in asked.content.decode()

    done = admin_client.post(button, {"confirm": "yes"})

    assert done.status_code == 302 and done["Location"] == change
    deletion.refresh_from_db()
    assert deletion.status == "completed"
    assert DeletionCertificate.objects.filter(deletion=deletion).exists()
    assert admin_client.get(button).status_code == 404  # nothing pending any more


def test_cancel_deletion_button(admin_client):
    deletion = DeletionRequestFactory()
    button = reverse("admin:userflows_deletionrequest_cancel_this", args=[deletion.pk])

    admin_client.get(button)
    deletion.refresh_from_db()
    assert deletion.status == "scheduled"
    admin_client.post(button, {"confirm": "yes"})
    deletion.refresh_from_db()
    assert deletion.status == "canceled"


def test_cancel_subscription_button_needs_a_reason(admin_client):
    subscription = SubscriptionFactory()
    button = reverse("admin:userflows_subscription_cancel_subscription", args=[subscription.pk])

    missing = admin_client.post(button, {"confirm": "yes", "reason": ""})
    subscription.refresh_from_db()
    assert missing.status_code == 200 and "This field is required" in missing.content.decode()
    assert subscription.cancel_at_period_end is False

    admin_client.post(button, {"confirm": "yes", "reason": "too_expensive", "comment": "by phone"})

    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is True
    assert subscription.cancellation_reason == "too_expensive"
    assert subscription.history.first().history_user.is_superuser


def test_staff_without_the_permission_cannot_cancel_a_subscription(client, db):
    # Operations may (they act on a customer's behalf, issue 12); compliance only reads.
    subscription = SubscriptionFactory()
    client.force_login(staff_in("compliance"))
    button = reverse("admin:userflows_subscription_cancel_subscription", args=[subscription.pk])

    response = client.post(button, {"confirm": "yes", "reason": "too_expensive"})

    assert response.status_code == 403
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end is False


def test_status_columns_are_coloured_badges(admin_client):
    SubscriptionFactory(status="past_due")

    page = admin_client.get(reverse("admin:userflows_subscription_changelist")).content.decode()

    cell = page[page.index("Past due") - 400 : page.index("Past due")]
    assert "bg-orange-100" in cell and "&lt;span" not in page
    change = admin_client.get(
        reverse("admin:userflows_subscription_change", args=[Subscription.objects.get().pk])
    ).content.decode()
    assert "&lt;span" not in change


def test_a_plans_price_change_in_admin_leaves_a_history_row(admin_client):
    starter = Plan.objects.get(code="starter")
    url = reverse("admin:userflows_plan_change", args=[starter.pk])

    response = admin_client.post(
        url,
        {
            "name": "Starter",
            "price_cents": 2100,
            "currency": "usd",
            "stripe_price_id": "",
            "sort_order": 20,
        },
    )

    assert response.status_code == 302
    latest = starter.history.first()
    assert (latest.price_cents, latest.history_user.is_superuser) == (2100, True)
    plan_history = reverse("admin:userflows_plan_history", args=[starter.pk])
    assert admin_client.get(plan_history).status_code == 200
    method = PaymentMethodFactory()
    history = reverse("admin:userflows_paymentmethod_history", args=[method.pk])
    assert admin_client.get(history).status_code == 200
