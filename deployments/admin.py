"""Admin for rollouts and onboarding experiments, on django-unfold. Every button calls a
service; a page that changes something asks first and acts only on POST confirm=yes."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.decorators import action, display

from deployments import selectors, services
from deployments.models import (
    Deployment,
    GateEvaluation,
    OnboardingAssignment,
    OnboardingVersion,
    Release,
    RolloutFreeze,
)
from opsplatform.admin_base import HistoryAdmin, ReadOnlyHistoryAdmin, ReadOnlyInline, confirm
from opsplatform.errors import DomainError

STATUS_COLOURS = {
    "pending": "info",
    "in_progress": "warning",
    "paused": "info",
    "completed": "success",
    "rolled_back": "danger",
    "failed": "danger",
    "draft": "info",
    "active": "success",
    "retired": "warning",
}
RESULT_COLOURS = {"pass": "#15803d", "fail": "#b91c1c", "waiting": "#a16207", "no_data": "#6b7280"}


def _rate(value) -> str:
    return "—" if value is None else f"{value:.4%}" if value < 1 else f"{value:.4f}"


@admin.register(Release)
class ReleaseAdmin(HistoryAdmin):
    list_display = ["version", "created_at"]
    search_fields = ["version"]


class GateEvaluationInline(ReadOnlyInline):
    model = GateEvaluation
    extra = 0
    can_delete = False
    max_num = 0
    ordering = ["-evaluated_at", "-id"]
    fields = [
        "evaluated_at",
        "stage_index",
        "percentage",
        "gate_results",
        "outcome",
        "triggered_by",
    ]
    readonly_fields = fields
    show_change_link = False

    @display(description="Gates: exposed vs control (margin)")
    def gate_results(self, obj):
        return format_html_join(
            "",
            '<div><strong style="color:{}">{}</strong> {}: {} vs {} (margin {})</div>',
            (
                (
                    RESULT_COLOURS.get(g["result"], "#6b7280"),
                    g["result"].replace("_", " "),
                    g["gate"].replace("_", " "),
                    _rate(g["exposed_rate"]),
                    _rate(g["control_rate"]),
                    g["margin"],
                )
                for g in obj.gates
            ),
        )

    def has_add_permission(self, request, obj=None):
        return False


class RollbackForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


class ConfirmedActionsMixin:
    """Buttons on a change page that confirm first, then come back to that page."""

    change_url_name: str

    def _back(self, object_id) -> str:
        return reverse(self.change_url_name, args=[object_id])

    def _confirmed(self, request, object_id, *, heading, question, button, run):
        """The project's confirmation page (admin_base.confirm): acts only on a POST."""

        def act():
            run()
            return f"{heading}: done."

        return confirm(
            self,
            request,
            title=heading,
            message=question,
            confirm_label=button,
            on_confirm=act,
            done_url=self._back(object_id),
        )


