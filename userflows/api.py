"""API of the self-serve flows: /exports, /billing, /deletion (mounted at /api/v1/)."""

import datetime as dt
from typing import Annotated, Literal

from django.http import FileResponse
from ninja import Field, Path, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import StringConstraints

from opsplatform.errors import InvalidInput
from opsplatform.exports import registered_export_types
from opsplatform.models import Account
from opsplatform.schemas import MAX_ID, ErrorOut, Id, Input, NoNul, Pagination, responses
from opsplatform.selectors import account_get
from opsplatform.tenancy import is_staff, require_account, require_perm
from userflows import selectors
from userflows.models import ExportRequest
from userflows.services import billing, deletion, exports

router = Router(tags=["self-serve"])

AccountFilter = Annotated[int, Field(ge=1, le=MAX_ID)] | None
Text = Annotated[str, StringConstraints(max_length=1000), NoNul]


class AccountFilters(Schema):
    account_id: AccountFilter = Field(None, description="Staff only: one account's rows")


# --- exports ----------------------------------------------------------------------------------


class ExportIn(Input):
    format: Literal["csv", "json", "xlsx"]
    data_types: list[Annotated[str, StringConstraints(min_length=1, max_length=40), NoNul]] = Field(
        min_length=1,
        max_length=20,
        description="Any of: "
        + "; ".join(f"{t.name} ({t.label})" for t in registered_export_types().values()),
    )
    date_from: dt.date
    date_to: dt.date


class ProgressOut(Schema):
    rows_done: int
    rows_total: int | None
    percent: int | None


class ExportOut(Schema):
    id: int
    account_id: int
    status: str
    format: str
    data_types: list[str]
    date_from: dt.date
    date_to: dt.date
    progress: ProgressOut
    row_counts: dict[str, int]
    size_bytes: int | None
    sha256: str
    error: str
    file_url: str | None = Field(
        None, description="Signed download link, valid for EXPORT_LINK_MINUTES; only once completed"
    )
    created_at: dt.datetime
    completed_at: dt.datetime | None
    expires_at: dt.datetime | None

    @staticmethod
    def resolve_progress(obj: ExportRequest):
        return {"rows_done": obj.rows_done, "rows_total": obj.rows_total, "percent": obj.percent}

    @staticmethod
    def resolve_file_url(obj: ExportRequest, context):
        return exports.export_file_url(obj, request=context["request"])


@router.post("/exports", response=responses({202: ExportOut}), summary="Request a data export")
def create_export(request, payload: ExportIn):
    """Queue an export of your account's data as one ZIP (a file per data type plus
    `manifest.json`). One export at a time (409) and EXPORT_DAILY_LIMIT a day (429)."""
    account = require_account(request.user)
    export = exports.create_export_request(
        account=account,
        requested_by=request.user,
        format=payload.format,
        data_types=payload.data_types,
        date_from=payload.date_from,
        date_to=payload.date_to,
    )
    return Status(202, export)


@router.get("/exports", response=responses({200: list[ExportOut]}), summary="List exports")
@paginate(Pagination)
def list_exports(request, filters: Query[AccountFilters]):
    return selectors.export_list(user=request.user, account_id=filters.account_id)


@router.get("/exports/{export_id}", response=responses({200: ExportOut}), summary="One export")
def get_export(request, export_id: Path[Id]):
    return exports.get_export(user=request.user, export_id=export_id)


class DownloadQuery(Schema):
    token: Annotated[str, StringConstraints(min_length=1, max_length=300), NoNul]


@router.get(
    "/exports/{export_id}/download",
    response=responses({}),
    url_name="export_download",
    summary="Download an export's ZIP through its signed link",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The ZIP archive",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def download_export(request, export_id: Path[Id], query: Query[DownloadQuery]):
    """Needs the link's token (from `file_url`) and the owning account's user or staff."""
    export = exports.export_for_download(user=request.user, export_id=export_id, token=query.token)
    return FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=f"opsplatform-export-{export.pk}.zip",
        content_type="application/zip",
    )


# --- billing ----------------------------------------------------------------------------------


class PlanOut(Schema):
    code: str
    name: str
    price_cents: int
    currency: str


