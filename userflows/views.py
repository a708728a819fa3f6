"""Account pages: exports (with a live progress bar), billing, invoices, account deletion."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from opsplatform.errors import DomainError, NotFound
from opsplatform.pages import customer_page
from userflows import selectors
from userflows.forms import CancelForm, DeleteForm, ExportForm, PaymentMethodForm, PlanForm
from userflows.invoice_pdf import render_invoice_pdf
from userflows.models import format_cents
from userflows.services import billing, deletion, exports

EXPORTS_SHOWN = 20
INVOICES_SHOWN = 24


def _form_error(form, exc: DomainError) -> None:
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.detail)


# --- exports ----------------------------------------------------------------------------------


def data_type_labels(names) -> list[str]:
    """The customer-facing labels of export data types (a type no longer installed keeps its
    name)."""
    types = exports.available_export_types()
    return [types[name].label if name in types else name for name in names]


def export_view_model(export, request) -> dict:
    """What the page and its polling endpoint show about one export: the page renders it and
    exports.js fills the same fields in place when a running export finishes."""
    expires = timezone.localtime(export.expires_at) if export.expires_at else None
    return {
        "id": export.pk,
        "status": export.status,
        "status_label": export.get_status_display(),
        "active": export.is_active,
        "percent": export.percent,
        "rows_done": export.rows_done,
        "rows_total": export.rows_total,
        "row_counts": export.row_counts,
        "size_bytes": export.size_bytes,
        "error": export.error,
        "file_url": exports.export_file_url(export, request=request),
        "expires_at": export.expires_at.isoformat() if export.expires_at else None,
        "size_label": filesizeformat(export.size_bytes) if export.size_bytes else "",
        "expires_label": f"{expires:%b} {expires.day}, {expires.year}" if expires else "",
        "data_type_labels": data_type_labels(export.data_types),
    }


@never_cache
@require_http_methods(["GET", "POST"])
@customer_page
def exports_page(request, account):
    form = ExportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                export = exports.create_export_request(
                    account=account, requested_by=request.user, **form.cleaned_data
                )
            except DomainError as exc:
                _form_error(form, exc)
                status = exc.status_code
            else:
                messages.success(
                    request, f"Export #{export.pk} is queued; this page shows its progress."
                )
                return redirect("userflows:exports")
        else:
            status = 422
    listed = list(selectors.export_list(user=request.user)[:EXPORTS_SHOWN])
    rows = [(e, export_view_model(e, request)) for e in listed]
    return render(
        request,
        "userflows/exports.html",
        {"form": form, "rows": rows, "retention_days": settings.EXPORT_RETENTION_DAYS},
        status=status,
    )


@never_cache
@require_GET
@login_required
def export_status(request, export_id: int):
    """The small JSON the page polls for a running export's progress."""
    try:
        export = selectors.export_get(user=request.user, export_id=export_id)
    except NotFound:
        return JsonResponse({"detail": "Export not found.", "code": "not_found"}, status=404)
    return JsonResponse(export_view_model(export, request))


# --- billing ----------------------------------------------------------------------------------


def _billing_page(request, account, *, forms=None, status=200, plan_preview=None):
    info = billing.get_billing_info(account=account)
    provider = info.subscription.provider if info.subscription else settings.BILLING_PROVIDER
    forms = forms or {}
    context = {
        "info": info,
        "invoices": list(selectors.invoice_list(user=request.user)[:INVOICES_SHOWN]),
        "plans": list(selectors.plan_list()),
        "payment_form": forms.get("payment") or PaymentMethodForm(provider=provider),
        "cancel_form": forms.get("cancel") or CancelForm(),
        "plan_form": forms.get("plan") or PlanForm(initial={"plan": info.plan.code}),
        "plan_preview": plan_preview,
    }
    return render(request, "userflows/billing.html", context, status=status)


@never_cache
@require_GET
@customer_page
def billing_page(request, account):
    return _billing_page(request, account)


def _billing_action(request, account, *, key, form, call, success):
    if not form.is_valid():
        return _billing_page(request, account, forms={key: form}, status=422)
    try:
        call(form.cleaned_data)
    except DomainError as exc:
        _form_error(form, exc)
        return _billing_page(request, account, forms={key: form}, status=exc.status_code)
    messages.success(request, success)
    return redirect("userflows:billing")


@require_POST
@customer_page
def billing_payment_method(request, account):
    subscription = selectors.subscription_get(account)
    provider = subscription.provider if subscription else settings.BILLING_PROVIDER
    return _billing_action(
        request,
        account,
        key="payment",
        form=PaymentMethodForm(request.POST, provider=provider),
        call=lambda data: billing.update_payment_method(
            account=account, payment_method_id=data["payment_method_id"], actor=request.user
        ),
        success="Your payment method was updated.",
    )


