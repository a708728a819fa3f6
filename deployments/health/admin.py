"""Admin for account health: the health list (status, score, delta arrow, top reason), each
account's breakdown and score history, the at-risk list for customer success, the summary
page (accounts by status per persona and the 90-day trend), and the editable scorecards.
Registered from deployments/admin.py."""

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q
from django.http import Http404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.admin import TabularInline
from unfold.decorators import action, display

from deployments.health import selectors, services
from deployments.health.factors import described
from deployments.health.models import (
    AccountHealth,
    AccountHealthCheck,
    AtRiskAccount,
    HealthStatus,
    Scorecard,
    ScorecardFactor,
)
from opsplatform.admin_base import (
    DANGER,
    INFO,
    SUCCESS,
    WARNING,
    HistoryAdmin,
    ReadOnlyAdmin,
    confirm,
    status_badge,
)

COLOURS = {
    HealthStatus.HEALTHY: SUCCESS,
    HealthStatus.AT_RISK: WARNING,
    HealthStatus.CRITICAL: DANGER,
    HealthStatus.NO_DATA: INFO,
}
LINE_COLOURS = {
    "healthy": "#16a34a",
    "at_risk": "#d97706",
    "critical": "#dc2626",
    "no_data": "#6b7280",
}
CHECK_PERM = "deployments.add_accounthealthcheck"


def _arrow(delta) -> str:
    if delta is None:
        return "—"
    if delta > 0:
        return format_html('<span title="up" aria-label="up {}">▲ +{}</span>', delta, delta)
    if delta < 0:
        return format_html('<span title="down" aria-label="down {}">▼ {}</span>', -delta, delta)
    return mark_safe('<span title="unchanged">► 0</span>')


def _chart_options() -> str:
    return json.dumps(
        {
            "responsive": True,
            "maintainAspectRatio": False,
            "animation": False,
            "plugins": {"legend": {"display": True, "position": "bottom"}},
            "scales": {"y": {"beginAtZero": True}},
        }
    )


def line_chart(labels: list[str], datasets: list[dict], *, height: int = 260) -> str:
    """Unfold's bundled Chart.js line component (served from this origin, no CDN)."""
    return render_to_string(
        "unfold/components/chart/line.html",
        {
            "data": json.dumps({"labels": labels, "datasets": datasets}),
            "options": _chart_options(),
            "height": height,
        },
    )


