"""Admin: exports, plans, subscriptions (with history and a cancellation-reasons summary),
invoices, payment methods, deletion requests (with run/cancel actions) and certificates.

Rows customers create are read-only here; changes go through the services (actions)."""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from simple_history.template_utils import HistoricalRecordContextHelper
from unfold.decorators import action
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextareaWidget

from opsplatform.admin_base import (
    DANGER,
    INFO,
    SUCCESS,
    WARNING,
    HistoryAdmin,
    ReadOnlyAdmin,
    ReadOnlyHistoryAdmin,
    confirm,
    status_badge,
)
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
from userflows.services import billing as billing_services
from userflows.services import deletion as deletion_services
from userflows.services import exports as export_services


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
        "status_label",
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

    status_label = status_badge(
        "status",
        {"pending": INFO, "processing": INFO, "completed": SUCCESS, "failed": DANGER},
    )


@admin.register(Plan)
class PlanAdmin(HistoryAdmin):
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
        "status_label",
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
    actions_detail = ["cancel_subscription"]
    status_label = status_badge(
        "status",
        {"trialing": INFO, "active": SUCCESS, "past_due": WARNING, "canceled": DANGER},
    )

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
            "rows": selectors.cancellation_reason_list(since=since),
            "days": days,
            "periods": [
                ("30", "30 days"),
                ("90", "90 days"),
                ("365", "1 year"),
                ("all", "All time"),
            ],
        }
        return TemplateResponse(request, "admin/userflows/cancellation_reasons.html", context)

    def has_cancel_subscription_permission(self, request, obj=None):
        # Not "userflows.change_subscription" in @action: unfold's system check would then
        # query auth_permission, which breaks `migrate` on a fresh database.
        return request.user.has_perm("userflows.change_subscription")

    @action(
        description="Cancel subscription",
        permissions=["cancel_subscription"],
        icon="cancel",
        url_path="cancel",
    )
    def cancel_subscription(self, request, object_id):
        """Cancels at the end of the paid period through the billing service, with a reason."""
        subscription = self.get_object(request, object_id)
        if subscription is None:
            raise Http404

        def cancel(data):
            billing_services.cancel_subscription(
                account=subscription.account,
                reason=data["reason"],
                comment=data["comment"],
                actor=request.user,
            )
            return "The subscription will end at the end of its period."

        return confirm(
            self,
            request,
            title=f"Cancel the subscription of {subscription.account}?",
            message=(
                f"The {subscription.plan} plan ends at the end of the paid period "
                f"({subscription.current_period_end:%Y-%m-%d}); the customer is emailed."
            ),
            confirm_label="Cancel subscription",
            form=StaffCancellationForm,
            on_confirm=cancel,
            done_url=reverse("admin:userflows_subscription_change", args=[subscription.pk]),
        )


class StaffCancellationForm(forms.Form):
    reason = forms.ChoiceField(
        choices=[
            (value, label)
            for value, label in Subscription.CancellationReason.choices
            if value != Subscription.CancellationReason.PAYMENT_FAILED
        ],
        widget=UnfoldAdminSelectWidget,
        help_text="What the customer gave as the reason.",
    )
    comment = forms.CharField(
        required=False, max_length=1000, widget=UnfoldAdminTextareaWidget(attrs={"rows": 3})
    )


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "account",
        "status_label",
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
    status_label = status_badge(
        "status", {"open": INFO, "paid": SUCCESS, "void": "", "uncollectible": DANGER}
    )

    @admin.display(description="Amount", ordering="amount_due_cents")
    def amount(self, obj):
        return obj.amount_due


@admin.register(PaymentMethod)
class PaymentMethodAdmin(ReadOnlyHistoryAdmin):
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
        if account is not None and selectors.pending_deletion_get(account) is not None:
            raise forms.ValidationError("This account already has a pending deletion.")
        return data


