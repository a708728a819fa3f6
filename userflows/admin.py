"""Admin: exports, plans, subscriptions (with history and a cancellation-reasons summary),
invoices, payment methods, deletion requests (with run/cancel actions) and certificates.

Rows customers create are read-only here; changes go through the services (actions)."""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from opsplatform.errors import DomainError
from userflows import selectors
from userflows.models import (
    DeletionCertificate,
    DeletionRequest,
    ExportRequest,
    Invoice,
    PaymentMethod,
    Plan,
    ProviderEvent,
    Subscription,
)
from userflows.services import deletion as deletion_services
from userflows.services import exports as export_services


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyHistoryAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    """Read-only, with the history view (requests change only through their services)."""


class _NoFilePathHistory(HistoricalRecordContextHelper):
    """The history's "Changes" column says a file was stored or removed, not where."""

    def prepare_delta_change_value(self, change, value):
        if change.field == "file":
            return "a stored file" if value else "no file"
        return super().prepare_delta_change_value(change, value)


@admin.register(ExportRequest)
class ExportRequestAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "id",
        "account",
        "format",
        "status",
        "rows_done",
        "rows_total",
        "created_at",
        "completed_at",
        "expires_at",
    ]
    list_filter = ["status", "format"]
    search_fields = ["=id", "=account__id", "account__name"]
    list_select_related = ["account"]
    raw_id_fields = ["account", "requested_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    # The stored file's path is never shown: staff download through the signed link.
    exclude = ["file"]
    readonly_fields = ["download"]

    def get_historical_record_context_helper(self, request, historical_record):
        return _NoFilePathHistory(self.model, historical_record)

    @admin.display(description="File")
    def download(self, obj):
        url = export_services.export_file_url(obj)
        if url is None:
            return "—"
        return format_html(
            '<a href="{}">Download the ZIP</a> (this link works for {} minutes)',
            url,
            settings.EXPORT_LINK_MINUTES,
        )


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "price_cents", "currency", "stripe_price_id", "sort_order"]

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "account",
        "plan",
        "status",
        "provider",
        "current_period_end",
        "cancel_at_period_end",
        "cancellation_reason",
    ]
    list_filter = ["status", "provider", "plan", "cancel_at_period_end", "cancellation_reason"]
    search_fields = ["=account__id", "account__name", "provider_subscription_id"]
    list_select_related = ["account", "plan"]
    raw_id_fields = ["account"]
    show_full_result_count = False
    change_list_template = "admin/userflows/subscription/change_list.html"

    def get_urls(self):
        return [
            path(
                "cancellation-reasons/",
                self.admin_site.admin_view(self.cancellation_reasons_view),
                name="userflows_subscription_cancellation_reasons",
            ),
            *super().get_urls(),
        ]

    def cancellation_reasons_view(self, request):
        """Why customers cancel, over the last N days (default 90) or all time."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = request.GET.get("days", "90")
        since = None
        if days != "all":
            days = int(days) if days.isdigit() and 0 < int(days) <= 3650 else 90
            since = timezone.now() - dt.timedelta(days=days)
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancellation reasons",
            "opts": self.model._meta,
            "rows": selectors.cancellation_reasons_summary(since=since),
            "days": days,
            "periods": [
                ("30", "30 days"),
                ("90", "90 days"),
                ("365", "1 year"),
                ("all", "All time"),
            ],
        }
        return TemplateResponse(request, "admin/userflows/cancellation_reasons.html", context)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "account",
        "status",
        "amount",
        "period_start",
        "issued_at",
        "paid_at",
        "attempt_count",
        "provider",
    ]
    list_filter = ["status", "provider"]
    search_fields = ["=number", "=account__id", "customer_reference"]
    list_select_related = ["account"]
    raw_id_fields = ["account", "subscription"]
    date_hierarchy = "period_start"
    show_full_result_count = False

    @admin.display(description="Amount", ordering="amount_due_cents")
    def amount(self, obj):
        return obj.amount_due


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyAdmin):
    list_display = ["account", "brand", "last4", "exp_month", "exp_year", "provider", "updated_at"]
    list_filter = ["provider", "brand"]
    search_fields = ["=account__id", "account__name"]
    list_select_related = ["account"]
    show_full_result_count = False


@admin.register(ProviderEvent)
class ProviderEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "provider", "received_at"]
    list_filter = ["provider", "type"]
    search_fields = ["=event_id"]


class DeletionRequestForm(forms.ModelForm):
    class Meta:
        model = DeletionRequest
        fields = ["account", "reason", "immediate"]

    def clean(self):
        data = super().clean()
        account = data.get("account")
        if account is not None and selectors.pending_deletion(account) is not None:
            raise forms.ValidationError("This account already has a pending deletion.")
        return data


@admin.register(DeletionRequest)
class DeletionRequestAdmin(SimpleHistoryAdmin):
    list_display = [
        "id",
        "account",
        "status",
        "immediate",
        "requested_at",
        "scheduled_for",
        "completed_at",
        "attempts",
    ]
    list_filter = ["status", "immediate"]
    search_fields = ["=id", "=account__id"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    date_hierarchy = "scheduled_for"
    show_full_result_count = False
    actions = ["run_now", "cancel"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = DeletionRequestForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["account", "reason", "immediate"]
        return [
            "account",
            "status",
            "immediate",
            "reason",
            "requested_at",
            "scheduled_for",
            "reminder_sent_at",
            "cancelled_at",
            "completed_at",
            "failed_at",
            "attempts",
            "error",
            "certificate_link",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Certificate")
    def certificate_link(self, obj):
        certificate = getattr(obj, "certificate", None)
        if certificate is None:
            return "—"
        url = reverse("admin:userflows_deletioncertificate_change", args=[certificate.pk])
        return format_html('<a href="{}">{}</a>', url, certificate.reference)

    def save_model(self, request, obj, form, change):
        """Staff schedule (or, with "immediate", run) a deletion through the service."""
        try:
            created = deletion_services.request_deletion(
                account=obj.account, actor=request.user, reason=obj.reason, immediate=obj.immediate
            )
        except DomainError as exc:
            messages.error(request, exc.detail)
            raise PermissionDenied(exc.detail) from exc
        obj.pk = created.pk
        obj.__dict__.update(created.__dict__)

    @admin.action(description="Run the selected deletions now", permissions=["change"])
    def run_now(self, request, queryset):
        done = failed = 0
        for deletion_id in queryset.filter(status__in=DeletionRequest.PENDING_STATUSES).values_list(
            "id", flat=True
        ):
            result = deletion_services.execute_deletion(deletion_id=deletion_id, actor=request.user)
            if result is not None and result.status == DeletionRequest.Status.COMPLETED:
                done += 1
            else:
                failed += 1
        self.message_user(
            request,
            f"{done} deletion(s) completed, {failed} failed.",
            messages.SUCCESS if not failed else messages.WARNING,
        )

    @admin.action(description="Cancel the selected deletions", permissions=["change"])
    def cancel(self, request, queryset):
        count = 0
        for pending in queryset.filter(status__in=DeletionRequest.PENDING_STATUSES):
            deletion_services.cancel_deletion(deletion=pending, actor=request.user)
            count += 1
        self.message_user(request, f"Cancelled {count} deletion(s).", messages.SUCCESS)


@admin.register(DeletionCertificate)
class DeletionCertificateAdmin(ReadOnlyAdmin):
    list_display = ["reference", "subject_reference", "requested_at", "executed_at"]
    search_fields = ["=reference", "=subject_reference"]
    date_hierarchy = "executed_at"
    fields = [
        "reference",
        "deletion",
        "subject_reference",
        "requested_at",
        "scheduled_for",
        "executed_at",
        "what_was_done",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="Erased, anonymized and kept")
    def what_was_done(self, obj):
        return format_html(
            "<table><thead><tr><th>Category</th><th>Action</th><th>Count</th>"
            "<th>Legal ground</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (c.get("category"), c.get("action"), c.get("count"), c.get("legal_ground"))
                    for c in obj.categories
                ),
            ),
        )
