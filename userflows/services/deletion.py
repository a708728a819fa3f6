"""Account deletion (GDPR Art. 17): request with a grace period, reminders, cancel, and the
execution that erases the account's personal data everywhere — every installed app's
`privacy.erase_account`, history tables included — all-or-nothing, and certifies it."""

import datetime as dt
import logging
from dataclasses import asdict

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from opsplatform import queueing, telemetry
from opsplatform import services as core_services
from opsplatform.errors import Conflict, DomainError, Forbidden
from opsplatform.models import Account
from opsplatform.privacy import subject_reference
from opsplatform.registry import app_modules
from opsplatform.tenancy import is_staff
from opsplatform.transitions import transition
from opsplatform.validation import clean_text
from userflows import emails, selectors
from userflows.billing import get_provider
from userflows.models import DeletionCertificate, DeletionRequest, Subscription

logger = logging.getLogger(__name__)


class PasswordRequired(Forbidden):
    """A customer asked to delete their account immediately without their password (or with a
    wrong one): the same 403 on every face (API, page, admin)."""

    code = "password_required"


def request_deletion(
    *,
    account: Account,
    actor,
    reason: str = "",
    immediate: bool = False,
    password: str | None = None,
) -> DeletionRequest:
    """Schedule the account's deletion after DELETION_GRACE_DAYS, or now (`immediate`). Staff
    may ask for an immediate deletion as they are; a customer must give their password again
    (`PasswordRequired`, 403, nothing stored, when it is missing or wrong)."""
    reason = clean_text(reason, field="reason", label="The reason", max_length=1000, required=False)
    if immediate and not is_staff(actor):
        if not password:
            raise PasswordRequired("Enter your password to delete immediately.", field="password")
        if not actor.check_password(password):
            raise PasswordRequired("That password is not correct.", field="password")
    with transaction.atomic():
        locked = Account.objects.select_for_update().select_related("user").get(pk=account.pk)
        core_services.require_customer_owner(locked)
        pending = selectors.pending_deletion_get(account)
        if pending is not None:
            raise Conflict(
                f"A deletion is already scheduled for {pending.scheduled_for:%B %-d, %Y}.",
                code="deletion_pending",
            )
        now = timezone.now()
        deletion = DeletionRequest(
            account=account,
            requested_by=actor,
            reason=reason,
            immediate=immediate,
            requested_at=now,
            scheduled_for=now
            if immediate
            else now + dt.timedelta(days=settings.DELETION_GRACE_DAYS),
        )
        deletion._history_user = actor
        deletion.full_clean()
        try:
            with transaction.atomic():
                deletion.save()
        except IntegrityError:
            raise Conflict("A deletion is already scheduled.", code="deletion_pending") from None
        if immediate:
            transaction.on_commit(
                lambda: queueing.enqueue(
                    "userflows.tasks.execute_deletion",
                    deletion.pk,
                    task_name=f"deletion-{deletion.pk}",
                )
            )
        else:
            emails.send_on_commit(
                [
                    emails.build(
                        "deletion_scheduled",
                        to=account.user.email,
                        subject="Your account is scheduled for deletion",
                        context={
                            "deletion": deletion,
                            "account": account,
                            "grace_days": settings.DELETION_GRACE_DAYS,
                        },
                    )
                ]
            )
    return deletion


def cancel_deletion(*, deletion: DeletionRequest, actor) -> DeletionRequest:
    with transaction.atomic():
        deletion = transition(deletion, DeletionRequest.Status.CANCELED, actor=actor)
        emails.send_on_commit(
            [
                emails.build(
                    "deletion_canceled",
                    to=deletion.account.user.email,
                    subject="Your account deletion was canceled",
                    context={"deletion": deletion, "account": deletion.account},
                )
            ]
        )
    return deletion