@admin.register(DeletionRequest)
class DeletionRequestAdmin(HistoryAdmin):
    list_display = [
        "id",
        "account",
        "status_label",
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
    actions_detail = ["execute_now", "cancel_this"]
    status_label = status_badge(
        "status",
        {"scheduled": INFO, "canceled": "", "completed": SUCCESS, "failed": DANGER},
    )

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
            "canceled_at",
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

    def add_view(self, request, form_url="", extra_context=None):
        try:
            return super().add_view(request, form_url, extra_context)
        except DomainError as exc:
            # The service's own answer (e.g. a deletion scheduled meanwhile, 409), not a 403;
            # the admin's transaction has rolled back, nothing was stored.
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        """Staff schedule (or, with "immediate", run) a deletion through the service, which
        holds every rule (refusals are shown by `add_view`)."""
        created = deletion_services.request_deletion(
            account=obj.account, actor=request.user, reason=obj.reason, immediate=obj.immediate
        )
        obj.pk = created.pk
        obj.__dict__.update(created.__dict__)

    @admin.action(description="Run the selected deletions now", permissions=["change"])
    def run_now(self, request, queryset):
        pending = list(queryset.filter(status__in=DeletionRequest.PENDING_STATUSES)[:200])

        def run():
            done, failed = self._execute(request, [d.pk for d in pending])
            level = messages.SUCCESS if not failed else messages.WARNING
            self.message_user(request, f"{done} deletion(s) completed, {failed} failed.", level)

        return confirm(
            self,
            request,
            title="Delete these accounts now?",
            message=(
                "Each account's personal data is erased or anonymized at once, without the "
                "grace period. This cannot be undone."
            ),
            items=[
                f"#{d.pk} {d.account} (scheduled for {d.scheduled_for:%Y-%m-%d})" for d in pending
            ],
            confirm_label="Delete now",
            on_confirm=run,
            done_url=reverse("admin:userflows_deletionrequest_changelist"),
            action="run_now",
        )

    def _execute(self, request, deletion_ids):
        done = failed = 0
        for deletion_id in deletion_ids:
            result = deletion_services.execute_deletion(deletion_id=deletion_id, actor=request.user)
            if result is not None and result.status == DeletionRequest.Status.COMPLETED:
                done += 1
            else:
                failed += 1
        return done, failed

    @admin.action(description="Cancel the selected deletions", permissions=["change"])
    def cancel(self, request, queryset):
        count = 0
        for pending in queryset.filter(status__in=DeletionRequest.PENDING_STATUSES):
            deletion_services.cancel_deletion(deletion=pending, actor=request.user)
            count += 1
        self.message_user(request, f"Canceled {count} deletion(s).", messages.SUCCESS)

    @action(description="Execute now", permissions=["change"], icon="delete_forever")
    def execute_now(self, request, object_id):
        deletion = self._pending_or_404(request, object_id)
        url = reverse("admin:userflows_deletionrequest_change", args=[deletion.pk])

        def run():
            done, _ = self._execute(request, [deletion.pk])
            if not done:
                raise DomainError("The deletion failed; see its error and try again later.")
            return "The account was deleted; the certificate is linked below."

        return confirm(
            self,
            request,
            title=f"Delete {deletion.account} now?",
            message=(
                "The account's personal data is erased or anonymized at once, without the rest "
                "of the grace period. This cannot be undone."
            ),
            confirm_label="Delete now",
            on_confirm=run,
            done_url=url,
        )

    @action(description="Cancel deletion", permissions=["change"], icon="undo")
    def cancel_this(self, request, object_id):
        deletion = self._pending_or_404(request, object_id)

        def run():
            deletion_services.cancel_deletion(deletion=deletion, actor=request.user)
            return "Deletion canceled."

        return confirm(
            self,
            request,
            title=f"Cancel the deletion of {deletion.account}?",
            message="The account is kept; the customer can ask again later.",
            confirm_label="Cancel deletion",
            on_confirm=run,
            done_url=reverse("admin:userflows_deletionrequest_change", args=[deletion.pk]),
            destructive=False,
        )

    def _pending_or_404(self, request, object_id):
        deletion = self.get_object(request, object_id)
        if deletion is None or deletion.status not in DeletionRequest.PENDING_STATUSES:
            raise Http404("No pending deletion with this id.")
        return deletion


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
