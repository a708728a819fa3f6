"""The agents' workplace: ticket queues, the thread with reply and internal-note forms,
transitions and escalation as actions, SLA highlighting, history and the support dashboard.
Every change goes through `support.services`; status is never edited directly."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.decorators import action
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from opsplatform import registry
from opsplatform.admin import EstimatedCountPaginator
from opsplatform.admin_base import (
    DANGER,
    INFO,
    PRIMARY,
    SUCCESS,
    WARNING,
    HistoryAdmin,
    ReadOnlyAdmin,
    ReadOnlyHistoryAdmin,
    ReadOnlyInline,
    badge,
    confirm,
    status_badge,
)
from opsplatform.errors import DomainError
from opsplatform.history import change_story
from support import selectors, services
from support.macros import active_macros, render_macro
from support.models import (
    MAX_LEVEL,
    Channel,
    CSATRating,
    Escalation,
    HeldEmail,
    Macro,
    Priority,
    SLAPolicy,
    Ticket,
    TicketMessage,
    parse_reference,
)

Status = Ticket.Status
STATUS_COLOURS = {
    Status.NEW: PRIMARY,
    Status.OPEN: INFO,
    Status.PENDING: WARNING,
    Status.ON_HOLD: WARNING,
    Status.RESOLVED: SUCCESS,
    Status.CLOSED: "",
}
PRIORITY_COLOURS = {
    Priority.LOW: "",
    Priority.NORMAL: INFO,
    Priority.HIGH: WARNING,
    Priority.URGENT: DANGER,
}
HELD_COLOURS = {
    HeldEmail.Status.HELD: WARNING,
    HeldEmail.Status.ACCEPTED: SUCCESS,
    HeldEmail.Status.DISCARDED: INFO,
}


def agents_queryset():
    """Staff who can work tickets: members of a support level, or superusers."""
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(groups__name__startswith="support_l") | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


# --- list filters -----------------------------------------------------------------------------


class AssigneeFilter(admin.SimpleListFilter):
    title = "assignee"
    parameter_name = "assignee"

    def lookups(self, request, model_admin):
        agents = [(str(u.pk), u.get_username()) for u in agents_queryset().only("username")]
        return [("me", "Mine"), ("none", "Unassigned"), *agents]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "me":
            return queryset.filter(assignee_id=request.user.pk)
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value and value.isdigit() and len(value) < 19:
            return queryset.filter(assignee_id=int(value))
        return queryset


class QueueViewFilter(admin.SimpleListFilter):
    """The saved views of the queue (`?view=`), shown as tabs above the list. Without a
    choice the queue shows open work; filtering by status alone searches all tickets."""

    title = "view"
    parameter_name = "view"

    def __init__(self, request, params, model, model_admin):
        self._status_filtered = any(key.startswith("status") for key in params)
        super().__init__(request, params, model, model_admin)

    def value(self):
        raw = super().value()
        if raw is None and self._status_filtered:
            return "all"
        return selectors.queue_view_key(raw)

    def lookups(self, request, model_admin):
        return selectors.QUEUE_VIEWS

    def choices(self, changelist):
        current = self.value()
        for key, label in self.lookup_choices:
            yield {
                "selected": current == key,
                "query_string": changelist.get_query_string(
                    {self.parameter_name: key}, [self.parameter_name]
                ),
                "display": label,
            }

    def queryset(self, request, queryset):
        return selectors.queue_filter(
            queryset, view=self.value(), user=request.user, now=timezone.now()
        )


def countdown(delta) -> str:
    """A short duration for the SLA column: `3d 4h`, `2h 05m`, `12m`."""
    minutes = int(abs(delta).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins:02d}m"
    return f"{mins}m"


SLA_SOON = 60 * 60  # seconds: a deadline within the hour is shown in amber


class LevelFilter(admin.SimpleListFilter):
    """L1-L4 from the constant, not a DISTINCT over every ticket (Django's default filter
    for a plain integer field scans the table on each page view)."""

    title = "level"
    parameter_name = "escalation_level__exact"

    def lookups(self, request, model_admin):
        return [(str(n), f"L{n}") for n in range(1, MAX_LEVEL + 1)]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit() and 1 <= int(value) <= MAX_LEVEL:
            return queryset.filter(escalation_level=int(value))
        return queryset


class BreachedFilter(admin.SimpleListFilter):
    title = "SLA"
    parameter_name = "breached"

    def lookups(self, request, model_admin):
        return [("yes", "Breached"), ("no", "Within SLA")]

    def queryset(self, request, queryset):
        condition = Ticket.breached_q(timezone.now())
        if self.value() == "yes":
            return queryset.filter(condition)
        if self.value() == "no":
            return queryset.exclude(condition)
        return queryset


# --- inlines ----------------------------------------------------------------------------------


class EscalationInline(ReadOnlyInline):
    model = Escalation
    fk_name = "ticket"
    fields = ["created_at", "from_level", "to_level", "reason", "escalated_by", "automatic"]
    readonly_fields = fields
    tab = True  # its own tab next to the ticket

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("escalated_by")


class CSATInline(ReadOnlyInline):
    model = CSATRating
    fields = ["rating", "comment", "created_at"]
    readonly_fields = fields
    tab = True


# --- forms ------------------------------------------------------------------------------------


class TicketChangeForm(forms.ModelForm):
    """Editable fields plus the agent's reply, internal note and a status move; the save is
    handed to the services by TicketAdmin.save_model."""

    reply = forms.CharField(
        required=False,
        max_length=50_000,
        label="Public reply",
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 5, "cols": 90}),
        help_text="Emailed to the requester and shown on their ticket page.",
    )
    internal_note = forms.CharField(
        required=False,
        max_length=50_000,
        label="Internal note",
        widget=UnfoldAdminTextareaWidget(
            attrs={"rows": 3, "cols": 90, "class": "support-note-input"}
        ),
        help_text="Only agents see internal notes; they are never sent to the customer.",
    )
    transition = forms.ChoiceField(
        required=False, label="Move status to", choices=[], widget=UnfoldAdminSelectWidget
    )
    transition_notes = forms.CharField(
        required=False, max_length=10_000, label="Status notes", widget=UnfoldAdminTextInputWidget
    )
    tags = forms.CharField(
        required=False,
        max_length=500,
        help_text="Comma-separated lowercase words.",
        widget=UnfoldAdminTextInputWidget,
    )
    macro = forms.ModelChoiceField(
        queryset=Macro.objects.none(),
        required=False,
        label="Macro",
        help_text="Inserts a saved reply into the reply box (sent as the reply if the box is "
        "empty) and applies the macro's status.",
        widget=UnfoldAdminSelectWidget(attrs={"data-support-macro": "1"}),
    )
    # What the page was opened on (support.selectors.activity_mark), for the collision notice.
    seen = forms.CharField(required=False, widget=forms.HiddenInput, max_length=50)

    # Set by TicketAdmin.get_form: the agent working the page.
    acting_user = None

    class Meta:
        model = Ticket
        fields = ["subject", "priority", "tags", "assignee"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["macro"].queryset = Macro.objects.filter(active=True).order_by("name")
        if self.instance.pk and not self.is_bound:
            self.initial["seen"] = selectors.activity_mark(self.instance)
        current = self.instance.status if self.instance.pk else Status.NEW
        allowed = sorted(Ticket.STATUS_MACHINE.table[current], key=Status.values.index)
        self.fields["transition"].choices = [
            ("", "— keep " + Status(current).label.lower() + " —"),
            *[(s, Status(s).label) for s in allowed],
        ]

    def clean_tags(self):
        value = self.cleaned_data["tags"]
        try:
            return services.normalize_tags(value.split(","))
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from None

    def clean(self):
        """The collision notice: when someone else replied or changed the ticket since the
        page was opened, nothing is sent; the agent reads what happened and saves again."""
        data = super().clean()
        if not self.instance.pk or self.acting_user is None:
            return data
        mark = data.get("seen") or ""
        notices = selectors.activity_since(ticket=self.instance, mark=mark, user=self.acting_user)
        if notices:
            fresh = selectors.activity_mark(self.instance)
            self.data = self.data.copy()
            self.data["seen"] = fresh  # saving again now sends it
            raise forms.ValidationError(
                "Since you opened this ticket: "
                + " ".join(notices)
                + " Nothing was sent. Read the thread, then save again to send."
            )
        return data


class TicketAddForm(forms.ModelForm):
    description = forms.CharField(
        max_length=50_000,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 6}),
        label="Description (the requester's request)",
    )

    class Meta:
        model = Ticket
        fields = ["account", "requester_email", "channel", "subject", "priority", "tags"]

    # Neither an account nor an email: the model's ticket_has_requester constraint answers,
    # in words (its violation_error_message), once.


class EscalateForm(forms.Form):
    level = forms.TypedChoiceField(
        choices=[(n, f"L{n}") for n in range(2, MAX_LEVEL + 1)],
        coerce=int,
        label="Escalate to level",
        widget=UnfoldAdminSelectWidget,
    )
    reason = forms.CharField(
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, "cols": 60}), max_length=2000
    )


class AssignForm(forms.Form):
    agent = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), widget=UnfoldAdminSelectWidget
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = agents_queryset()


class MergeForm(forms.Form):
    """The surviving ticket, by reference; the ticket being merged is `source`."""

    into = forms.CharField(
        max_length=30,
        label="Merge into ticket",
        help_text="The reference of the ticket that continues (e.g. SUP-000123).",
        widget=UnfoldAdminTextInputWidget,
    )

    def __init__(self, *args, source, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source

    def clean_into(self):
        value = self.cleaned_data["into"]
        ticket_id = parse_reference(value)
        target = Ticket.objects.filter(pk=ticket_id).first() if ticket_id else None
        if target is None:
            raise forms.ValidationError("No ticket has this reference.")
        if target.pk == self.source.pk:
            raise forms.ValidationError("A ticket cannot be merged into itself.")
        return target


DATE_ATTRS = {"type": "date", "class": " ".join(INPUT_CLASSES)}


class DashboardForm(forms.Form):
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs=DATE_ATTRS))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs=DATE_ATTRS))

    def clean(self):
        data = super().clean()
        try:
            data["window"] = selectors.metrics_window(data.get("date_from"), data.get("date_to"))
        except DomainError as exc:
            raise forms.ValidationError(exc.detail) from None
        return data


# --- ticket admin -----------------------------------------------------------------------------


@admin.register(Ticket)
class TicketAdmin(HistoryAdmin):
    # The columns an agent needs, compact enough for a 1366 px laptop (channel is a filter).
    list_display = [
        "reference_display",
        "subject",
        "requester_display",
        "priority_display",
        "status_display",
        "level_display",
        "assignee_display",
        "sla_due",
    ]
    list_display_links = ["reference_display", "subject"]
    list_filter = [
        QueueViewFilter,
        "status",
        "priority",
        "channel",
        LevelFilter,
        AssigneeFilter,
        BreachedFilter,
    ]
    search_fields = ["subject", "requester_email", "account__name"]
    search_help_text = "Reference (SUP-000123), subject, requester email or account name"
    list_select_related = ["account", "assignee"]
    list_per_page = 50
    list_fullwidth = True  # the queue uses the whole width (Unfold)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    raw_id_fields = ["account"]
    # The history page tells each change in words ("assignee: unassigned → agent2").
    history_list_display = ["what_changed"]
    # The thread is drawn by the change form template (support/admin/thread.html).
    inlines = [EscalationInline, CSATInline]
    actions = [
        "assign_to_me",
        "escalate",
        "resolve",
        "close",
        "reopen",
        "mark_pending",
        "put_on_hold",
        "merge_duplicates",
    ]
    # The ticket page's buttons; get_actions_detail shows those the ticket's status allows.
    actions_detail = [
        "assign_this_to_me",
        "assign_this",
        "escalate_this",
        "pending_this",
        "hold_this",
        "resolve_this",
        "close_this",
        "reopen_this",
        "merge_this",
    ]
    change_form_template = "support/admin/ticket_change_form.html"
    change_list_template = "support/admin/ticket_change_list.html"
    list_before_template = "support/admin/queue_views.html"
    change_readonly = [
        "reference_display",
        "status_display",
        "level_display",
        "sla_state",
        "account",
        "requester_email",
        "requester_name",
        "channel",
        "chat_session_id",
        "merged_into",
        "follow_up_of",
        "created_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "first_response_due_at",
        "resolution_due_at",
    ]

    class Media:
        css = {"all": ["support/admin.css"]}
        js = ["support/macros.js"]

    # -- the ticket page: thread, requester panel, macros --

    @admin.display(description="What changed")
    def what_changed(self, record):
        return change_story(record, record.prev_record)

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        # "What changed" tells each change with names; simple-history's own delta column
        # showed an emptied assignee as "Deleted user (pk=None)".
        return None

    def change_view(self, request, object_id, form_url="", extra_context=None):
        ticket = self.get_object(request, object_id)
        if ticket is not None:
            extra_context = {**(extra_context or {}), **self._page_context(request, ticket)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _page_context(self, request, ticket):
        thread = list(selectors.ticket_message_list(user=request.user, ticket=ticket))
        files = selectors.attachments_by_message(user=request.user, ticket=ticket)
        for message in thread:
            message.files = files.get(message.pk, [])
        account = ticket.account
        return {
            "thread": thread,
            "loose_files": files.get(None, []),
            "other_tickets": selectors.other_tickets(ticket=ticket),
            "requester_account": account,
            "account_url": (
                reverse("admin:opsplatform_account_change", args=[account.pk]) if account else ""
            ),
            "panels": (
                registry.account_panels(account, user=request.user, compact=True) if account else []
            ),
            "macro_texts": {
                str(m.pk): render_macro(m, ticket=ticket, agent=request.user)
                for m in active_macros()
            },
        }

    # -- the queue: saved views, SLA ordering --

    def get_queryset(self, request):
        # ModelAdmin.get_queryset orders before we could annotate: the same, annotated first.
        qs = selectors.queue_annotate(self.model._default_manager.get_queryset(), timezone.now())
        return qs.order_by(*self.get_ordering(request))

    def get_ordering(self, request):
        view = selectors.queue_view_key(request.GET.get("view"))
        if request.GET.get("view") is None and any(k.startswith("status") for k in request.GET):
            view = "all"
        return selectors.queue_ordering(view)

    def changelist_view(self, request, extra_context=None):
        current = selectors.queue_view_key(request.GET.get("view"))
        base = reverse("admin:support_ticket_changelist")
        views = [
            {"key": key, "label": label, "url": f"{base}?view={key}", "active": key == current}
            for key, label in selectors.QUEUE_VIEWS
        ]
        extra_context = {**(extra_context or {}), "queue_views": views}
        return super().changelist_view(request, extra_context)

    # -- columns --

    @admin.display(description="Reference", ordering="id")
    def reference_display(self, obj):
        return obj.reference

    @admin.display(description="Requester", ordering="account__name")
    def requester_display(self, obj):
        if obj.account is not None:
            return format_html(
                '<span class="support-requester" title="{}">{}</span>',
                obj.requester_email,
                obj.account.name,
            )
        return format_html('<span class="support-requester">{}</span>', obj.requester_email)

    @admin.display(description="Priority", ordering="priority")
    def priority_display(self, obj):
        return badge(obj.priority, obj.get_priority_display(), PRIORITY_COLOURS)

    @admin.display(description="Assignee", ordering="assignee__username")
    def assignee_display(self, obj):
        return obj.assignee.get_username() if obj.assignee else "—"

    @admin.display(description="Status", ordering="status")
    def status_display(self, obj):
        return badge(
            obj.status, obj.get_status_display(), STATUS_COLOURS, f"support-status-{obj.status}"
        )

    @admin.display(description="Level", ordering="escalation_level")
    def level_display(self, obj):
        return f"L{obj.escalation_level}"

    @admin.display(description="SLA due", ordering="queue_due")
    def sla_due(self, obj):
        """The next deadline as a countdown, coloured: red when breached, amber within the
        hour, paused while waiting on the customer; the exact time in the tooltip."""
        due = obj.next_due_at
        if due is None:
            return "—"
        label = "first response" if obj.first_response_at is None else "resolution"
        stamp = timezone.localtime(due).strftime("%Y-%m-%d %H:%M")
        now = timezone.now()
        title = f"{label} due {stamp}"
        if obj.is_breached(now):
            return format_html(
                '<span class="support-sla-breached" title="{}">⚠ {} over</span>',
                title,
                countdown((obj.sla_paused_at or now) - due),
            )
        if obj.status == Status.PENDING and obj.sla_paused_at is not None:
            return format_html(
                '<span class="support-sla-paused" title="{}">paused, {} left</span>',
                title,
                countdown(due - obj.sla_paused_at),
            )
        left = due - now
        css = "support-sla-soon" if left.total_seconds() <= SLA_SOON else "support-sla-ok"
        return format_html('<span class="{}" title="{}">in {}</span>', css, title, countdown(left))

    @admin.display(description="SLA")
    def sla_state(self, obj):
        if obj.pk is None:
            return "—"
        return self.sla_due(obj)

    # -- search by reference --

    def get_search_results(self, request, queryset, search_term):
        ticket_id = parse_reference(search_term)
        if ticket_id is not None and search_term.strip().upper().startswith("SUP"):
            return queryset.filter(pk=ticket_id), False
        return super().get_search_results(request, queryset, search_term)

    # -- forms --

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = TicketChangeForm if obj is not None else TicketAddForm
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None:
            form = type(form.__name__, (form,), {"acting_user": request.user})
        return form

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (
                    None,
                    {
                        "fields": [
                            "account",
                            "requester_email",
                            "channel",
                            "subject",
                            "priority",
                            "tags",
                            "description",
                        ]
                    },
                )
            ]
        fieldsets = [
            (
                None,
                {
                    "fields": [
                        ("reference_display", "status_display", "level_display"),
                        "subject",
                        ("priority", "tags"),
                        "assignee",
                        "sla_state",
                    ]
                },
            ),
            (
                "Requester",
                {
                    "classes": ["tab"],
                    "fields": [
                        ("account", "requester_email", "requester_name"),
                        ("channel", "chat_session_id"),
                        ("merged_into", "follow_up_of"),
                    ],
                },
            ),
            (
                "Dates",
                {
                    "classes": ["tab"],
                    "fields": [
                        ("created_at", "first_response_at"),
                        ("resolved_at", "closed_at"),
                        ("first_response_due_at", "resolution_due_at"),
                    ],
                },
            ),
        ]
        if self.has_change_permission(request, obj):
            fieldsets.append(
                (
                    "Reply",
                    {
                        "fields": [
                            "macro",
                            "reply",
                            "internal_note",
                            ("transition", "transition_notes"),
                            "seen",
                        ]
                    },
                )
            )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.change_readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee":
            kwargs["queryset"] = agents_queryset()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return False  # tickets are closed or merged, never deleted

    # -- saving through the services --

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            ticket = services.create_ticket(
                subject=data["subject"],
                description=data["description"],
                channel=data["channel"],
                priority=data["priority"],
                tags=(data.get("tags") or "").split(","),
                account=data.get("account"),
                requester_email=data.get("requester_email") or "",
                actor=request.user,
                author_kind=TicketMessage.Author.AGENT,
            )
            obj.pk = ticket.pk
            obj.__dict__.update({k: v for k, v in ticket.__dict__.items() if not k.startswith("_")})
            return
        # A domain error propagates to changeform_view, which rolls the whole save back.
        macro = data.get("macro")
        if macro is not None:
            # Without the page's script the macro is sent as written; its status applies
            # unless the agent chose a move themselves.
            if not data.get("reply"):
                data["reply"] = render_macro(macro, ticket=obj, agent=request.user)
            if macro.status and not data.get("transition"):
                data["transition"] = macro.status
        changed = set(form.changed_data)
        details = ("subject", "priority", "tags", "assignee")
        changes = {name: data[name] for name in details if name in changed}
        for field, name in (
            ("internal_note", "internal_note"),
            ("reply", "reply"),
            ("transition", "status"),
            ("transition_notes", "status_notes"),
        ):
            if data.get(field):
                changes[name] = data[field]
        services.update_ticket(ticket=obj, changes=changes, actor=request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as exc:
            # Raised by the save service inside the admin's transaction, which rolled back.
            self.message_user(request, f"Nothing was saved: {exc.detail}", messages.ERROR)
            return HttpResponseRedirect(request.path)

    def save_related(self, request, form, formsets, change):
        # The inlines are read-only; nothing of the ticket itself is saved by the form.
        if not change:
            super().save_related(request, form, formsets, change)

    def response_change(self, request, obj):
        if "_continue" not in request.POST and "_save" in request.POST:
            # Agents usually stay on the ticket after replying.
            messages.success(request, f"{obj.reference} updated.")
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def construct_change_message(self, request, form, formsets, add=False):
        # The read-only inlines are never saved, so only the form's fields are described.
        return super().construct_change_message(request, form, [], add)

    # -- actions --

    def _run(self, request, queryset, label, fn):
        done, skipped = 0, []
        tickets = queryset.order_by("id") if hasattr(queryset, "order_by") else queryset
        for ticket in tickets:
            try:
                fn(ticket)
                done += 1
            except DomainError as exc:
                skipped.append(f"{ticket.reference}: {exc.detail}")
        if done:
            self.message_user(request, f"{label}: {done} ticket(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                "Skipped " + "; ".join(skipped[:10]) + (" …" if len(skipped) > 10 else ""),
                messages.WARNING,
            )

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request, queryset):
        self._run(
            request,
            queryset,
            "Assigned to you",
            lambda t: services.assign_ticket(ticket=t, assignee=request.user, actor=request.user),
        )

    def _transition_action(self, request, queryset, status, label):
        self._run(
            request,
            queryset,
            label,
            lambda t: services.update_ticket_status(ticket=t, status=status, actor=request.user),
        )

    @admin.action(description="Resolve", permissions=["change"])
    def resolve(self, request, queryset):
        self._transition_action(request, queryset, Status.RESOLVED, "Resolved")

    @admin.action(description="Close", permissions=["change"])
    def close(self, request, queryset):
        self._transition_action(request, queryset, Status.CLOSED, "Closed")

    @admin.action(description="Reopen (resolved → open)", permissions=["change"])
    def reopen(self, request, queryset):
        self._transition_action(request, queryset, Status.OPEN, "Reopened")

    @admin.action(description="Mark pending (waiting on customer)", permissions=["change"])
    def mark_pending(self, request, queryset):
        self._transition_action(request, queryset, Status.PENDING, "Marked pending")

    @admin.action(description="Put on hold", permissions=["change"])
    def put_on_hold(self, request, queryset):
        self._transition_action(request, queryset, Status.ON_HOLD, "Put on hold")

    @admin.action(description="Escalate…", permissions=["change"])
    def escalate(self, request, queryset):
        """Asks for the level and reason on an intermediate page, then escalates each."""
        form = EscalateForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            level, reason = form.cleaned_data["level"], form.cleaned_data["reason"]
            self._run(
                request,
                queryset,
                f"Escalated to L{level}",
                lambda t: services.escalate_ticket(
                    ticket=t, level=level, reason=reason, actor=request.user
                ),
            )
            return None
        return self._escalate_page(
            request, queryset, request.POST.getlist(ACTION_CHECKBOX_NAME), form
        )

    def _escalate_page(self, request, queryset, selected, form=None):
        """The page asks for level and reason and posts the escalate action to the list."""
        tickets = list(queryset.order_by("id")[:200])
        context = {
            **self.admin_site.each_context(request),
            "title": "Escalate tickets",
            "opts": self.model._meta,
            "form": form or EscalateForm(),
            "tickets": tickets,
            "count": queryset.count(),
            "selected": selected,
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "changelist_url": reverse("admin:support_ticket_changelist"),
        }
        return TemplateResponse(request, "support/admin/escalate.html", context)

    @admin.action(description="Merge selected into the oldest", permissions=["change"])
    def merge_duplicates(self, request, queryset):
        """Asks first (a merge closes the other tickets and cannot be undone), then merges."""
        tickets = list(queryset.order_by("created_at", "id")[:50])
        if len(tickets) < 2:
            self.message_user(request, "Select at least two tickets to merge.", messages.WARNING)
            return None
        target = tickets[0]
        return confirm(
            self,
            request,
            title=f"Merge {len(tickets) - 1} ticket(s) into {target.reference}?",
            message=(
                f"Their threads move to {target.reference} ({target.subject}); the merged "
                "tickets are closed and point to it. A merge cannot be undone."
            ),
            items=[f"{t.reference}: {t.subject}" for t in tickets[1:]],
            confirm_label="Merge",
            on_confirm=lambda: self._run(
                request,
                tickets[1:],
                f"Merged into {target.reference}",
                lambda t: services.merge_tickets(source=t, target=target, actor=request.user),
            ),
            done_url=reverse("admin:support_ticket_changelist"),
            action="merge_duplicates",
        )

    # -- buttons on the ticket page (each asks on a page of its own, then posts) --

    def _ticket_or_404(self, request, object_id):
        ticket = self.get_object(request, object_id)
        if ticket is None:
            raise Http404("No such ticket.")
        return ticket

    def _ticket_button(self, request, object_id, *, title, message, label, run, done):
        ticket = self._ticket_or_404(request, object_id)
        return confirm(
            self,
            request,
            title=title.format(ref=ticket.reference),
            message=message,
            items=[f"{ticket.reference}: {ticket.subject} ({ticket.get_status_display()})"],
            confirm_label=label,
            on_confirm=lambda: _then(run, ticket, done),
            done_url=reverse("admin:support_ticket_change", args=[ticket.pk]),
            destructive=False,
        )

    @action(description="Assign to me", permissions=["change"], icon="person_add")
    def assign_this_to_me(self, request, object_id):
        return self._ticket_button(
            request,
            object_id,
            title="Assign {ref} to you?",
            message="You become the ticket's assignee; the previous assignee is replaced.",
            label="Assign to me",
            run=lambda t: services.assign_ticket(
                ticket=t, assignee=request.user, actor=request.user
            ),
            done="Assigned to you.",
        )

    @action(description="Resolve", permissions=["change"], icon="task_alt")
    def resolve_this(self, request, object_id):
        return self._ticket_button(
            request,
            object_id,
            title="Resolve {ref}?",
            message="The requester is told the ticket is resolved and may reopen it by replying.",
            label="Resolve",
            run=lambda t: services.update_ticket_status(
                ticket=t, status=Status.RESOLVED, actor=request.user
            ),
            done="Resolved.",
        )

    # Which buttons a ticket in each status shows (the service still checks every move).
    BUTTONS_BY_STATUS = {
        "assign_this_to_me": set(Status.values) - {Status.CLOSED},
        "assign_this": set(Status.values) - {Status.CLOSED},
        "escalate_this": set(Ticket.ACTIVE_STATUSES),
        "pending_this": {s for s, to in Ticket.STATUS_MACHINE.pairs() if to == Status.PENDING},
        "hold_this": {s for s, to in Ticket.STATUS_MACHINE.pairs() if to == Status.ON_HOLD},
        "resolve_this": {s for s, to in Ticket.STATUS_MACHINE.pairs() if to == Status.RESOLVED},
        "close_this": {s for s, to in Ticket.STATUS_MACHINE.pairs() if to == Status.CLOSED},
        "reopen_this": {Status.RESOLVED},
        "merge_this": set(Status.values) - {Status.CLOSED},
    }

    def get_actions_detail(self, request, object_id):
        buttons = super().get_actions_detail(request, object_id)
        status = Ticket.objects.filter(pk=object_id).values_list("status", flat=True).first()
        prefix = "support_ticket_"  # Unfold names a button <app>_<model>_<method>
        return [
            b
            for b in buttons
            if status
            in self.BUTTONS_BY_STATUS.get(b.action_name.removeprefix(prefix), set(Status.values))
        ]

    def _status_button(self, request, object_id, *, to, title, message, label, done):
        return self._ticket_button(
            request,
            object_id,
            title=title,
            message=message,
            label=label,
            run=lambda t: services.update_ticket_status(ticket=t, status=to, actor=request.user),
            done=done,
        )

    @action(description="Assign…", permissions=["change"], icon="group")
    def assign_this(self, request, object_id):
        ticket = self._ticket_or_404(request, object_id)

        def run(data):
            services.assign_ticket(ticket=ticket, assignee=data["agent"], actor=request.user)
            return f"Assigned to {data['agent'].get_username()}."

        return confirm(
            self,
            request,
            title=f"Assign {ticket.reference}",
            message="Choose the agent who owns this ticket from now on.",
            items=[f"{ticket.reference}: {ticket.subject}"],
            confirm_label="Assign",
            on_confirm=run,
            done_url=reverse("admin:support_ticket_change", args=[ticket.pk]),
            destructive=False,
            form=AssignForm,
        )

    @action(description="Pending", permissions=["change"], icon="hourglass_empty")
    def pending_this(self, request, object_id):
        return self._status_button(
            request,
            object_id,
            to=Status.PENDING,
            title="Mark {ref} pending?",
            message="The ticket waits on the customer: its SLA clocks pause until they reply.",
            label="Mark pending",
            done="Marked pending.",
        )

    @action(description="On hold", permissions=["change"], icon="pause_circle")
    def hold_this(self, request, object_id):
        return self._status_button(
            request,
            object_id,
            to=Status.ON_HOLD,
            title="Put {ref} on hold?",
            message="The ticket waits on someone other than the customer; its clocks keep running.",
            label="Put on hold",
            done="Put on hold.",
        )

    @action(description="Close", permissions=["change"], icon="lock")
    def close_this(self, request, object_id):
        return self._status_button(
            request,
            object_id,
            to=Status.CLOSED,
            title="Close {ref}?",
            message="A closed ticket cannot be reopened; a customer reply opens a new one.",
            label="Close",
            done="Closed.",
        )

    @action(description="Reopen", permissions=["change"], icon="undo")
    def reopen_this(self, request, object_id):
        return self._status_button(
            request,
            object_id,
            to=Status.OPEN,
            title="Reopen {ref}?",
            message="The ticket goes back to open work and its resolution clock runs again.",
            label="Reopen",
            done="Reopened.",
        )

    @action(description="Merge into…", permissions=["change"], icon="merge")
    def merge_this(self, request, object_id):
        """Asks for the surviving ticket, shows both side by side, merges on confirmation."""
        ticket = self._ticket_or_404(request, object_id)
        done_url = reverse("admin:support_ticket_change", args=[ticket.pk])
        form = MergeForm(request.POST or None, source=ticket)
        if request.method == "POST" and form.is_valid():
            target = form.cleaned_data["into"]
            if request.POST.get("confirm") == "yes":
                try:
                    services.merge_tickets(source=ticket, target=target, actor=request.user)
                except DomainError as exc:
                    self.message_user(request, exc.detail, messages.ERROR)
                    return HttpResponseRedirect(done_url)
                self.message_user(
                    request, f"{ticket.reference} merged into {target.reference}.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:support_ticket_change", args=[target.pk])
                )
            pair = selectors.merge_preview(source=ticket, target=target)
            return TemplateResponse(
                request,
                "support/admin/merge.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"Merge {ticket.reference} into {target.reference}?",
                    "opts": self.model._meta,
                    "pair": pair,
                    "form": form,
                    "confirming": True,
                    "cancel_url": done_url,
                },
            )
        return TemplateResponse(
            request,
            "support/admin/merge.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Merge {ticket.reference} into another ticket",
                "opts": self.model._meta,
                "form": form,
                "confirming": False,
                "cancel_url": done_url,
            },
        )

    @action(description="Escalate…", permissions=["change"], icon="trending_up")
    def escalate_this(self, request, object_id):
        """The escalate form of the changelist action, for this one ticket."""
        ticket = self._ticket_or_404(request, object_id)
        return self._escalate_page(request, Ticket.objects.filter(pk=ticket.pk), [str(ticket.pk)])

    # -- dashboard --

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="{}_{}_dashboard".format(*info),
            ),
            *super().get_urls(),
        ]

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = DashboardForm(request.GET or None)
        window = (None, None)
        if form.is_bound and form.is_valid():
            window = form.cleaned_data["window"]
        metrics = selectors.support_metrics_get(
            user=request.user, date_from=window[0], date_to=window[1]
        )
        statuses = [(s, Status(s).label) for s in Ticket.ACTIVE_STATUSES]
        context = {
            **self.admin_site.each_context(request),
            "title": "Support dashboard",
            "opts": self.model._meta,
            "form": form,
            "m": metrics,
            "levels": [1, 2, 3, 4],
            "status_rows": [(label, metrics.open_by_status[s]) for s, label in statuses],
            "channel_rows": _duration_rows(metrics, "channel", Channel),
            "priority_rows": _duration_rows(metrics, "priority", Priority),
            "changelist_url": reverse("admin:support_ticket_changelist"),
            "open_chart": _open_chart(metrics, statuses),
            "response_chart": _response_chart(metrics),
            "stacked_options": json.dumps(_chart_options(stacked=True)),
            "grouped_options": json.dumps(_chart_options(stacked=False)),
        }
        return TemplateResponse(request, "support/admin/dashboard.html", context)


def _then(run, ticket, message):
    run(ticket)
    return message


def _chart_options(*, stacked):
    return {
        "responsive": True,
        "maintainAspectRatio": False,
        "animation": False,
        "plugins": {"legend": {"display": True, "position": "bottom"}},
        "scales": {
            "x": {"stacked": stacked},
            "y": {"stacked": stacked, "beginAtZero": True, "ticks": {"precision": 0}},
        },
    }


LEVEL_COLOURS = ["#2563eb", "#f59e0b", "#dc2626", "#7c3aed"]


def _open_chart(metrics, statuses):
    """Chart.js data: open tickets per status, one stacked bar per escalation level."""
    return json.dumps(
        {
            "labels": [label for _, label in statuses],
            "datasets": [
                {
                    "label": f"L{level}",
                    "data": [metrics.open_by_status[s][level] for s, _ in statuses],
                    "backgroundColor": LEVEL_COLOURS[level - 1],
                    "stack": "open",
                }
                for level in (1, 2, 3, 4)
            ],
        }
    )


def _response_chart(metrics):
    """Chart.js data: median first-response and resolution time per channel, in hours."""

    def hours(p):
        return None if p.median_seconds is None else round(p.median_seconds / 3600, 2)

    return json.dumps(
        {
            "labels": [label for _, label in Channel.choices],
            "datasets": [
                {
                    "label": "Median first response (h)",
                    "data": [
                        hours(metrics.first_response["channel"][v]) for v, _ in Channel.choices
                    ],
                    "backgroundColor": "#2563eb",
                },
                {
                    "label": "Median resolution (h)",
                    "data": [hours(metrics.resolution["channel"][v]) for v, _ in Channel.choices],
                    "backgroundColor": "#16a34a",
                },
            ],
        }
    )


def _duration_rows(metrics, group, choices):
    return [
        (label, metrics.first_response[group][value], metrics.resolution[group][value])
        for value, label in choices.choices
    ]


# --- other support models ---------------------------------------------------------------------


@admin.register(SLAPolicy)
class SLAPolicyAdmin(HistoryAdmin):
    list_display = ["priority", "first_response_minutes", "resolution_minutes"]
    ordering = ["priority"]

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return ["priority"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        super().save_model(request, obj, form, change)


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = [
        "ticket",
        "from_level",
        "to_level",
        "automatic",
        "escalated_by",
        "created_at",
        "notified_at",
        "reason",
    ]
    list_filter = ["automatic", "to_level"]
    search_fields = ["reason"]
    list_select_related = ["ticket", "escalated_by"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator


@admin.register(CSATRating)
class CSATRatingAdmin(ReadOnlyAdmin):
    list_display = ["ticket", "rating", "comment", "created_at"]
    list_filter = ["rating"]
    list_select_related = ["ticket"]
    show_full_result_count = False


@admin.register(HeldEmail)
class HeldEmailAdmin(ReadOnlyHistoryAdmin):
    """The review queue of inbound emails from unverified senders: nothing reaches a ticket
    (or the customer) until an agent accepts the sender."""

    list_display = [
        "received_at",
        "from_email",
        "subject",
        "unverified_flag",
        "status_label",
        "ticket",
        "reviewed_by",
    ]
    list_filter = ["status"]
    search_fields = ["from_email", "subject", "message_id"]
    list_select_related = ["ticket", "reviewed_by"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    actions = ["accept_sender", "discard"]
    readonly_fields = [
        "from_email",
        "from_name",
        "subject",
        "body",
        "message_id",
        "thread_ids",
        "reason",
        "status",
        "received_at",
        "reviewed_at",
        "reviewed_by",
        "ticket",
    ]

    status_label = status_badge("status", HELD_COLOURS)

    @admin.display(description="unverified sender", ordering="reason")
    def unverified_flag(self, obj):
        return badge("held", f"⚠ {obj.reason}", {"held": WARNING})

    def has_review_permission(self, request):
        return request.user.has_perm("support.change_heldemail")

    def _review(self, request, queryset, label, fn):
        done, skipped = [], []
        for held in queryset.order_by("id"):
            try:
                done.append(fn(held))
            except DomainError as exc:
                skipped.append(f"{held.from_email}: {exc.detail}")
        if done:
            self.message_user(request, f"{label}: {len(done)} email(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Skipped " + "; ".join(skipped[:10]), messages.WARNING)
        return done

    @admin.action(description="Accept sender (thread and acknowledge)", permissions=["review"])
    def accept_sender(self, request, queryset):
        self._review(
            request,
            queryset,
            "Accepted",
            lambda held: services.accept_held_email(held=held, actor=request.user),
        )

    @admin.action(description="Discard", permissions=["review"])
    def discard(self, request, queryset):
        self._review(
            request,
            queryset,
            "Discarded",
            lambda held: services.discard_held_email(held=held, actor=request.user),
        )


@admin.register(Macro)
class MacroAdmin(HistoryAdmin):
    """Saved replies agents insert on the ticket page; placeholders are filled per ticket."""

    list_display = ["name", "status", "active", "created_at"]
    list_filter = ["active", "status"]
    search_fields = ["name", "body"]
    fields = ["name", "body", "status", "active"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.base_fields[
            "body"
        ].help_text = "Placeholders: {{ requester_name }}, {{ reference }}, {{ agent_name }}."
        return form

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        super().save_model(request, obj, form, change)