def send_deletion_reminders(*, now: dt.datetime | None = None, batch_size: int = 500) -> int:
    """Email every customer whose deletion is DELETION_REMINDER_DAYS away or less, once."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(days=settings.DELETION_REMINDER_DAYS)
    sent = 0
    while True:
        with transaction.atomic():
            batch = list(
                DeletionRequest.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("account__user")
                .filter(
                    status=DeletionRequest.Status.SCHEDULED,
                    reminder_sent_at__isnull=True,
                    scheduled_for__gt=now,
                    scheduled_for__lte=horizon,
                )
                .order_by("scheduled_for")[:batch_size]
            )
            if not batch:
                return sent
            for deletion in batch:
                deletion.reminder_sent_at = now
            DeletionRequest.objects.bulk_update(batch, ["reminder_sent_at"])
            DeletionRequest.history.bulk_history_create(
                batch, update=True, default_change_reason="reminder sent"
            )
            emails.send_on_commit(
                [
                    emails.build(
                        "deletion_reminder",
                        to=d.account.user.email,
                        subject="Reminder: your account will be deleted soon",
                        context={"deletion": d, "account": d.account},
                    )
                    for d in batch
                ]
            )
        sent += len(batch)


def run_due_deletions(*, now: dt.datetime | None = None, actor=None) -> dict:
    """Execute every due (and every previously failed) deletion, each on its own."""
    outcome = {"completed": 0, "failed": 0}
    for deletion_id in selectors.due_deletion_id_list(now=now):
        deletion = execute_deletion(deletion_id=deletion_id, actor=actor)
        if deletion is not None and deletion.status == DeletionRequest.Status.COMPLETED:
            outcome["completed"] += 1
        elif deletion is not None and deletion.status == DeletionRequest.Status.FAILED:
            outcome["failed"] += 1
    return outcome


class _EraserFailed(Exception):
    def __init__(self, app: str):
        super().__init__(app)
        self.app = app


def execute_deletion(*, deletion_id: int, actor=None) -> DeletionRequest | None:
    """Erase the account: first close it at the billing provider (idempotent, cannot be
    rolled back), then in one transaction holding the account's row lock run every app's
    eraser and write the certificate. Any failure rolls the database part back and marks the
    request failed with a reason; the next run retries it. A completed request is left alone."""
    deletion = (
        DeletionRequest.objects.select_related("account__user").filter(pk=deletion_id).first()
    )
    if deletion is None or not deletion.is_pending:
        return deletion
    telemetry.TASKS_RUN.labels("execute_deletion").inc()
    account = deletion.account
    farewell_to, farewell_zone = account.user.email, account.time_zone
    try:
        # Never erase a staff login, whoever scheduled it and however the owner changed.
        core_services.require_customer_owner(account)
    except DomainError as exc:
        return _fail(deletion_id, f"{exc.detail} Nothing was erased.")
    try:
        _close_at_provider(account)
    except DomainError as exc:
        return _fail(
            deletion_id,
            f"The billing provider could not close the account: "
            f"{exc.detail} It will be retried on the next run.",
        )
    try:
        with transaction.atomic():
            locked = Account.objects.select_for_update().select_related("user").get(pk=account.pk)
            deletion = DeletionRequest.objects.select_for_update().get(pk=deletion_id)
            if not deletion.is_pending:
                return deletion
            core_services.require_customer_owner(locked)
            results = []
            # Dependent apps first, the shared domain last: their erasers may still need the
            # identity (e.g. the email tickets were sent from) that the core's erases.
            for module in reversed(app_modules("privacy")):
                eraser = getattr(module, "erase_account", None)
                if eraser is None:
                    continue
                try:
                    results.extend(eraser(locked, actor=actor))
                except Exception as exc:
                    raise _EraserFailed(module.__name__.split(".")[0]) from exc
            now = timezone.now()
            certificate = DeletionCertificate.objects.create(
                deletion=deletion,
                subject_reference=subject_reference(account.pk),
                requested_at=deletion.requested_at,
                scheduled_for=deletion.scheduled_for,
                executed_at=now,
                categories=[asdict(r) for r in results],
            )
            deletion.reason = ""  # erased with the rest; the certificate says why nothing
            deletion = transition(
                deletion,
                DeletionRequest.Status.COMPLETED,
                actor=actor,
                reason=f"completed: certificate {certificate.reference}",
                now=now,
                lock=False,  # locked above, with the account
                error="",
            )
            telemetry.count_on_commit(telemetry.DELETIONS_COMPLETED)
    except _EraserFailed as exc:
        logger.exception("account deletion %s failed in %s", deletion_id, exc.app)
        return _fail(
            deletion_id,
            f"Erasing the data kept by '{exc.app}' failed "
            f"({exc.__cause__.__class__.__name__}); nothing was erased. "
            "It will be retried on the next run.",
        )
    except DomainError as exc:
        return _fail(deletion_id, f"{exc.detail} Nothing was erased.")
    except Exception as exc:
        logger.exception("account deletion %s failed", deletion_id)
        return _fail(
            deletion_id,
            f"The deletion could not be completed "
            f"({exc.__class__.__name__}); nothing was erased. "
            "It will be retried on the next run.",
        )
    logger.info("account deletion %s completed; certificate %s", deletion_id, certificate.reference)
    emails.send_now(
        [
            emails.build(
                "deletion_completed",
                to=farewell_to,
                subject="Your account has been deleted",
                context={"certificate": certificate},
                time_zone=farewell_zone,
            )
        ]
    )
    return deletion


def _close_at_provider(account: Account) -> None:
    subscription = Subscription.objects.filter(account=account).first()
    if subscription is None:
        return
    provider = get_provider(subscription.provider)
    if provider.remote:
        provider.forget_customer(subscription=subscription)


def _fail(deletion_id: int, reason: str) -> DeletionRequest | None:
    with transaction.atomic():
        deletion = DeletionRequest.objects.select_for_update().filter(pk=deletion_id).first()
        if deletion is None or not deletion.is_pending:
            return deletion
        deletion = transition(
            deletion,
            DeletionRequest.Status.FAILED,
            reason="execution failed",
            lock=False,  # locked above
            attempts=deletion.attempts + 1,
            error=reason[:2000],
        )
    return deletion