class ChangeFilter(admin.SimpleListFilter):
    title = "change"
    parameter_name = "change"

    def lookups(self, request, model_admin):
        return [
            ("turned_critical", "Turned critical"),
            ("turned_at_risk", "Turned at risk"),
            ("recovered", "Recovered (now healthy)"),
            ("worse", "Score fell"),
            ("better", "Score rose"),
            ("same_status", "Status unchanged"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        changed = ~Q(previous_status=F("status")) & ~Q(previous_status="")
        if value == "turned_critical":
            return queryset.filter(changed, status=HealthStatus.CRITICAL)
        if value == "turned_at_risk":
            return queryset.filter(changed, status=HealthStatus.AT_RISK)
        if value == "recovered":
            return queryset.filter(changed, status=HealthStatus.HEALTHY)
        if value == "worse":
            return queryset.filter(delta__lt=0)
        if value == "better":
            return queryset.filter(delta__gt=0)
        if value == "same_status":
            return queryset.filter(previous_status=F("status"))
        return queryset


class HealthAdminMixin:
    """What the health list and the at-risk list share: columns, breakdown, chart, check now."""

    list_select_related = ["account", "persona"]
    search_fields = ["account__name", "account__user__email"]
    show_full_result_count = False
    status_label = status_badge("status", COLOURS)
    actions = ["check_now"]
    actions_detail = ["check_now_detail"]
    fieldsets = [
        (
            "Breakdown",
            {
                "classes": ["tab"],
                "fields": [
                    "account",
                    "persona",
                    "status_label",
                    "score",
                    "delta_arrow",
                    "checked_at",
                    "status_changed_at",
                    "critical_episode",
                    "breakdown",
                    "recommendations",
                ],
            },
        ),
        ("Score history", {"classes": ["tab"], "fields": ["score_chart", "history_table"]}),
    ]
    readonly_fields = [
        "account",
        "persona",
        "status_label",
        "score",
        "delta_arrow",
        "checked_at",
        "status_changed_at",
        "critical_episode",
        "breakdown",
        "recommendations",
        "score_chart",
        "history_table",
    ]

    def get_queryset(self, request):
        # The change list skips list_select_related once the queryset has any select_related.
        return super().get_queryset(request).select_related("last_check", "account", "persona")

    @display(description="Delta", ordering="delta")
    def delta_arrow(self, obj):
        return _arrow(obj.delta)

    @display(description="Change")
    def change(self, obj):
        if not obj.previous_status or obj.previous_status == obj.status:
            return "—"
        return f"{HealthStatus(obj.previous_status).label} → {obj.get_status_display()}"

    @display(description="Top reason")
    def top_reason_text(self, obj):
        return obj.top_reason or "—"

    @display(description="Critical episode")
    def critical_episode(self, obj):
        if obj.critical_since is None:
            return "—"
        if obj.critical_ticket_id is None:
            return format_html("Since {} (ticket being opened)", f"{obj.critical_since:%Y-%m-%d}")
        try:
            url = reverse("admin:support_ticket_change", args=[obj.critical_ticket_id])
        except NoReverseMatch:
            return f"Since {obj.critical_since:%Y-%m-%d}, ticket #{obj.critical_ticket_id}"
        return format_html(
            'Since {}, <a class="text-primary-600" href="{}">ticket #{}</a>',
            f"{obj.critical_since:%Y-%m-%d}",
            url,
            obj.critical_ticket_id,
        )

    @display(description="Factors (latest check)")
    def breakdown(self, obj):
        check = obj.last_check
        if check is None:
            return "—"
        rows = format_html_join(
            "",
            '<tr><th scope="row" class="px-3 py-1 text-left">{}</th><td class="px-3 py-1">{}</td>'
            '<td class="px-3 py-1 text-right">{}</td><td class="px-3 py-1 text-right">{}</td>'
            '<td class="px-3 py-1 text-right">{}</td><td class="px-3 py-1 text-right">{}</td>'
            "</tr>",
            (
                (
                    f["label"],
                    f["display"],
                    f["points"] if f["has_data"] else "no data",
                    f["weight"],
                    f["contribution"] if f["has_data"] else "left out",
                    f["cost"] if f["has_data"] else "—",
                )
                for f in sorted(
                    described(check.factors),
                    key=lambda f: (not f["has_data"], -float(f["cost"] or 0), f["name"]),
                )
            ),
        )
        return format_html(
            '<table class="health-breakdown w-full" aria-label="Health factors">'
            '<thead><tr><th scope="col" class="px-3 py-1 text-left">Factor</th>'
            '<th scope="col" class="px-3 py-1 text-left">Value</th>'
            '<th scope="col" class="px-3 py-1 text-right">Points</th>'
            '<th scope="col" class="px-3 py-1 text-right">Weight</th>'
            '<th scope="col" class="px-3 py-1 text-right">Contribution</th>'
            '<th scope="col" class="px-3 py-1 text-right">Points lost</th></tr></thead>'
            "<tbody>{}</tbody></table>"
            '<p class="help">Score: the sum of points times weight over the sum of the weights '
            "of the factors with data (a {}-day window, checked {}).</p>",
            rows,
            check.days,
            f"{check.checked_at:%Y-%m-%d %H:%M} UTC",
        )

    @display(description="Recommendations")
    def recommendations(self, obj):
        check = obj.last_check
        if check is None or not check.recommendations:
            return "—"
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "",
                "<li>{} <small>({} points)</small></li>",
                ((r["text"], r["cost"]) for r in check.recommendations),
            ),
        )

    def _history(self, obj) -> list[AccountHealthCheck]:
        if not hasattr(obj, "_history"):
            obj._history = selectors.check_history(account_id=obj.account_id)[::-1]
        return obj._history

    @display(description="Score over time")
    def score_chart(self, obj):
        history = self._history(obj)
        if not history:
            return "—"
        return format_html(
            '<div class="health-chart" aria-label="Score history chart">{}</div>',
            line_chart(
                [f"{c.checked_at:%Y-%m-%d}" for c in history],
                [
                    {
                        "label": "Score",
                        "data": [None if c.score is None else float(c.score) for c in history],
                        "borderColor": "#2563eb",
                        "backgroundColor": "#2563eb",
                    }
                ],
            ),
        )

    @display(description="Checks")
    def history_table(self, obj):
        history = self._history(obj)[::-1]
        return format_html(
            '<table class="w-full" aria-label="Check history"><thead><tr>'
            '<th scope="col" class="px-3 py-1 text-left">Checked</th>'
            '<th scope="col" class="px-3 py-1 text-right">Score</th>'
            '<th scope="col" class="px-3 py-1 text-left">Status</th>'
            '<th scope="col" class="px-3 py-1 text-right">Delta</th>'
            '<th scope="col" class="px-3 py-1 text-left">By</th></tr></thead><tbody>{}</tbody>'
            "</table>",
            format_html_join(
                "",
                '<tr><td class="px-3 py-1">{}</td><td class="px-3 py-1 text-right">{}</td>'
                '<td class="px-3 py-1">{}</td><td class="px-3 py-1 text-right">{}</td>'
                '<td class="px-3 py-1">{}</td></tr>',
                (
                    (
                        f"{c.checked_at:%Y-%m-%d %H:%M}",
                        c.score if c.score is not None else "—",
                        c.get_status_display(),
                        c.delta if c.delta is not None else "—",
                        c.triggered_by,
                    )
                    for c in history
                ),
            ),
        )

    # --- check now ------------------------------------------------------------------------------

    def has_check_permission(self, request, obj=None):
        return request.user.has_perm(CHECK_PERM)

    def _change_url(self, object_id) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])

    @action(description="Check now", url_path="check-now", permissions=["check"], icon="refresh")
    def check_now_detail(self, request, object_id):
        health = self.get_object(request, object_id)
        if health is None:
            raise Http404

        def run():
            check = services.check_account_health(user_id=health.account_id, actor=request.user)
            return f"Checked {health.account}: {check.get_status_display()}, score {check.score}."

        return confirm(
            self,
            request,
            title=f"Check {health.account} now?",
            message="Measure every factor of this account now and record a new check.",
            confirm_label="Check now",
            on_confirm=run,
            done_url=self._change_url(object_id),
            destructive=False,
        )

    @admin.action(description="Check the selected accounts now", permissions=["check"])
    def check_now(self, request, queryset):
        ids = list(queryset.values_list("account_id", flat=True)[: services.MAX_BATCH])
        checks = services.check_accounts(account_ids=ids, actor=request.user)
        self.message_user(request, f"Checked {len(checks)} account(s).")


