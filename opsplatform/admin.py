"""Admin for the shared domain: list filters, search and history on every person-edited model."""

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success
from unfold import forms as unfold_forms
from unfold.decorators import action

from opsplatform import registry, services
from opsplatform.account_admin import core_panels, on_behalf_actions, reason_field
from opsplatform.admin_base import BaseAdmin, HistoryAdmin, confirm, tabbed_fieldsets
from opsplatform.errors import DomainError
from opsplatform.models import (
    Account,
    ApiToken,
    Campaign,
    CampaignMetric,
    Heartbeat,
    Persona,
    Sponsor,
    UsageEvent,
)

User = get_user_model()


class EstimatedCountPaginator(Paginator):
    """For tables of tens of millions of rows: on PostgreSQL an unfiltered changelist uses
    the planner's row estimate instead of a full COUNT(*)."""

    @cached_property
    def count(self):
        qs = self.object_list
        if connection.vendor == "postgresql" and not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > 100_000:
                return int(row[0])
        return super().count


@admin.register(Persona)
class PersonaAdmin(BaseAdmin):
    list_display = ["slug", "name"]
    search_fields = ["slug", "name"]


@admin.register(Account)
class AccountAdmin(HistoryAdmin):
    list_display = ["name", "user_email", "persona", "plan", "country", "created_at"]
    list_filter = ["persona", "plan", "country"]
    search_fields = ["name", "user__email", "=id"]
    list_select_related = ["persona", "user"]
    # The owner, the plan and the creation date are never edited here, superusers included:
    # read-only fields are left out of the form, so a tampered POST cannot set them. Accounts
    # are created by `create_account` (which also starts the subscription), the plan follows
    # billing, and other edits go through `services.update_account`, which checks permission.
    # The time zone is the customer's own choice (their profile): shown, not edited.
    fields = ["user", "name", "persona", "country", "time_zone", "plan", "created_at"]
    readonly_fields = ["user", "time_zone", "plan", "created_at"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="Email", ordering="user__email")
    def user_email(self, obj):
        return obj.user.email

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        updated = services.update_account(
            account_id=obj.pk,
            actor=request.user,
            **{f: form.cleaned_data[f] for f in services.ACCOUNT_EDITABLE_FIELDS},
        )
        obj.__dict__.update(updated.__dict__)

    def get_fieldsets(self, request, obj=None):
        # Tabs on the change page; fields not named here land on the first tab.
        return tabbed_fieldsets(
            self.get_fields(request, obj),
            {"Plan": ["persona", "plan", "country"], "Dates": ["created_at"]},
            first="Account",
        )

    # -- the customer 360: read-only panels from every app, actions on the customer's behalf --

    change_form_template = "admin/opsplatform/account_change_form.html"

    class Media:
        css = {"all": ["opsplatform/account_360.css"]}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        account = self.get_object(request, object_id)
        if account is not None:
            extra_context = {**(extra_context or {}), **self._customer_360(request, account)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _customer_360(self, request, account):
        actions = [
            {
                "label": act.label,
                "url": reverse("admin:opsplatform_account_on_behalf", args=[account.pk, name]),
                "destructive": act.destructive,
            }
            for name, act in on_behalf_actions().items()
            if request.user.has_perm(act.permission) and act.available(account)
        ]
        return {
            "panels": [
                *registry.account_panels(account, user=request.user, compact=False),
                *core_panels(account, user=request.user),
            ],
            "on_behalf": actions,
        }

    def get_urls(self):
        return [
            path(
                "<path:object_id>/on-behalf/<slug:name>/",
                self.admin_site.admin_view(self.on_behalf_view),
                name="opsplatform_account_on_behalf",
            ),
            *super().get_urls(),
        ]

    def on_behalf_view(self, request, object_id, name):
        """One action for the customer: its form with a required reason, then what it will do
        (a proration, a new date) and a confirmation, then the owning app's service. The
        reason is written into the history row the service made."""
        account = self.get_object(request, object_id)
        act = on_behalf_actions().get(name)
        if account is None or act is None:
            raise Http404("No such account or action.")
        if not (
            self.has_view_permission(request, account) and request.user.has_perm(act.permission)
        ):
            raise PermissionDenied
        done_url = reverse("admin:opsplatform_account_change", args=[account.pk])
        form_class = type("OnBehalfForm", (act.form,), {"reason": reason_field()})
        form = form_class(request.POST if request.method == "POST" else None, account=account)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{act.label} for {account.name}",
            "opts": self.model._meta,
            "original": account,
            "form": form,
            "action": act,
            "cancel_url": done_url,
            "preview": None,
        }
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            reason = data.pop("reason")
            if request.POST.get("confirm") == "yes":
                try:
                    with transaction.atomic():
                        text = act.run(account, data, actor=request.user, reason=reason)
                except DomainError as exc:
                    self.message_user(request, exc.detail, messages.ERROR)
                else:
                    self.message_user(request, text, messages.SUCCESS)
                return HttpResponseRedirect(done_url)
            try:
                context["preview"] = (
                    act.preview(account, data) if act.preview else [f"{act.label}."]
                )
            except DomainError as exc:
                form.add_error(None, exc.detail)
        return TemplateResponse(request, "admin/opsplatform/on_behalf.html", context)