@require_POST
@customer_page
def billing_cancel(request, account):
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _billing_page(request, account, forms={"cancel": form}, status=422)
    try:
        subscription = billing.cancel_subscription(
            account=account,
            reason=form.cleaned_data["reason"],
            comment=form.cleaned_data["comment"],
            at_period_end=form.cleaned_data["when"] == "period_end",
            actor=request.user,
        )
    except DomainError as exc:
        _form_error(form, exc)
        return _billing_page(request, account, forms={"cancel": form}, status=exc.status_code)
    _state, label = billing.subscription_state(subscription)
    if subscription.cancel_at_period_end:
        messages.success(
            request, f"{label}. You keep it until then and can resume it on this page."
        )
    else:
        messages.success(request, "Your subscription was canceled; you are on the Free plan now.")
    return redirect("userflows:billing")


@require_POST
@customer_page
def billing_resume(request, account):
    try:
        billing.resume_subscription(account=account, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Your subscription continues; the cancellation was undone.")
    return redirect("userflows:billing")


@require_POST
@customer_page
def billing_plan(request, account):
    """Two steps: the first post shows what the change does and charges now (or when a
    downgrade takes effect); the confirmation carries the amount seen, and a change that would
    now cost more than that is shown again instead of charged."""
    form = PlanForm(request.POST)
    if not form.is_valid():
        return _billing_page(request, account, forms={"plan": form}, status=422)
    try:
        preview = billing.preview_plan_change(account=account, plan_code=form.cleaned_data["plan"])
    except DomainError as exc:
        _form_error(form, exc)
        return _billing_page(request, account, forms={"plan": form}, status=exc.status_code)
    agreed = form.cleaned_data["confirm_cents"]
    if agreed is None or preview.amount_due_now_cents > agreed:
        confirm = PlanForm(
            initial={"plan": preview.plan.code, "confirm_cents": preview.amount_due_now_cents}
        )
        return _billing_page(request, account, forms={"plan": confirm}, plan_preview=preview)
    if preview.kind == "downgrade":
        success = (
            f"Your plan changes to {preview.plan.name} on "
            f"{billing.long_date(preview.effective_at)}."
        )
    elif preview.amount_due_now_cents:
        success = (
            f"You are on {preview.plan.name} now; "
            f"{format_cents(preview.amount_due_now_cents, preview.currency)} was charged and "
            "the invoice is below."
        )
    else:
        success = f"You are on {preview.plan.name} now."
    return _billing_action(
        request,
        account,
        key="plan",
        form=form,
        call=lambda data: billing.change_plan(
            account=account, plan_code=data["plan"], actor=request.user
        ),
        success=success,
    )


@never_cache
@require_GET
@customer_page
def invoice_page(request, account, invoice_id: int):
    try:
        invoice = selectors.invoice_get(user=request.user, invoice_id=invoice_id)
    except NotFound:
        raise Http404("Invoice not found.") from None
    return render(
        request,
        "userflows/invoice.html",
        {"invoice": invoice, "account": account, "from_email": settings.DEFAULT_FROM_EMAIL},
    )


@never_cache
@require_GET
@customer_page
def invoice_pdf(request, account, invoice_id: int):
    """The invoice as a PDF download."""
    try:
        invoice = selectors.invoice_get(user=request.user, invoice_id=invoice_id)
    except NotFound:
        raise Http404("Invoice not found.") from None
    body = render_invoice_pdf(invoice, seller_email=settings.DEFAULT_FROM_EMAIL)
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="invoice-{invoice.number}.pdf"'
    return response


# --- deletion ---------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@customer_page
def delete_page(request, account):
    pending = selectors.pending_deletion_get(account)
    form = DeleteForm(request.POST or None)
    status = 200
    if request.method == "POST" and pending is None:
        if form.is_valid():
            try:
                created = deletion.request_deletion(
                    account=account,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    immediate=form.cleaned_data["immediate"],
                    password=form.cleaned_data["password"],
                )
            except DomainError as exc:
                _form_error(form, exc)
                status = exc.status_code
            else:
                if created.immediate:
                    logout(request)
                    return render(request, "userflows/deleted.html")
                messages.success(
                    request, f"Your account will be deleted on {created.scheduled_for:%B %-d, %Y}."
                )
                return redirect("userflows:delete")
        else:
            status = 422
    return render(
        request,
        "userflows/delete.html",
        {"form": form, "pending": pending, "grace_days": settings.DELETION_GRACE_DAYS},
        status=status,
    )


@require_POST
@customer_page
def delete_cancel(request, account):
    pending = selectors.pending_deletion_get(account)
    if pending is None:
        messages.error(request, "There is no scheduled deletion to cancel.")
        return redirect("userflows:delete")
    try:
        deletion.cancel_deletion(deletion=pending, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "The deletion was canceled; your account stays.")
    return redirect("userflows:delete")
