import datetime as dt
import json
import os
from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

import opsplatform.privacy
import userflows.privacy
from opsplatform import services as core_services
from opsplatform.errors import Conflict
from opsplatform.models import (
    Account,
    ApiToken,
    Campaign,
    CampaignMetric,
    Sponsor,
    UsageEvent,
    UserSession,
)
from opsplatform.privacy import subject_reference
from tests.conftest import ApiClient
from tests.factories import PASSWORD, AccountFactory, UserFactory, staff_in
from tests.userflows.factories import (
    DeletionRequestFactory,
    ExportRequestFactory,
    PaymentMethodFactory,
    SubscriptionFactory,
)
from userflows.models import (
    DeletionCertificate,
    DeletionRequest,
    ExportRequest,
    Invoice,
    PaymentMethod,
    Subscription,
)
from userflows.services import billing, deletion, exports

FIRST, LAST = "Marguerite", "Quenneville"
EMAIL = "marguerite.quenneville@example.test"
PHONE = "+1 415 555 0142"
NEEDLES = [EMAIL, FIRST.lower(), LAST.lower(), "415 555 0142", "4155550142", "415-555-0142"]


def make_due(request: DeletionRequest) -> None:
    DeletionRequest.objects.filter(pk=request.pk).update(
        scheduled_for=timezone.now() - dt.timedelta(minutes=1)
    )


# --- request, cancel, remind ------------------------------------------------------------------