@admin.register(Sponsor)
class SponsorAdmin(HistoryAdmin):
    list_display = ["name", "account", "created_at"]
    search_fields = ["name", "account__name"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    show_full_result_count = False


@admin.register(Campaign)
class CampaignAdmin(HistoryAdmin):
    list_display = [
        "name",
        "account",
        "sponsor",
        "starts_on",
        "ends_on",
        "deal_value",
        "status",
        "renewed_from",
    ]
    list_filter = ["status", "account__persona", ("renewed_from", admin.EmptyFieldListFilter)]
    search_fields = ["name", "sponsor__name", "account__name", "=id"]
    list_select_related = ["account", "sponsor", "renewed_from"]
    raw_id_fields = ["account", "sponsor", "renewed_from"]
    date_hierarchy = "starts_on"
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(CampaignMetric)
class CampaignMetricAdmin(BaseAdmin):
    list_display = ["campaign", "date", "impressions", "clicks", "conversions", "revenue", "spend"]
    search_fields = ["=campaign__id"]
    list_select_related = ["campaign"]
    raw_id_fields = ["campaign"]
    # No date_hierarchy: its DISTINCT-years query scans all 50M rows.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ["-date", "-id"]


@admin.register(UsageEvent)
class UsageEventAdmin(BaseAdmin):
    list_display = ["type", "account", "occurred_at", "idempotency_key", "received_at"]
    search_fields = ["=idempotency_key", "account__name"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(ApiToken)
class ApiTokenAdmin(HistoryAdmin):
    list_display = ["label", "user", "token_prefix", "created_at", "last_used_at", "is_active"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["label", "user__username", "user__email", "token_prefix"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["token_prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]
    actions_detail = ["revoke_this"]

    def get_fields(self, request, obj=None):
        return ["user", "label"] if obj is None else ["user", "label", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is None else ["user", *self.readonly_fields]

    @admin.display(boolean=True, description="Active")
    def is_active(self, obj):
        return obj.is_active

    def save_model(self, request, obj, form, change):
        if change:
            obj._history_user = request.user
            obj.save()
            return
        token, raw = services.issue_api_token(user=obj.user, label=obj.label, actor=request.user)
        obj.pk = token.pk
        obj.__dict__.update(token.__dict__)
        messages.warning(
            request,
            f"New API token for {token.user}: {raw} — copy it now; "
            "it is stored hashed and will not be shown again.",
        )

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.revoke_api_token(token=token, actor=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)

    @action(description="Revoke", permissions=["change"], icon="block", url_path="revoke")
    def revoke_this(self, request, object_id):
        token = self.get_object(request, object_id)
        if token is None:
            raise Http404

        def revoke():
            services.revoke_api_token(token=token, actor=request.user)
            return "Token revoked."

        return confirm(
            self,
            request,
            title=f"Revoke the token {token.label}?",
            message="Requests with this token are refused from now on; this cannot be undone.",
            confirm_label="Revoke",
            on_confirm=revoke,
            done_url=reverse("admin:opsplatform_apitoken_change", args=[token.pk]),
        )


@admin.register(Heartbeat)
class HeartbeatAdmin(BaseAdmin):
    list_display = ["name", "beat_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- third-party models, in the same look ------------------------------------------------------
# django.contrib.auth, django-q2 and django-axes register their own ModelAdmins; they are
# registered again on Unfold's bases so every page of the admin looks and works alike.


class UserAdmin(auth_admin.UserAdmin, BaseAdmin):
    form = unfold_forms.UserChangeForm
    add_form = unfold_forms.UserCreationForm
    change_password_form = unfold_forms.AdminPasswordChangeForm


class GroupAdmin(auth_admin.GroupAdmin, BaseAdmin):
    """Groups with Unfold's look."""


class ScheduleAdmin(q_admin.ScheduleAdmin, BaseAdmin):
    """django-q2 schedules with Unfold's look."""


class SuccessAdmin(q_admin.TaskAdmin, BaseAdmin):
    """Finished django-q2 tasks with Unfold's look."""


class FailureAdmin(q_admin.FailAdmin, BaseAdmin):
    """Failed django-q2 tasks with Unfold's look."""


class QueueAdmin(q_admin.QueueAdmin, BaseAdmin):
    """Queued django-q2 tasks with Unfold's look."""


class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin, BaseAdmin):
    """axes' failed sign-in counters with Unfold's look."""


class AccessLogAdmin(axes_admin.AccessLogAdmin, BaseAdmin):
    """axes' sign-in log with Unfold's look."""


class AccessFailureLogAdmin(axes_admin.AccessFailureLogAdmin, BaseAdmin):
    """axes' failed sign-in log with Unfold's look."""


def _reregister(model, admin_class):
    # Only what the package registered (django-q2 lists OrmQ only with the ORM broker).
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, admin_class)


for _model, _admin_class in [
    (User, UserAdmin),
    (Group, GroupAdmin),
    (Schedule, ScheduleAdmin),
    (Success, SuccessAdmin),
    (Failure, FailureAdmin),
    (OrmQ, QueueAdmin),
    (AccessAttempt, AccessAttemptAdmin),
    (AccessLog, AccessLogAdmin),
    (AccessFailureLog, AccessFailureLogAdmin),
]:
    _reregister(_model, _admin_class)