@admin.register(Deployment)
class DeploymentAdmin(ConfirmedActionsMixin, HistoryAdmin):
    list_display = ["__str__", "strategy", "status_badge", "progress", "created_by", "created_at"]
    list_filter = ["status", "strategy"]
    list_select_related = ["release", "created_by"]
    search_fields = ["release__version"]
    readonly_fields = [
        "status",
        "progress",
        "stage_index",
        "current_percentage",
        "stage_started_at",
        "started_at",
        "paused_at",
        "completed_at",
        "rolled_back_at",
        "failed_at",
        "rollback_reason",
        "created_by",
        "created_at",
    ]
    fields = [
        "release",
        "replaces",
        "strategy",
        "stages",
        "bake_minutes",
        "max_error_rate_increase",
        "max_ticket_rate_increase",
        "max_health_drop",
        "min_events_per_arm",
        *readonly_fields,
    ]
    inlines = [GateEvaluationInline]
    actions_detail = [
        "dry_run_detail",
        "execute_detail",
        "pause_detail",
        "resume_detail",
        "promote_detail",
        "rollback_detail",
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Deployment.Status.PENDING:
            return self.fields  # the plan and gates are fixed once started
        return self.readonly_fields

    @display(description="Status", label=STATUS_COLOURS)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Progress")
    def progress(self, obj):
        if obj.pk is None or not obj.stages:
            return "—"
        stages = obj.stage_percentages
        done = (
            len(stages)
            if obj.status == Deployment.Status.COMPLETED
            else (obj.stage_index + 1 if obj.started_at else 0)
        )
        return format_html(
            '<span role="img" aria-label="stage {} of {}, {}%" title="stages {}">'
            '<span style="display:inline-block;width:8rem;height:.5rem;background:#e5e7eb;'
            'border-radius:.25rem;vertical-align:middle"><span style="display:block;height:100%;'
            'width:{}%;background:{};border-radius:.25rem"></span></span> {}%</span>',
            done,
            len(stages),
            obj.current_percentage,
            " → ".join(f"{p}%" for p in stages),
            obj.current_percentage,
            "#b91c1c" if obj.status in ("rolled_back", "failed") else "#2563eb",
            obj.current_percentage,
        )

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        created = services.create_deployment(
            version=obj.release.version,
            strategy=obj.strategy,
            rollout_percentage=obj.stage_percentages[0],
            stages=obj.stage_percentages,
            bake_minutes=obj.bake_minutes,
            actor=request.user,
            max_error_rate_increase=obj.max_error_rate_increase,
            max_ticket_rate_increase=obj.max_ticket_rate_increase,
            max_health_drop=obj.max_health_drop,
            min_events_per_arm=obj.min_events_per_arm,
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    # --- change-page buttons ---------------------------------------------------------------

    change_url_name = "admin:deployments_deployment_change"

    def _page(self, request, object_id, *, heading, question, button, form=None, plan=None):
        personas = sorted({s for row in plan or [] for s in row["accounts_by_persona"]})
        for row in plan or []:
            row["persona_counts"] = [row["accounts_by_persona"].get(s, 0) for s in personas]
        context = {
            **self.admin_site.each_context(request),
            "title": heading,
            "heading": heading,
            "question": question,
            "button": button,
            "form": form,
            "plan": plan,
            "personas": personas,
            "back": self._back(object_id),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "deployments/admin/confirm.html", context)

    @action(description="Dry run", url_path="dry-run", permissions=["view"])
    def dry_run_detail(self, request, object_id):
        try:
            result = services.execute_deployment(deployment_id=int(object_id), dry_run=True)
        except DomainError as exc:
            messages.error(request, exc.detail)
            return redirect(self._back(object_id))
        return self._page(
            request,
            object_id,
            heading=f"Dry run of {result['release']}",
            question="Executing would follow this plan.",
            button="",
            plan=result["stages"],
        )

    @action(description="Execute", url_path="execute", permissions=["change"])
    def execute_detail(self, request, object_id):
        return self._confirmed(
            request,
            object_id,
            heading="Execute deployment",
            question="Start exposing the first stage's accounts now?",
            button="Execute",
            run=lambda: services.execute_deployment(
                deployment_id=int(object_id), actor=request.user
            ),
        )

    @action(description="Pause", url_path="pause", permissions=["change"])
    def pause_detail(self, request, object_id):
        return self._confirmed(
            request,
            object_id,
            heading="Pause deployment",
            question="Hold at the current percentage?",
            button="Pause",
            run=lambda: services.pause_deployment(deployment_id=int(object_id), actor=request.user),
        )

    @action(description="Resume", url_path="resume", permissions=["change"])
    def resume_detail(self, request, object_id):
        return self._confirmed(
            request,
            object_id,
            heading="Resume deployment",
            question="Resume? The stage's bake time restarts now.",
            button="Resume",
            run=lambda: services.resume_deployment(
                deployment_id=int(object_id), actor=request.user
            ),
        )

    @action(description="Promote", url_path="promote", permissions=["change"])
    def promote_detail(self, request, object_id):
        return self._confirmed(
            request,
            object_id,
            heading="Promote deployment",
            question="Go to the next stage now, without waiting for the bake time?",
            button="Promote",
            run=lambda: services.promote_deployment(
                deployment_id=int(object_id), actor=request.user
            ),
        )

    @action(description="Roll back", url_path="rollback", permissions=["change"])
    def rollback_detail(self, request, object_id):
        form = RollbackForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and request.POST.get("confirm") == "yes" and form.is_valid():
            try:
                services.rollback_deployment(
                    deployment_id=int(object_id),
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
            except DomainError as exc:
                messages.error(request, exc.detail)
            else:
                messages.success(request, "Rolled back: nobody is exposed any more.")
            return redirect(self._back(object_id))
        return self._page(
            request,
            object_id,
            heading="Roll back deployment",
            question="Expose nobody to this release any more, and tell operations why.",
            button="Roll back",
            form=form,
        )


class AssignmentInline(ReadOnlyInline):
    model = OnboardingAssignment
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["account", "persona", "assigned_at"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "persona")


@admin.register(OnboardingVersion)
class OnboardingVersionAdmin(ConfirmedActionsMixin, HistoryAdmin):
    list_display = ["name", "status_badge", "rollout_percentage", "personas", "created_at"]
    list_filter = ["status"]
    search_fields = ["name"]
    filter_horizontal = ["target_personas"]
    readonly_fields = ["status", "activated_at", "retired_at", "created_at", "results"]
    actions_detail = ["activate_detail", "retire_detail"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("target_personas")

    @display(description="Status", label=STATUS_COLOURS)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Personas")
    def personas(self, obj):
        return ", ".join(sorted(p.slug for p in obj.target_personas.all())) or "all"

    @display(description="Results against control")
    def results(self, obj):
        if obj.pk is None:
            return "—"
        r = selectors.onboarding_results(version=obj)
        bars = []
        for i, arm in enumerate(r["arms"]):
            if arm["completion_rate"] is None:
                continue
            y = 10 + i * 34
            bars.append(
                format_html(
                    '<text x="0" y="{}" font-size="12">{}</text>'
                    '<rect x="110" y="{}" width="{}" height="16" fill="{}"></rect>'
                    '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#111827" stroke-width="2">'
                    '</line><text x="{}" y="{}" font-size="12">{}</text>',
                    y + 12,
                    arm["name"][:16],
                    y,
                    round(arm["completion_rate"] * 300, 1),
                    "#2563eb" if arm["version_id"] else "#9ca3af",
                    110 + round(arm["ci_low"] * 300, 1),
                    110 + round(arm["ci_high"] * 300, 1),
                    y + 8,
                    y + 8,
                    420,
                    y + 12,
                    f"{arm['completion_rate']:.1%} [{arm['ci_low']:.1%}, {arm['ci_high']:.1%}]",
                )
            )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    a["name"],
                    a["assigned"],
                    a["completed"],
                    "—" if a["completion_rate"] is None else f"{a['completion_rate']:.2%}",
                )
                for a in r["arms"]
            ),
        )
        chart = format_html(
            '<svg role="img" aria-label="Completion rate with its 95% interval per arm" '
            'width="560" height="{}">{}</svg>',
            20 + 34 * len(r["arms"]),
            format_html_join("", "{}", ((b,) for b in bars)),
        )
        summary = (
            f"lift {r['lift_abs']:+.2%} "
            f"[{r['lift_abs_ci_low']:+.2%}, {r['lift_abs_ci_high']:+.2%}], p = {r['p_value']:.4g}"
            if r["lift_abs"] is not None and r["p_value"] is not None
            else "no comparison yet"
        )
        srm = "—" if r["srm_p_value"] is None else f"{r['srm_p_value']:.4g}"
        return format_html(
            "<table><thead><tr><th>Arm</th><th>Assigned</th><th>Completed</th><th>Rate</th>"
            "</tr></thead><tbody>{}</tbody></table>{}<p>{}; sample-ratio p = {}{}; "
            "verdict: <strong>{}</strong> ({} days)</p>",
            rows,
            chart,
            summary,
            srm,
            " (MISMATCH)" if r["srm_flag"] else "",
            r["verdict"].replace("_", " "),
            r["window_days"],
        )

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # The personas are set by save_related after the service created the row.
        created = services.create_onboarding_version(
            version_name=obj.name,
            rollout_percentage=obj.rollout_percentage,
            features=obj.features,
            window_days=obj.window_days,
            min_sample_per_arm=obj.min_sample_per_arm,
            actor=request.user,
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    change_url_name = "admin:deployments_onboardingversion_change"

    @action(description="Activate", url_path="activate", permissions=["change"])
    def activate_detail(self, request, object_id):
        return self._confirmed(
            request,
            object_id,
            heading="Activate onboarding version",
            question="Start assigning eligible accounts to this version at its share?",
            button="Activate",
            run=lambda: services.activate_version(version_id=int(object_id), actor=request.user),
        )

    @action(description="Retire", url_path="retire", permissions=["change"])
    def retire_detail(self, request, object_id):
        return self._confirmed(
            request,
            object_id,
            heading="Retire onboarding version",
            question="Stop assigning this version? Accounts already on it keep it.",
            button="Retire",
            run=lambda: services.retire_version(version_id=int(object_id), actor=request.user),
        )


@admin.register(OnboardingAssignment)
class OnboardingAssignmentAdmin(HistoryAdmin):
    list_display = ["account", "version", "persona", "assigned_at"]
    list_filter = ["version", "persona"]
    list_select_related = ["account", "version", "persona"]
    search_fields = ["account__name"]
    readonly_fields = ["account", "version", "persona", "assigned_at"]

    def has_add_permission(self, request):
        return False  # assignments come from assign_user_to_version only

    def has_change_permission(self, request, obj=None):
        return False


# Account health (issue 10) registers its admin from its own package.
from deployments.health import admin as health_admin  # noqa: E402, F401


class LiftFreezeForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


@admin.register(RolloutFreeze)
class RolloutFreezeAdmin(ReadOnlyHistoryAdmin):
    """Rollout freezes (the scaling checkpoints' error budget): who froze, why, and who lifted
    them with which reason. Lifting is the only change, through the service."""

    list_display = ["__str__", "state", "checkpoint_name", "kpi_key", "created_at", "lifted_at"]
    list_filter = ["source"]
    search_fields = ["checkpoint_name", "kpi_key"]
    actions_detail = ["lift"]

    @display(description="State", label={"in force": "danger", "lifted": "success"})
    def state(self, obj):
        return "in force" if obj.active else "lifted"

    @action(description="Lift this freeze", permissions=["lift"], icon="lock_open")
    def lift(self, request, object_id):
        freeze = RolloutFreeze.objects.filter(pk=object_id).first()
        back = reverse("admin:deployments_rolloutfreeze_change", args=[object_id])
        if freeze is None or not freeze.active:
            self.message_user(request, "This freeze is not in force.", messages.WARNING)
            return redirect(back)

        def run(data):
            services.lift_rollout_freeze(
                reason=data["reason"],
                actor=request.user,
                kpi_key=freeze.kpi_key,
                source=freeze.source,
            )
            return "Freeze lifted."

        return confirm(
            self,
            request,
            title="Lift the rollout freeze",
            message=str(freeze) + ": " + freeze.reason,
            confirm_label="Lift",
            on_confirm=run,
            done_url=back,
            form=LiftFreezeForm,
        )

    def has_lift_permission(self, request, obj=None):
        return request.user.has_perm("deployments.lift_rolloutfreeze")