def test_requesting_schedules_after_the_grace_period_and_emails(
    account, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request = deletion.request_deletion(account=account, actor=account.user, reason="Moving on")

    expected = request.requested_at + dt.timedelta(days=settings.DELETION_GRACE_DAYS)
    assert (request.status, request.scheduled_for, request.immediate) == (
        DeletionRequest.Status.SCHEDULED,
        expected,
        False,
    )
    assert request.history.first().history_user == account.user
    assert mail.outbox[-1].to == [account.user.email]
    assert expected.strftime("%B %-d, %Y") in mail.outbox[-1].body


def test_one_pending_deletion_per_account(account):
    deletion.request_deletion(account=account, actor=account.user)

    with pytest.raises(Conflict) as caught:
        deletion.request_deletion(
            account=account, actor=account.user, immediate=True, password=PASSWORD
        )

    assert caught.value.code == "deletion_pending"
    assert DeletionRequest.objects.count() == 1


def test_cancelling_keeps_the_account_and_says_so(account, django_capture_on_commit_callbacks):
    request = deletion.request_deletion(account=account, actor=account.user)

    with django_capture_on_commit_callbacks(execute=True):
        cancelled = deletion.cancel_deletion(deletion=request, actor=account.user)

    assert (cancelled.status, cancelled.canceled_at is not None) == (
        DeletionRequest.Status.CANCELED,
        True,
    )
    assert mail.outbox[-1].subject == "Your account deletion was canceled"
    with pytest.raises(Conflict):
        deletion.cancel_deletion(deletion=request, actor=account.user)
    assert deletion.run_due_deletions(now=request.scheduled_for) == {"completed": 0, "failed": 0}


def test_reminders_go_out_once_a_few_days_before(
    account, other_account, settings, django_capture_on_commit_callbacks
):
    now = timezone.now()
    soon = DeletionRequestFactory(account=account, scheduled_for=now + dt.timedelta(days=2))
    DeletionRequestFactory(account=other_account, scheduled_for=now + dt.timedelta(days=20))
    DeletionRequestFactory(
        scheduled_for=now + dt.timedelta(days=1), status=DeletionRequest.Status.CANCELED
    )

    with django_capture_on_commit_callbacks(execute=True):
        first = deletion.send_deletion_reminders(now=now)
    second = deletion.send_deletion_reminders(now=now)

    soon.refresh_from_db()
    assert (first, second) == (1, 0)
    assert soon.reminder_sent_at == now
    assert [m.to for m in mail.outbox] == [[account.user.email]]
    assert "Reminder" in mail.outbox[0].subject
    assert soon.history.first().history_change_reason == "reminder sent"


# --- execution: nothing personal left ---------------------------------------------------------


@pytest.fixture
def person(db, settings):
    """A customer with personal data in every place the product keeps it."""
    user = UserFactory(username=EMAIL, email=EMAIL, first_name=FIRST, last_name=LAST)
    account = AccountFactory(user=user, name=f"{FIRST} {LAST} Podcast")
    account.name = f"The {LAST} Show"  # a renamed account leaves the old name in history
    account.save()
    return account


def fill_with_personal_data(account, django_capture_on_commit_callbacks) -> dict:
    user = account.user
    # A real sign-in (axes records it) and a second browser's session.
    login = Client()
    assert login.post("/login/", {"username": EMAIL, "password": PASSWORD}).status_code == 302
    Client().force_login(user)
    _, token = core_services.issue_api_token(user=user, label=f"Laptop of {EMAIL}", actor=user)
    UsageEvent.objects.create(
        account=account,
        type="profile.updated",
        occurred_at=timezone.now(),
        idempotency_key="p1",
        properties={"phone": PHONE, "contact": {"email": EMAIL}},
    )
    campaign = core_services.create_campaign(
        account=account,
        name=f"{FIRST}'s spring read",
        sponsor_name=f"{LAST} Bakery",
        starts_on=timezone.localdate() - dt.timedelta(days=3),
        ends_on=timezone.localdate() + dt.timedelta(days=3),
        deal_value=1000,
        actor=user,
    )
    CampaignMetric.objects.create(
        campaign=campaign, date=timezone.localdate(), impressions=10, clicks=1, revenue=5, spend=2
    )
    PaymentMethodFactory(account=account)
    SubscriptionFactory(account=account)
    billing.cancel_subscription(
        account=account, reason="other", actor=user, comment=f"Call {FIRST} on {PHONE}"
    )
    billing.resume_subscription(account=account, actor=user)
    billing.change_plan(account=account, plan_code="growth", actor=user)
    ended = timezone.now() - dt.timedelta(minutes=5)
    Subscription.objects.filter(account=account).update(
        current_period_start=ended - dt.timedelta(days=30), current_period_end=ended
    )
    assert billing.run_billing_cycle()["invoiced"] == 1  # an invoice naming the person
    with django_capture_on_commit_callbacks(execute=True):
        export = exports.create_export_request(
            account=account,
            requested_by=user,
            format="csv",
            data_types=["account"],
            date_from=timezone.localdate(),
            date_to=timezone.localdate(),
        )
    export.refresh_from_db()
    assert export.status == ExportRequest.Status.COMPLETED
    earlier = deletion.request_deletion(account=account, actor=user, reason=f"Mistake — {EMAIL}")
    deletion.cancel_deletion(deletion=earlier, actor=user)
    if apps.is_installed("support"):
        support = import_module("support.services")
        ticket = support.create_ticket(
            subject=f"Help for {FIRST}",
            description=f"Call me: {PHONE}",
            channel="web",
            account=account,
            requester_email=EMAIL,
            requester_name=f"{FIRST} {LAST}",
            actor=user,
        )
        support_models = import_module("support.models")
        support_models.Escalation.objects.create(
            ticket=ticket, from_level=1, to_level=2, reason="Customer asked for a manager"
        )
        support_models.CSATRating.objects.create(ticket=ticket, rating=4)
    # A token that staff deleted before the erasure: only its history remembers it.
    gone, _ = core_services.issue_api_token(user=user, label="Phone", actor=user)
    plant_admin_log(ApiToken, [gone.pk])
    gone.delete()
    planted = {model: plant_admin_log(model, ids) for model, ids in personal_objects(account)}
    assert all(planted.values()), planted  # every model holding personal data has a line
    request = deletion.request_deletion(
        account=account, actor=user, reason=f"Text me at {PHONE} when done"
    )
    make_due(request)
    return {
        "token": token,
        "export": export,
        "request": request,
        "invoices": list(
            Invoice.objects.filter(account=account).values("id", "amount_due_cents", "number")
        ),
    }


def personal_objects(account) -> list[tuple]:
    """(model, ids) of every model whose rows hold the person's data, for admin log lines."""
    from axes.models import AccessLog

    user = account.user
    found = [
        (get_user_model(), [user.pk]),
        (Account, [account.pk]),
        (Sponsor, Sponsor.objects.filter(account=account).values_list("id", flat=True)),
        (Campaign, Campaign.objects.filter(account=account).values_list("id", flat=True)),
        (ApiToken, ApiToken.objects.filter(user=user).values_list("id", flat=True)),
        (UsageEvent, UsageEvent.objects.filter(account=account).values_list("id", flat=True)),
        (UserSession, UserSession.objects.filter(user_id=user.pk).values_list("pk", flat=True)),
        (AccessLog, AccessLog.objects.filter(username=EMAIL).values_list("id", flat=True)),
    ]
    for model in (Subscription, Invoice, PaymentMethod, ExportRequest, DeletionRequest):
        found.append((model, model.objects.filter(account=account).values_list("id", flat=True)))
    if apps.is_installed("support"):
        from support.models import CSATRating, Escalation, Ticket, TicketMessage

        tickets = Ticket.objects.filter(account=account).values_list("id", flat=True)
        found.append((Ticket, tickets))
        for model in (TicketMessage, Escalation, CSATRating):
            found.append(
                (model, model.objects.filter(ticket_id__in=tickets).values_list("id", flat=True))
            )
    return found


def plant_admin_log(model, ids) -> int:
    """An admin's edit of each object, its log line naming the person as admin lines do
    (a ticket's reads "SUP-000059 <subject>")."""
    staff = staff_in(is_superuser=True)
    content_type = ContentType.objects.get_for_model(model, for_concrete_model=False)
    planted = 0
    for pk in ids:
        LogEntry.objects.create(
            user=staff,
            content_type=content_type,
            object_id=str(pk),
            object_repr=f"{model._meta.verbose_name} of {FIRST} {LAST}",
            action_flag=CHANGE,
            change_message=json.dumps(
                [{"changed": {"fields": ["Name"]}}, {"note": f"asked by {EMAIL}"}]
            ),
        )
        planted += 1
    return planted


def personal_data_hits(needles: list[str]) -> list[str]:
    """Every text-bearing column of every table (history tables too), found by introspection
    so a new app's tables are searched without anyone listing them."""
    hits = []
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            columns = [
                c.name for c in connection.introspection.get_table_description(cursor, table)
            ]
            for column in columns:
                cast = f"LOWER(CAST({qn(column)} AS TEXT))"
                where = " OR ".join([f"{cast} LIKE %s"] * len(needles))
                cursor.execute(
                    f"SELECT COUNT(*) FROM {qn(table)} WHERE {where}",
                    [f"%{n.lower()}%" for n in needles],
                )
                if cursor.fetchone()[0]:
                    hits.append(f"{table}.{column}")
    return hits


def test_after_deletion_no_table_holds_the_persons_email_names_or_phone(
    person, settings, django_capture_on_commit_callbacks
):
    bystander = AccountFactory(name="Unrelated Show")
    fill_with_personal_data(person, django_capture_on_commit_callbacks)
    assert personal_data_hits(NEEDLES)  # the search does find the data before deletion

    with django_capture_on_commit_callbacks(execute=True):
        outcome = deletion.run_due_deletions()

    assert outcome == {"completed": 1, "failed": 0}
    assert personal_data_hits(NEEDLES) == []
    bystander.refresh_from_db()
    assert bystander.name == "Unrelated Show"


def test_after_deletion_sessions_tokens_and_files_are_gone_and_invoices_kept(
    person, settings, django_capture_on_commit_callbacks
):
    facts = fill_with_personal_data(person, django_capture_on_commit_callbacks)
    user_id = person.user_id
    assert UserSession.objects.filter(user_id=user_id).exists()
    other_sessions = UserSession.objects.exclude(user_id=user_id).count()

    with django_capture_on_commit_callbacks(execute=True):
        deletion.run_due_deletions()

    assert not any(
        s.get_decoded().get("_auth_user_id") == str(user_id) for s in UserSession.objects.all()
    )
    assert UserSession.objects.count() == other_sessions
    assert not ApiToken.objects.filter(user_id=user_id).exists()
    assert ApiToken.history.filter(user_id=user_id).count() == 0
    assert ApiClient(facts["token"]).get("me").status_code == 401
    assert Client().post("/login/", {"username": EMAIL, "password": PASSWORD}).status_code == 200
    user = get_user_model().objects.get(pk=user_id)
    assert (user.is_active, user.has_usable_password(), user.email) == (False, False, "")
    assert not UsageEvent.objects.filter(account=person).exists()
    assert not PaymentMethod.objects.filter(account=person).exists()
    assert os.listdir(settings.MEDIA_ROOT / "exports" / str(person.pk)) == []
    export = ExportRequest.objects.get(pk=facts["export"].pk)
    assert (export.status, export.file.name) == (ExportRequest.Status.EXPIRED, "")
    kept = list(Invoice.objects.filter(account=person).values("id", "amount_due_cents", "number"))
    assert kept == facts["invoices"] and kept
    reference = subject_reference(person.pk)
    assert set(
        Invoice.objects.filter(account=person).values_list(
            "customer_reference", "bill_to_name", "bill_to_email"
        )
    ) == {(reference, "", "")}
    subscription = Subscription.objects.get(account=person)
    assert subscription.status == Subscription.Status.CANCELED
    assert Campaign.objects.filter(account=person).count() == 1  # figures kept, anonymized
    assert mail.outbox[-1].to == [EMAIL]
    assert mail.outbox[-1].subject == "Your account has been deleted"


def test_the_certificate_lists_what_happened_without_personal_data(
    person, django_capture_on_commit_callbacks
):
    facts = fill_with_personal_data(person, django_capture_on_commit_callbacks)

    deletion.run_due_deletions()

    request = DeletionRequest.objects.get(pk=facts["request"].pk)
    certificate = DeletionCertificate.objects.get(deletion=request)
    categories = {c["category"]: c for c in certificate.categories}
    assert categories["invoices"]["action"] == "kept"
    assert "tax law" in categories["invoices"]["legal_ground"]
    assert categories["api tokens"] == {
        "category": "api tokens",
        "action": "erased",
        "count": 1,
        "legal_ground": "",
    }
    assert categories["sessions"]["count"] == 2
    assert categories["usage events"]["count"] == 1
    assert categories["export files"]["count"] == 1
    assert all(c["action"] != "kept" or c["legal_ground"] for c in certificate.categories)
    assert certificate.subject_reference == subject_reference(person.pk)
    text = json.dumps(certificate.categories) + certificate.subject_reference
    assert not [n for n in NEEDLES if n.lower() in text.lower()]
    assert request.status == DeletionRequest.Status.COMPLETED and request.reason == ""
    audit = request.history.first()
    assert audit.history_change_reason == f"completed: certificate {certificate.reference}"


def test_running_a_completed_deletion_again_changes_nothing(account):
    request = DeletionRequestFactory(account=account)
    make_due(request)
    deletion.run_due_deletions()
    rows = DeletionRequest.history.count()

    again = deletion.execute_deletion(deletion_id=request.pk)

    assert again.status == DeletionRequest.Status.COMPLETED
    assert DeletionCertificate.objects.count() == 1
    assert DeletionRequest.history.count() == rows


# --- execution: all or nothing ----------------------------------------------------------------


def test_a_failing_eraser_rolls_everything_back_and_is_retried(
    account, monkeypatch, django_capture_on_commit_callbacks
):
    PaymentMethodFactory(account=account)
    UsageEvent.objects.create(
        account=account, type="x", occurred_at=timezone.now(), idempotency_key="k"
    )
    request = DeletionRequestFactory(account=account, reason="bye")
    make_due(request)
    email = account.user.email

    def broken(account, *, actor):
        raise RuntimeError(f"cannot reach {account.user.email}")

    # The core's eraser runs last: the apps before it have already done their part.
    monkeypatch.setattr(opsplatform.privacy, "erase_account", broken)
    assert deletion.run_due_deletions() == {"completed": 0, "failed": 1}

    request.refresh_from_db()
    assert request.status == DeletionRequest.Status.FAILED and request.attempts == 1
    assert "'opsplatform' failed (RuntimeError)" in request.error
    assert email not in request.error  # the reason never repeats personal data
    assert PaymentMethod.objects.filter(account=account).exists()
    assert UsageEvent.objects.filter(account=account).exists()
    assert get_user_model().objects.get(pk=account.user_id).email == email
    assert not DeletionCertificate.objects.exists()

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        assert deletion.run_due_deletions() == {"completed": 1, "failed": 0}
    assert get_user_model().objects.get(pk=account.user_id).email == ""


def test_a_provider_outage_fails_the_deletion_before_anything_is_erased(
    account, settings, monkeypatch
):
    import stripe

    from tests.userflows.test_billing_stripe import FakeStripeHTTP

    settings.STRIPE_API_KEY = "sk_test_123"
    fake = FakeStripeHTTP()
    fake.down = True
    monkeypatch.setattr(stripe, "default_http_client", fake)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    SubscriptionFactory(account=account, provider="stripe", provider_customer_id="cus_9")
    request = DeletionRequestFactory(account=account)
    make_due(request)

    deletion.run_due_deletions()

    request.refresh_from_db()
    assert request.status == DeletionRequest.Status.FAILED
    assert "billing provider could not close the account" in request.error
    assert fake.calls == [("DELETE", "/v1/customers/cus_9", {})]
    assert Account.objects.get(pk=account.pk).name == account.name

    fake.down = False
    fake.routes[("DELETE", "/v1/customers/cus_9")] = (
        200,
        {"id": "cus_9", "deleted": True, "object": "customer"},
    )
    assert deletion.run_due_deletions() == {"completed": 1, "failed": 0}
    assert Subscription.objects.get(account=account).provider_customer_id == ""


def test_an_export_queued_before_the_deletion_never_publishes(account, settings):
    export = ExportRequestFactory(account=account, status=ExportRequest.Status.PENDING)
    request = DeletionRequestFactory(account=account)
    make_due(request)

    deletion.run_due_deletions()
    exports.process_export(export_id=export.pk)

    export.refresh_from_db()
    assert export.status == ExportRequest.Status.CANCELED
    assert not export.file
    assert not os.path.exists(settings.MEDIA_ROOT / "exports" / str(account.pk))


def test_the_command_runs_the_due_deletions(account):
    request = DeletionRequestFactory(account=account)
    make_due(request)
    waiting = DeletionRequestFactory()
    from io import StringIO

    out = StringIO()
    call_command("run_due_deletions", stdout=out)

    request.refresh_from_db()
    waiting.refresh_from_db()
    assert out.getvalue().strip() == "deletions: 1 completed, 0 failed"
    assert (request.status, waiting.status) == (
        DeletionRequest.Status.COMPLETED,
        DeletionRequest.Status.SCHEDULED,
    )


def test_erasers_run_dependents_first_so_they_still_see_the_identity(account, monkeypatch):
    seen = []
    original = userflows.privacy.erase_account

    def spy(account, *, actor):
        seen.append(account.user.email)
        return original(account, actor=actor)

    monkeypatch.setattr(userflows.privacy, "erase_account", spy)
    request = DeletionRequestFactory(account=account)
    make_due(request)
    email = account.user.email

    deletion.run_due_deletions()

    assert seen == [email]


def test_the_payment_methods_history_is_kept_and_erased_with_the_account(
    account, other_account, django_capture_on_commit_callbacks
):
    user = account.user
    SubscriptionFactory(account=account)
    billing.update_payment_method(account=account, payment_method_id="pm_card_visa", actor=user)
    billing.update_payment_method(account=account, payment_method_id="pm_card_amex", actor=user)
    PaymentMethodFactory(account=other_account)
    cards = PaymentMethod.history.filter(account_id=account.pk).order_by("history_id")
    assert [(h.brand, h.last4, h.history_user) for h in cards] == [
        ("visa", "4242", user),
        ("amex", "8431", user),
    ]
    request = deletion.request_deletion(account=account, actor=user)
    make_due(request)

    with django_capture_on_commit_callbacks(execute=True):
        assert deletion.run_due_deletions() == {"completed": 1, "failed": 0}

    assert not PaymentMethod.history.filter(account_id=account.pk).exists()
    assert PaymentMethod.history.filter(account_id=other_account.pk).count() == 1
    categories = {c["category"]: c for c in DeletionRequest.objects.get().certificate.categories}
    # The two changes and the row the deletion itself wrote.
    assert categories["payment method history rows"] == {
        "category": "payment method history rows",
        "action": "erased",
        "count": 3,
        "legal_ground": "",
    }
