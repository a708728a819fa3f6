"""What billing, exports and deletion contribute to the staff account page (the customer
360) and to the ticket page's requester panel, and the actions staff take on a customer's
behalf — each through this app's services, with the reason recorded in history. Declared
by UserflowsConfig.account_panels / account_actions (opsplatform.registry)."""

import datetime as dt

from django import forms
from django.urls import reverse

from opsplatform.account_admin import ActionForm
from opsplatform.history import note_reason
from opsplatform.registry import AccountAction, AccountPanel, PanelItem
from userflows import selectors
from userflows.models import DeletionRequest, ExportRequest, Invoice, format_cents
from userflows.services import billing, deletion
from userflows.services.billing.on_behalf import MAX_EXTENSION_DAYS, extend_current_period

INVOICES_SHOWN = 6
EXPORTS_SHOWN = 5
INVOICE_TONES = {
    Invoice.Status.PAID: "success",
    Invoice.Status.OPEN: "warning",
    Invoice.Status.UNCOLLECTIBLE: "danger",
}


def _admin_url(name: str, pk: int) -> str:
    return reverse(f"admin:userflows_{name}_change", args=[pk])


def _on_behalf(reason: str) -> str:
    return f"On behalf of the customer: {reason}"[:100]


# --- panels -----------------------------------------------------------------------------------


def account_panels(account, *, user, compact: bool) -> list[AccountPanel]:
    """The account page shows each panel to staff who may view its rows. The compact summary
    is for the ticket page, which only agents reach: they see the facts (plan, status,
    balance, a pending deletion, export dates) and links only to rows they may open."""
    panels = []
    if compact or user.has_perm("userflows.view_subscription"):
        panels.append(_billing_panel(account, user=user, compact=compact))
    if compact or user.has_perm("userflows.view_deletionrequest"):
        panels.append(_deletion_panel(account, user=user, compact=compact))
    if compact or user.has_perm("userflows.view_exportrequest"):
        panels.append(_exports_panel(account, user=user, compact=compact))
    return [p for p in panels if p is not None]


def _link(user, perm: str, name: str, pk: int) -> str:
    return _admin_url(name, pk) if user.has_perm(f"userflows.{perm}") else ""


def _billing_panel(account, *, user, compact: bool) -> AccountPanel:
    info = billing.get_billing_info(account=account)
    sub = info.subscription
    facts = [("Plan", info.plan.name)]
    if sub is not None:
        status = sub.get_status_display()
        if sub.cancel_at_period_end:
            status += f", ends {sub.current_period_end:%Y-%m-%d}"
        facts.append(("Subscription", status))
        if sub.scheduled_plan_id:
            facts.append(
                ("Scheduled", f"{sub.scheduled_plan.name} from {sub.current_period_end:%Y-%m-%d}")
            )
    else:
        facts.append(("Subscription", "None"))
    facts.append(("Balance due", format_cents(info.balance_due_cents, info.plan.currency)))
    method = info.payment_method
    facts.append(("Payment method", f"{method.brand} •••• {method.last4}" if method else "None"))
    if not compact and sub is not None:
        facts.append(
            (
                "Current period",
                f"{sub.current_period_start:%Y-%m-%d} → {sub.current_period_end:%Y-%m-%d}",
            )
        )
        if info.next_invoice is not None:
            facts.append(
                (
                    "Next invoice",
                    f"{format_cents(info.next_invoice.amount_cents, info.next_invoice.currency)}"
                    f" on {info.next_invoice.date:%Y-%m-%d}",
                )
            )
    items = ()
    if not compact and user.has_perm("userflows.view_invoice"):
        invoices = Invoice.objects.filter(account=account).order_by("-period_start", "-id")
        items = tuple(
            PanelItem(
                text=f"{inv.number} · {inv.amount_due}",
                url=_admin_url("invoice", inv.pk),
                detail=f"{inv.get_status_display()} · {inv.period_start:%Y-%m-%d}",
                tone=INVOICE_TONES.get(inv.status, ""),
            )
            for inv in invoices[:INVOICES_SHOWN]
        )
    return AccountPanel(
        key="billing",
        title="Subscription and invoices",
        order=10,
        facts=tuple(facts),
        items=items,
        empty="No invoices yet.",
        more_url=_link(user, "view_subscription", "subscription", sub.pk) if sub else "",
    )