@admin.register(AccountHealth)
class AccountHealthAdmin(HealthAdminMixin, ReadOnlyAdmin):
    list_display = [
        "account",
        "persona",
        "status_label",
        "score",
        "delta_arrow",
        "change",
        "top_reason_text",
        "checked_at",
    ]
    list_filter = ["status", "persona", ChangeFilter, "top_factor"]
    ordering = ["score", "account_id"]

    def get_urls(self):
        return [
            path(
                "summary/",
                self.admin_site.admin_view(self.summary_view),
                name="deployments_accounthealth_summary",
            ),
            *super().get_urls(),
        ]

    def summary_view(self, request):
        """Accounts by status per persona, and the last 90 days of checks."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        summary = selectors.summary()
        trend = selectors.trend(days=90)
        labels = [f"{p['day']:%Y-%m-%d}" for p in trend]
        datasets = [
            {
                "label": HealthStatus(status).label,
                "data": [p["counts"][status] for p in trend],
                "borderColor": LINE_COLOURS[status],
                "backgroundColor": LINE_COLOURS[status],
            }
            for status in HealthStatus.values
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Account health summary",
            "opts": self.model._meta,
            "summary": summary,
            "statuses": HealthStatus.choices,
            "trend": trend,
            "status_chart": line_chart(labels, datasets, height=300),
            "score_chart": line_chart(
                labels,
                [
                    {
                        "label": "Mean score",
                        "data": [
                            None if p["mean_score"] is None else float(p["mean_score"])
                            for p in trend
                        ],
                        "borderColor": "#2563eb",
                        "backgroundColor": "#2563eb",
                    }
                ],
                height=220,
            ),
            "changelist_url": reverse("admin:deployments_accounthealth_changelist"),
        }
        return TemplateResponse(request, "admin/deployments/health_summary.html", context)


@admin.register(AtRiskAccount)
class AtRiskAccountAdmin(HealthAdminMixin, ReadOnlyAdmin):
    """Customer success's list: accounts at risk, the newest turns first, with top reasons."""

    list_display = ["account", "persona", "score", "delta_arrow", "since", "top_reasons"]
    list_filter = ["persona", "top_factor"]
    ordering = ["-status_changed_at", "account_id"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=HealthStatus.AT_RISK)

    @display(description="At risk since", ordering="status_changed_at")
    def since(self, obj):
        return f"{obj.status_changed_at:%Y-%m-%d}"

    @display(description="Top reasons")
    def top_reasons(self, obj):
        check = obj.last_check
        if check is None or not check.recommendations:
            return "—"
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{}</li>", ((r["text"],) for r in check.recommendations)),
        )


@admin.register(AccountHealthCheck)
class AccountHealthCheckAdmin(ReadOnlyAdmin):
    list_display = ["account", "persona", "checked_at", "status_label", "score", "delta_arrow"]
    list_filter = ["status", "persona"]
    list_select_related = ["account", "persona"]
    search_fields = ["account__name"]
    show_full_result_count = False
    status_label = status_badge("status", COLOURS)
    fields = [
        "account",
        "persona",
        "checked_at",
        "days",
        "score",
        "status",
        "previous_status",
        "delta",
        "factors",
        "recommendations",
        "triggered_by",
    ]
    readonly_fields = fields

    @display(description="Delta", ordering="delta")
    def delta_arrow(self, obj):
        return _arrow(obj.delta)


class ScorecardFactorInline(TabularInline):
    model = ScorecardFactor
    extra = 0
    fields = ["name", "weight", "thresholds"]
    tab = True


@admin.register(Scorecard)
class ScorecardAdmin(HistoryAdmin):
    """A persona's scorecard: bands here, factors (weight and thresholds) in the tab; every
    edit is in the history (the factors' too)."""

    list_display = ["persona", "healthy_min", "at_risk_min", "updated_at"]
    fields = ["persona", "healthy_min", "at_risk_min", "updated_at"]
    readonly_fields = ["persona", "updated_at"]
    inlines = [ScorecardFactorInline]

    def has_add_permission(self, request):
        return False  # one per persona, made by ensure_scorecards

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