class SubscriptionOut(Schema):
    status: str = Field(
        description="trialing, active, past_due or canceled; a cancellation at the period's "
        "end keeps it active (cancel_at_period_end, ends_at) until then"
    )
    provider: str
    plan: str = Field(description="The plan subscribed to (once canceled, the plan that was)")
    ends_at: dt.datetime | None = Field(
        None, description="When a cancellation at the period's end takes effect"
    )
    scheduled_plan: str | None = Field(
        None, description="A downgrade that takes effect when the current period ends"
    )
    current_period_start: dt.datetime
    current_period_end: dt.datetime
    cancel_at_period_end: bool
    canceled_at: dt.datetime | None
    cancellation_reason: str

    @staticmethod
    def resolve_plan(obj):
        return obj.plan.code

    @staticmethod
    def resolve_scheduled_plan(obj):
        return obj.scheduled_plan.code if obj.scheduled_plan_id else None

    @staticmethod
    def resolve_ends_at(obj):
        return obj.current_period_end if obj.cancel_at_period_end else None


class PaymentMethodOut(Schema):
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class NextInvoiceOut(Schema):
    amount_cents: int
    currency: str
    date: dt.datetime


class BillingOut(Schema):
    plan: PlanOut = Field(
        description="The plan the account is on now (as /me says); after a cancellation took "
        "effect, the free plan"
    )
    state: str = Field(
        description="none, trialing, active, ending (canceled at the period's end: still "
        "active until then), past_due or canceled"
    )
    state_label: str = Field(description="The state in words, e.g. “Your plan ends on May 3, 2027”")
    subscription: SubscriptionOut | None
    payment_method: PaymentMethodOut | None
    next_invoice: NextInvoiceOut | None
    balance_due_cents: int
    plans: list[PlanOut]

    @staticmethod
    def resolve_plans(obj):
        return selectors.plans()


class InvoiceOut(Schema):
    id: int
    number: str
    description: str
    currency: str
    amount_due_cents: int
    amount_paid_cents: int
    period_start: dt.datetime
    period_end: dt.datetime
    status: str
    issued_at: dt.datetime
    due_at: dt.datetime
    paid_at: dt.datetime | None


class PaymentMethodIn(Input):
    payment_method_id: Annotated[str, StringConstraints(min_length=1, max_length=255), NoNul] = (
        Field(
            description="A provider token (Stripe `pm_…`; the local ledger takes Stripe's "
            "test ids such as `pm_card_visa`), never a card number"
        )
    )


class CancelIn(Input):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000), NoNul] = Field(
        description="One of "
        + ", ".join(f"`{r.value}`" for r in billing.CUSTOMER_REASONS)
        + ", or the reason in the customer's words: kept as the comment, filed under the "
        "closest code (`other` when none fits)"
    )
    at_period_end: bool = True
    comment: Text = ""


class PlanIn(Input):
    plan: Literal[tuple(Account.Plan.values)]


class PlanQuery(Schema):
    plan: Literal[tuple(Account.Plan.values)]


class PlanChangeOut(Schema):
    kind: str = Field(
        description="upgrade (prorated difference charged now), downgrade (at the period's "
        "end), restart (a new paid period now), switch (now, nothing to pay), keep (undo a "
        "pending downgrade or cancellation)"
    )
    plan: str
    amount_due_now_cents: int = Field(description="Charged when the change is confirmed")
    credit_cents: int = Field(description="Unused time on the current plan (upgrades)")
    charge_cents: int = Field(description="Remaining time on the new plan (upgrades)")
    currency: str
    effective_at: dt.datetime

    @staticmethod
    def resolve_plan(obj):
        return obj.plan.code


@router.get(
    "/billing",
    response=responses({200: BillingOut}),
    summary="Plan, subscription, payment method and the next invoice",
)
def get_billing(request):
    return billing.get_billing_info(account=require_account(request.user))


@router.post(
    "/billing/payment-method",
    response=responses({200: PaymentMethodOut, 503: ErrorOut}),
    summary="Replace the payment method",
)
def update_payment_method(request, payload: PaymentMethodIn):
    return billing.update_payment_method(
        account=require_account(request.user),
        payment_method_id=payload.payment_method_id,
        actor=request.user,
    )


@router.post(
    "/billing/cancel",
    response=responses({200: SubscriptionOut, 503: ErrorOut}),
    summary="Cancel the subscription (at period end by default)",
)
def cancel_subscription(request, payload: CancelIn):
    return billing.cancel_subscription(
        account=require_account(request.user),
        reason=payload.reason,
        comment=payload.comment,
        at_period_end=payload.at_period_end,
        actor=request.user,
    )


@router.post(
    "/billing/resume",
    response=responses({200: SubscriptionOut, 503: ErrorOut}),
    summary="Undo a cancellation before the period ends",
)
def resume_subscription(request):
    return billing.resume_subscription(account=require_account(request.user), actor=request.user)