def _deletion_panel(account, *, user, compact: bool) -> AccountPanel | None:
    requests = list(
        DeletionRequest.objects.filter(account=account).order_by("-requested_at", "-id")[:5]
    )
    pending = next((d for d in requests if d.status in DeletionRequest.PENDING_STATUSES), None)
    if compact:
        if pending is None:
            return AccountPanel(
                key="deletion", title="Deletion", order=30, facts=(("Pending deletion", "No"),)
            )
        return AccountPanel(
            key="deletion",
            title="Deletion",
            order=30,
            items=(
                PanelItem(
                    text=f"Deletion scheduled for {pending.scheduled_for:%Y-%m-%d}",
                    url=_link(user, "view_deletionrequest", "deletionrequest", pending.pk),
                    tone="danger",
                ),
            ),
        )
    return AccountPanel(
        key="deletion",
        title="Deletion requests",
        order=30,
        items=tuple(
            PanelItem(
                text=f"{d.get_status_display()} · requested {d.requested_at:%Y-%m-%d}",
                url=_admin_url("deletionrequest", d.pk),
                detail=f"for {d.scheduled_for:%Y-%m-%d}",
                tone="danger" if d.status in DeletionRequest.PENDING_STATUSES else "",
            )
            for d in requests
        ),
        empty="No deletion requests.",
    )


def _exports_panel(account, *, user, compact: bool) -> AccountPanel:
    shown = 2 if compact else EXPORTS_SHOWN
    exports = ExportRequest.objects.filter(account=account).order_by("-created_at", "-id")[:shown]
    return AccountPanel(
        key="exports",
        title="Latest exports",
        order=50,
        items=tuple(
            PanelItem(
                text=f"{e.get_format_display()} · {e.created_at:%Y-%m-%d}",
                url=_link(user, "view_exportrequest", "exportrequest", e.pk),
                detail=e.get_status_display(),
                tone="success" if e.status == ExportRequest.Status.COMPLETED else "",
            )
            for e in exports
        ),
        empty="No exports.",
    )


# --- actions on behalf of the customer ------------------------------------------------------


class PlanChoiceForm(ActionForm):
    plan = forms.ChoiceField(choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].choices = [
            (p.code, f"{p.name} ({format_cents(p.price_cents, p.currency)}/month)")
            for p in selectors.plan_list()
        ]


def _preview_plan(account, data) -> list[str]:
    change = billing.preview_plan_change(account=account, plan_code=data["plan"])
    money = lambda cents: format_cents(cents, change.currency)  # noqa: E731
    lines = [f"Change: {change.kind} to {change.plan.name}"]
    if change.kind == "upgrade":
        lines += [
            f"Credit for unused time on the current plan: {money(change.credit_cents)}",
            f"Charge for the rest of the period on {change.plan.name}: "
            f"{money(change.charge_cents)}",
        ]
    lines.append(f"Charged now: {money(change.amount_due_now_cents)}")
    lines.append(f"Takes effect: {change.effective_at:%Y-%m-%d %H:%M} UTC")
    return lines


def _run_plan(account, data, *, actor, reason) -> str:
    subscription = billing.change_plan(account=account, plan_code=data["plan"], actor=actor)
    note_reason(subscription, _on_behalf(reason))
    return f"Plan changed: the account is on {subscription.plan.name}" + (
        f", moving to {subscription.scheduled_plan.name} at the period's end."
        if subscription.scheduled_plan_id
        else "."
    )


class ExtendForm(ActionForm):
    days = forms.IntegerField(min_value=1, max_value=MAX_EXTENSION_DAYS, label="Extend by (days)")


