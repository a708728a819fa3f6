"""Admin for the scaling checkpoints (django-unfold): the checkpoint page (persona x KPI matrix
in colours, function and journey tables, its tickets and backlog items, each KPI's trend), the
KPI definitions with history, and the backlog."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from unfold.decorators import action

from checkpoints import selectors, services
from checkpoints.models import BacklogItem, Checkpoint, KPIDefinition, KPIState
from opsplatform.admin_base import HistoryAdmin, ReadOnlyAdmin, ReadOnlyHistoryAdmin, confirm
from opsplatform.charts import line_chart

STATUS_COLOURS = {
    "passed": "success",
    "warning": "warning",
    "failed": "danger",
    "no_data": "",
    "open": "danger",
    "in_progress": "warning",
    "done": "success",
    "wont_do": "",
}
CELL_CLASSES = {
    "passed": "bg-green-100 text-green-900",
    "warning": "bg-yellow-100 text-yellow-900",
    "failed": "bg-red-100 text-red-900",
    "no_data": "bg-base-100 text-base-500",
}


def _status_column(field):
    from opsplatform.admin_base import status_badge

    return status_badge(field, STATUS_COLOURS)


def _sections(results: dict) -> list[dict]:
    return [
        {
            "name": name,
            "label": section.get("label", name),
            "status": section["status"],
            "class": CELL_CLASSES.get(section["status"], ""),
            "kpis": [{**k, "class": CELL_CLASSES.get(k["status"], "")} for k in section["kpis"]],
            "stats": {
                key: section.get(key)
                for key in ("count", "succeeded", "success_rate", "p50_hours", "p95_hours")
                if key in section
            },
        }
        for name, section in results.items()
    ]


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ["name", "status_label", "days", "as_of", "created_at", "triggered_by"]
    list_filter = ["status"]
    search_fields = ["name"]
    ordering = ["-created_at", "-id"]
    status_label = _status_column("status")
    fields = ["name", "status_label", "summary", "days", "as_of", "created_at", "triggered_by"]
    readonly_fields = fields
    change_form_template = "admin/checkpoints/checkpoint/change_form.html"

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "latest/",
                self.admin_site.admin_view(self.latest_view),
                name="checkpoints_checkpoint_latest",
            ),
            *super().get_urls(),
        ]

    def latest_view(self, request):
        """The sidebar's "Latest checkpoint": the newest checkpoint's page (or the list)."""
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import redirect

        if not self.has_view_permission(request):
            raise PermissionDenied
        latest = Checkpoint.objects.order_by("-created_at", "-id").first()
        if latest is None:
            return redirect("admin:checkpoints_checkpoint_changelist")
        return redirect("admin:checkpoints_checkpoint_change", latest.id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if str(object_id).isdigit():
            checkpoint = Checkpoint.objects.filter(pk=int(object_id)).first()
            if checkpoint is not None:
                keys, rows = selectors.persona_matrix(checkpoint)
                for row in rows:
                    row["cells"] = [
                        None if c is None else {**c, "class": CELL_CLASSES.get(c["status"], "")}
                        for c in row["cells"]
                    ]
                labels, trends = selectors.kpi_trends()
                extra.update(
                    {
                        "checkpoint": checkpoint,
                        "matrix_keys": keys,
                        "matrix_rows": rows,
                        "functions": _sections(checkpoint.function_results),
                        "journeys": _sections(checkpoint.journey_results),
                        "escalations": [
                            {
                                **e,
                                "url": reverse(
                                    "admin:support_ticket_change", args=[e["ticket_id"]]
                                ),
                            }
                            for e in checkpoint.escalations
                        ],
                        "backlog": [
                            {
                                **b,
                                "url": reverse(
                                    "admin:checkpoints_backlogitem_change", args=[b["id"]]
                                ),
                            }
                            for b in checkpoint.backlog_items
                        ],
                        "charts": [
                            line_chart(series, labels, title=key, height=200)
                            for key, series in trends.items()
                            if any(v is not None for line in series.values() for v in line)
                        ],
                    }
                )
        return super().change_view(request, object_id, form_url, extra_context=extra)


@admin.register(KPIDefinition)
class KPIDefinitionAdmin(HistoryAdmin):
    list_display = [
        "key",
        "name",
        "scope_kind",
        "scope",
        "metric",
        "comparator",
        "target",
        "warning_band",
        "severity",
        "reliability",
        "active",
    ]
    list_filter = ["scope_kind", "severity", "reliability", "active"]
    search_fields = ["key", "name", "metric"]
    readonly_fields = ["created_at", "updated_at"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "metric":
            from django import forms
            from unfold.widgets import UnfoldAdminSelectWidget

            from checkpoints.metrics import REGISTRY

            return forms.ChoiceField(
                choices=[(key, f"{m.label} ({m.kind}, {m.unit})") for key, m in REGISTRY.items()],
                widget=UnfoldAdminSelectWidget,
                help_text="The registered metric (docs/checkpoints.md).",
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        from django.utils import timezone

        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(KPIState)
class KPIStateAdmin(ReadOnlyHistoryAdmin):
    list_display = ["kpi", "failing", "failing_since", "ticket_link", "paged", "last_checkpoint"]
    list_filter = ["failing"]
    list_select_related = ["kpi", "ticket", "last_checkpoint"]

    @admin.display(description="Ticket")
    def ticket_link(self, obj):
        if obj.ticket_id is None:
            return "—"
        url = reverse("admin:support_ticket_change", args=[obj.ticket_id])
        return format_html('<a href="{}">{}</a>', url, obj.ticket.reference)


@admin.register(BacklogItem)
class BacklogItemAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "title",
        "kpi",
        "priority",
        "status_label",
        "score",
        "times_failed",
        "last_checkpoint",
        "updated_at",
    ]
    list_filter = ["status", "priority"]
    list_select_related = ["kpi", "last_checkpoint"]
    search_fields = ["title", "kpi__key"]
    status_label = _status_column("status")
    actions_detail = ["start", "finish", "drop", "reopen"]

    def _move(self, request, object_id, status, label):
        back = reverse("admin:checkpoints_backlogitem_change", args=[object_id])
        return confirm(
            self,
            request,
            title=label,
            message=f"Move this backlog item to {status.replace('_', ' ')}?",
            confirm_label=label,
            on_confirm=lambda: (
                services.move_backlog_item(
                    item_id=int(object_id), status=status, actor=request.user
                )
                and f"{label}: done."
            ),
            done_url=back,
            destructive=False,
        )

    @action(description="Start", permissions=["move"], icon="play_arrow")
    def start(self, request, object_id):
        return self._move(request, object_id, "in_progress", "Start")

    @action(description="Done", permissions=["move"], icon="check")
    def finish(self, request, object_id):
        return self._move(request, object_id, "done", "Mark done")

    @action(description="Won't do", permissions=["move"], icon="block")
    def drop(self, request, object_id):
        return self._move(request, object_id, "wont_do", "Won't do")

    @action(description="Reopen", permissions=["move"], icon="undo")
    def reopen(self, request, object_id):
        return self._move(request, object_id, "open", "Reopen")

    def has_move_permission(self, request, obj=None):
        return request.user.has_perm("checkpoints.change_backlogitem")