@router.get(
    "/billing/plan/preview",
    response=responses({200: PlanChangeOut}),
    summary="What a plan change would do and charge now, before confirming it",
)
def preview_plan_change(request, query: Query[PlanQuery]):
    return billing.preview_plan_change(account=require_account(request.user), plan_code=query.plan)


@router.post(
    "/billing/plan",
    response=responses({200: SubscriptionOut, 402: ErrorOut, 503: ErrorOut}),
    summary="Change plan (upgrades charge the prorated difference now; downgrades wait for "
    "the period's end)",
)
def change_plan(request, payload: PlanIn):
    return billing.change_plan(
        account=require_account(request.user), plan_code=payload.plan, actor=request.user
    )


@router.get(
    "/billing/invoices", response=responses({200: list[InvoiceOut]}), summary="List invoices"
)
@paginate(Pagination)
def list_invoices(request, filters: Query[AccountFilters]):
    return selectors.invoice_list(user=request.user, account_id=filters.account_id)


@router.get(
    "/billing/invoices/{invoice_id}", response=responses({200: InvoiceOut}), summary="One invoice"
)
def get_invoice(request, invoice_id: Path[Id]):
    return selectors.invoice_get(user=request.user, invoice_id=invoice_id)


class WebhookOut(Schema):
    result: str


@router.post(
    "/billing/stripe-webhook",
    auth=None,
    response=responses({200: WebhookOut}),
    summary="Stripe webhook (signed with STRIPE_WEBHOOK_SECRET)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def stripe_webhook(request):
    """Verifies `Stripe-Signature` and applies subscription and invoice events once."""
    result = billing.apply_stripe_event(
        payload=request.body, signature=request.headers.get("Stripe-Signature")
    )
    return {"result": result}


# --- deletion ---------------------------------------------------------------------------------


class DeletionIn(Input):
    reason: Text = ""
    immediate: bool = Field(
        False,
        description="Delete now instead of after the grace period; customers must give `password`",
    )
    password: Annotated[str, StringConstraints(max_length=4096), NoNul] | None = None
    account_id: Id | None = Field(None, description="Staff only: the account to delete")


class DeletionOut(Schema):
    id: int
    account_id: int
    status: str
    reason: str
    immediate: bool
    requested_at: dt.datetime
    scheduled_for: dt.datetime
    canceled_at: dt.datetime | None
    completed_at: dt.datetime | None
    error: str
    certificate: str | None

    @staticmethod
    def resolve_certificate(obj):
        certificate = getattr(obj, "certificate", None) if obj.status == "completed" else None
        return str(certificate.reference) if certificate else None


@router.post(
    "/deletion", response=responses({202: DeletionOut}), summary="Request the account's deletion"
)
def request_deletion(request, payload: DeletionIn):
    """Scheduled after DELETION_GRACE_DAYS unless `immediate`. Staff name the account with
    `account_id` and need the add permission."""
    user = request.user
    if is_staff(user):
        require_perm(user, "userflows.add_deletionrequest")
        if payload.account_id is None:
            raise InvalidInput("Staff must give account_id.", field="account_id")
        account = account_get(account_id=payload.account_id)
    else:
        account = require_account(user)
        if payload.account_id not in (None, account.pk):
            raise InvalidInput("account_id may only be given by staff.", field="account_id")
    created = deletion.request_deletion(
        account=account,
        actor=user,
        reason=payload.reason,
        immediate=payload.immediate,
        password=payload.password,
    )
    return Status(202, created)


@router.get(
    "/deletion",
    response=responses({200: list[DeletionOut]}),
    summary="Deletion requests, newest first",
)
@paginate(Pagination)
def list_deletions(request, filters: Query[AccountFilters]):
    return selectors.deletion_list(user=request.user, account_id=filters.account_id)


@router.get(
    "/deletion/{deletion_id}",
    response=responses({200: DeletionOut}),
    summary="One deletion request",
)
def get_deletion(request, deletion_id: Path[Id]):
    return selectors.deletion_get(user=request.user, deletion_id=deletion_id)


@router.post(
    "/deletion/{deletion_id}/cancel",
    response=responses({200: DeletionOut}),
    summary="Cancel a scheduled deletion",
)
def cancel_deletion(request, deletion_id: Path[Id]):
    found = selectors.deletion_get(user=request.user, deletion_id=deletion_id)
    if is_staff(request.user):
        require_perm(request.user, "userflows.change_deletionrequest")
    return deletion.cancel_deletion(deletion=found, actor=request.user)