def _preview_extend(account, data) -> list[str]:
    sub = selectors.subscription_get(account)
    if sub is None:
        return ["The account has no subscription."]
    new_end = sub.current_period_end + dt.timedelta(days=data["days"])
    return [
        f"The current period ends {sub.current_period_end:%Y-%m-%d}; "
        f"it will end {new_end:%Y-%m-%d}.",
        "The next invoice comes that much later; nothing is charged now.",
    ]


def _run_extend(account, data, *, actor, reason) -> str:
    sub = extend_current_period(account=account, days=data["days"], reason=reason, actor=actor)
    note_reason(sub, _on_behalf(reason))
    return f"Period extended to {sub.current_period_end:%Y-%m-%d}."


class CancelForm(ActionForm):
    cancellation_reason = forms.ChoiceField(
        choices=[(c.value, c.label) for c in billing.CUSTOMER_REASONS],
        label="The customer's reason",
    )
    at_period_end = forms.BooleanField(
        required=False, initial=True, label="At the end of the paid period (else now)"
    )


def _run_cancel(account, data, *, actor, reason) -> str:
    sub = billing.cancel_subscription(
        account=account,
        reason=data["cancellation_reason"],
        comment=reason,
        at_period_end=data["at_period_end"],
        actor=actor,
    )
    note_reason(sub, _on_behalf(reason))
    if sub.cancel_at_period_end:
        return f"Subscription canceled: it ends on {sub.current_period_end:%Y-%m-%d}."
    return "Subscription canceled now; the account is on the free plan."


def _can_cancel(account) -> bool:
    sub = selectors.subscription_get(account)
    return sub is not None and sub.status != sub.Status.CANCELED and not sub.cancel_at_period_end


class NoFieldsForm(ActionForm):
    """Only the reason the core adds."""


def _run_resume(account, data, *, actor, reason) -> str:
    sub = billing.resume_subscription(account=account, actor=actor)
    note_reason(sub, _on_behalf(reason))
    return "The pending cancellation was undone; the subscription renews as usual."


def _can_resume(account) -> bool:
    sub = selectors.subscription_get(account)
    return sub is not None and sub.cancel_at_period_end and sub.status != sub.Status.CANCELED


def _run_cancel_deletion(account, data, *, actor, reason) -> str:
    pending = selectors.pending_deletion_get(account)
    if pending is None:
        from opsplatform.errors import Conflict

        raise Conflict("There is no pending deletion to cancel.", code="no_pending_deletion")
    canceled = deletion.cancel_deletion(deletion=pending, actor=actor)
    note_reason(canceled, _on_behalf(reason))
    return "The account's deletion was canceled; the customer is told by email."


def _has_pending_deletion(account) -> bool:
    return selectors.pending_deletion_get(account) is not None


def _is_active_sub(account) -> bool:
    sub = selectors.subscription_get(account)
    return sub is not None and sub.status in (sub.Status.ACTIVE, sub.Status.TRIALING)


def account_actions() -> list[AccountAction]:
    return [
        AccountAction(
            name="change-plan",
            label="Change plan",
            permission="userflows.change_subscription",
            form=PlanChoiceForm,
            preview=_preview_plan,
            run=_run_plan,
            order=10,
        ),
        AccountAction(
            name="extend-period",
            label="Extend the current period",
            permission="userflows.change_subscription",
            form=ExtendForm,
            preview=_preview_extend,
            run=_run_extend,
            available=_is_active_sub,
            order=20,
        ),
        AccountAction(
            name="cancel-subscription",
            label="Cancel the subscription",
            permission="userflows.change_subscription",
            form=CancelForm,
            run=_run_cancel,
            available=_can_cancel,
            destructive=True,
            order=30,
        ),
        AccountAction(
            name="resume-subscription",
            label="Resume the subscription",
            permission="userflows.change_subscription",
            form=NoFieldsForm,
            run=_run_resume,
            available=_can_resume,
            order=40,
        ),
        AccountAction(
            name="cancel-deletion",
            label="Cancel the pending deletion",
            permission="userflows.change_deletionrequest",
            form=NoFieldsForm,
            run=_run_cancel_deletion,
            available=_has_pending_deletion,
            order=60,
        ),
    ]
