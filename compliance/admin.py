"""Compliance in admin (on django-unfold): the catalogue (rules editable, in history), check
runs with their checks, security assessments, DPIAs with the sign-off buttons, pattern
validations, the monitors' dashboard, the record of processing (CSV) and the audit trail.
Every write goes through `compliance.services`."""

import csv
import json

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from unfold.decorators import action, display

from compliance import audit, processing, selectors, services
from compliance.forms import AuditFilterForm, PiaForm, ReviewNoteForm
from compliance.models import (
    CheckRun,
    ComplianceCheck,
    Monitor,
    PatternValidation,
    PrivacyImpactAssessment,
    Requirement,
    SecurityAssessment,
)
from opsplatform.admin_base import (
    DANGER,
    INFO,
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

SEVERITY_COLOURS = {"low": INFO, "medium": WARNING, "high": DANGER, "critical": DANGER}
LEVEL_COLOURS = {"none": SUCCESS, **SEVERITY_COLOURS}
OUTCOME_COLOURS = {"passed": SUCCESS, "failed": DANGER, "not_evidenced": WARNING}
PIA_COLOURS = {"draft": "", "in_review": INFO, "approved": SUCCESS, "rejected": DANGER}


def _table(headers, rows) -> str:
    head = format_html_join(
        "", "<th scope='col' class='text-left pr-4'>{}</th>", ((h,) for h in headers)
    )
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        (
            (format_html_join("", "<td class='pr-4 align-top'>{}</td>", ((c,) for c in row)),)
            for row in rows
        ),
    )
    return format_html(
        "<table class='text-sm'><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body
    )


def bullets(lines) -> str:
    """A list of texts as a bulleted list (escaped), or a dash when there is none."""
    if not lines:
        return "—"
    return format_html(
        "<ul class='list-disc ml-4'>{}</ul>",
        format_html_join("", "<li>{}</li>", ((line,) for line in lines)),
    )


@admin.register(Requirement)
class RequirementAdmin(HistoryAdmin):
    list_display = ["code", "standard", "title", "severity_label", "catalogue_version"]
    list_filter = ["standard", "severity", "catalogue_version"]
    search_fields = ["code", "title", "text"]
    ordering = ["sort_order", "code"]
    readonly_fields = ["code", "standard", "catalogue_version"]
    fields = [
        "code",
        "standard",
        "title",
        "text",
        "severity",
        "rule",
        "remediation",
        "catalogue_version",
    ]
    severity_label = status_badge("severity", SEVERITY_COLOURS, "Severity")

    def has_add_permission(self, request):
        return False  # the catalogue arrives by data migration, one version at a time

    def save_model(self, request, obj, form, change):
        """The form has validated the rule; the service saves with the editor in history."""
        services.update_requirement(
            requirement=obj,
            actor=request.user,
            reason="edited in admin",
            **{
                name: form.cleaned_data[name]
                for name in services.EDITABLE
                if name in form.cleaned_data
            },
        )

    def has_delete_permission(self, request, obj=None):
        return False


class CheckInline(ReadOnlyInline):
    model = ComplianceCheck
    fields = ["requirement_code", "outcome_label", "severity", "finding", "remediation"]
    readonly_fields = fields
    outcome_label = status_badge("outcome", OUTCOME_COLOURS, "Outcome")


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "subject_name",
        "standards_list",
        "passed",
        "catalogue_version",
        "created_at",
    ]
    list_filter = ["kind", "passed"]
    search_fields = ["subject_name"]
    date_hierarchy = "created_at"
    list_select_related = ["created_by"]
    inlines = [CheckInline]
    fields = [
        "kind",
        "subject_name",
        "standards",
        "metadata",
        "catalogue_version",
        "passed",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields

    @display(description="Standards")
    def standards_list(self, obj):
        return ", ".join(s.upper() for s in obj.standards)


@admin.register(ComplianceCheck)
class ComplianceCheckAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "requirement_code", "outcome_label", "severity", "finding"]
    list_filter = ["outcome", "standard", "severity", "requirement_code"]
    list_select_related = ["run"]
    show_full_result_count = False
    outcome_label = status_badge("outcome", OUTCOME_COLOURS, "Outcome")


@admin.register(SecurityAssessment)
class SecurityAssessmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "feature_name", "level_label", "vulnerability_count", "created_at"]
    list_filter = ["security_level"]
    search_fields = ["feature_name"]
    date_hierarchy = "created_at"
    fields = [
        "feature_name",
        "level_label",
        "vulnerability_table",
        "recommendation_list",
        "unanswered",
        "metadata",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields
    level_label = status_badge("security_level", LEVEL_COLOURS, "Security level")

    @display(description="Vulnerabilities")
    def vulnerability_count(self, obj):
        return len(obj.vulnerabilities)

    @display(description="Vulnerabilities")
    def vulnerability_table(self, obj):
        if not obj.vulnerabilities:
            return "None found."
        return _table(
            ["Title", "OWASP", "CWE", "Severity", "Finding", "Remediation"],
            [
                (
                    v["title"],
                    v["owasp"],
                    v["cwe"],
                    badge(v["severity"], v["severity"], SEVERITY_COLOURS),
                    v["finding"],
                    v["remediation"],
                )
                for v in obj.vulnerabilities
            ],
        )

    @display(description="Recommendations")
    def recommendation_list(self, obj):
        return bullets(obj.recommendations)


@admin.register(PatternValidation)
class PatternValidationAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "pattern",
        "validation_passed",
        "pia_required",
        "level_label",
        "created_at",
    ]
    list_filter = ["validation_passed", "pia_required", "security_level"]
    list_select_related = ["run"]
    fields = [
        "pattern",
        "validation_passed",
        "pia_required",
        "pia_reasons",
        "level_label",
        "recommendation_list",
        "run_link",
        "security_assessment",
        "created_at",
    ]
    readonly_fields = fields
    level_label = status_badge("security_level", LEVEL_COLOURS, "Security level")

    @display(description="Pattern", ordering="run__subject_name")
    def pattern(self, obj):
        return obj.run.subject_name

    @display(description="Checks")
    def run_link(self, obj):
        url = reverse("admin:compliance_checkrun_change", args=[obj.run_id])
        return format_html(
            '<a class="text-primary-600" href="{}">Check run #{}</a>', url, obj.run_id
        )

    @display(description="Recommendations")
    def recommendation_list(self, obj):
        return bullets(obj.recommendations)


@admin.register(PrivacyImpactAssessment)
class PrivacyImpactAssessmentAdmin(ReadOnlyHistoryAdmin):
    list_display = [
        "id",
        "feature_name",
        "status_label",
        "dpia_required",
        "residual_risk",
        "created_at",
        "reviewed_by",
    ]
    list_filter = ["status", "dpia_required", "residual_risk"]
    search_fields = ["feature_name"]
    list_select_related = ["reviewed_by"]
    date_hierarchy = "created_at"
    actions_list = ["new_pia"]
    actions_detail = ["submit_this", "approve_this", "reject_this"]
    status_label = status_badge("status", PIA_COLOURS, "Status")
    fieldsets = [
        (
            "1. Need",
            {
                "classes": ["tab"],
                "fields": ["feature_name", "status_label", "dpia_required", "reasons"],
            },
        ),
        (
            "2-3. Processing",
            {
                "classes": ["tab"],
                "fields": [
                    "data_types_collected",
                    "data_retention_period",
                    "data_sharing",
                    "user_consent_required",
                    "systematic_monitoring",
                    "automated_decisions",
                    "description_table",
                ],
            },
        ),
        ("4. Necessity", {"classes": ["tab"], "fields": ["necessity_table"]}),
        (
            "5-6. Risks and measures",
            {"classes": ["tab"], "fields": ["risk_table", "residual_risk"]},
        ),
        (
            "7. Sign-off",
            {
                "classes": ["tab"],
                "fields": [
                    "created_by",
                    "created_at",
                    "submitted_by",
                    "submitted_at",
                    "reviewed_by",
                    "reviewed_at",
                    "review_note",
                ],
            },
        ),
    ]
    readonly_fields = [f for _, spec in fieldsets for f in spec["fields"]]

    def has_new_pia_permission(self, request, obj=None):
        return request.user.has_perm("compliance.add_privacyimpactassessment")

    def _in_status(self, object_id, status) -> bool:
        """Detail buttons show only where their move is allowed (Unfold passes the id)."""
        if object_id is None:
            return True
        return str(object_id).isdigit() and (
            PrivacyImpactAssessment.objects.filter(pk=int(object_id), status=status).exists()
        )

    def has_review_permission(self, request, object_id=None):
        return services.can_review(request.user) and self._in_status(
            object_id, PrivacyImpactAssessment.Status.IN_REVIEW
        )

    def has_submit_permission(self, request, object_id=None):
        return request.user.has_perm(
            "compliance.change_privacyimpactassessment"
        ) and self._in_status(object_id, PrivacyImpactAssessment.Status.DRAFT)

    @display(description="Why a DPIA is required (Art. 35)")
    def reasons(self, obj):
        if not obj.required_reasons:
            return "Not required: no Art. 35 criterion applies (kept as a record)."
        return format_html(
            "<ul class='list-disc ml-4'>{}</ul>",
            format_html_join("", "<li>{}</li>", ((r,) for r in obj.required_reasons)),
        )

    @display(description="Description")
    def description_table(self, obj):
        rows = [
            (k.replace("_", " "), ", ".join(v) if isinstance(v, list) else v)
            for k, v in obj.description.items()
        ]
        return _table(["", ""], rows)

    @display(description="Necessity and proportionality")
    def necessity_table(self, obj):
        return _table(
            ["Question", "", "Answer"],
            [
                (
                    n["question"],
                    badge(n["ok"], "yes" if n["ok"] else "no", {True: SUCCESS, False: DANGER}),
                    n["answer"],
                )
                for n in obj.necessity
            ],
        )

    @display(description="Risks (likelihood x severity) and measures")
    def risk_table(self, obj):
        colours = {"low": SUCCESS, "medium": WARNING, "high": DANGER}
        return _table(
            ["Risk", "Inherent", "Measure", "Residual"],
            [
                (
                    r["risk"],
                    badge(
                        r["level"],
                        f"{r['level']} {r['score']}: {r['likelihood']} x {r['severity']}",
                        colours,
                    ),
                    r["measure"],
                    badge(
                        r["residual_level"],
                        f"{r['residual_level']} {r['residual_score']}: "
                        f"{r['residual_likelihood']} x {r['residual_severity']}",
                        colours,
                    ),
                )
                for r in obj.risks
            ],
        )

    def _get(self, request, object_id, status):
        pia = self.get_object(request, object_id)
        if pia is None or pia.status != status:
            raise Http404("No DPIA in that state with this id.")
        return pia

    def _url(self, pia):
        return reverse("admin:compliance_privacyimpactassessment_change", args=[pia.pk])

    @action(description="Submit for review", permissions=["submit"], icon="send")
    def submit_this(self, request, object_id):
        pia = self._get(request, object_id, PrivacyImpactAssessment.Status.DRAFT)

        def run():
            services.submit_pia(pia_id=pia.pk, actor=request.user)
            return "Submitted for review by the compliance group."

        return confirm(
            self,
            request,
            title=f"Submit the DPIA of {pia.feature_name}?",
            message="The compliance group reviews it; it cannot be edited meanwhile.",
            confirm_label="Submit",
            on_confirm=run,
            done_url=self._url(pia),
            destructive=False,
        )

    def _review(self, request, object_id, decision, label):
        pia = self._get(request, object_id, PrivacyImpactAssessment.Status.IN_REVIEW)

        def run(data):
            services.review_pia(
                pia_id=pia.pk, decision=decision, note=data["note"], actor=request.user
            )
            return f"DPIA {decision}."

        return confirm(
            self,
            request,
            title=f"{label} the DPIA of {pia.feature_name}?",
            message=f"Residual risk: {pia.residual_risk}. Your note is kept in the DPIA's history.",
            confirm_label=label,
            on_confirm=run,
            done_url=self._url(pia),
            destructive=decision == "rejected",
            form=ReviewNoteForm,
        )

    @action(description="Approve", permissions=["review"], icon="verified")
    def approve_this(self, request, object_id):
        return self._review(request, object_id, PrivacyImpactAssessment.Status.APPROVED, "Approve")

    @action(description="Reject", permissions=["review"], icon="block")
    def reject_this(self, request, object_id):
        return self._review(request, object_id, PrivacyImpactAssessment.Status.REJECTED, "Reject")

    @action(description="New DPIA", url_path="new", permissions=["new_pia"], icon="add")
    def new_pia(self, request):
        form = PiaForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                pia = services.conduct_privacy_impact_assessment(
                    **form.cleaned_data, actor=request.user
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.detail)
            else:
                messages.success(request, "DPIA drafted; submit it for review when ready.")
                return HttpResponseRedirect(self._url(pia))
        return TemplateResponse(
            request,
            "admin/compliance/form_page.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "New DPIA",
                "form": form,
            },
        )


@admin.register(Monitor)
class MonitorAdmin(ReadOnlyHistoryAdmin):
    list_display = ["title", "result", "summary", "codes", "checked_at"]
    list_filter = ["passed"]
    ordering = ["sort_order", "key"]
    actions_list = ["dashboard_link", "run_all"]
    fields = [
        "key",
        "title",
        "result",
        "summary",
        "requirement_codes",
        "remediation",
        "evidence_json",
        "error",
        "checked_at",
        "duration_ms",
    ]
    readonly_fields = fields

    def has_run_permission(self, request, obj=None):
        return request.user.has_perm("compliance.run_monitors")

    @display(description="Result", label={"pass": SUCCESS, "fail": DANGER, "not run": ""})
    def result(self, obj):
        return "not run" if obj.passed is None else "pass" if obj.passed else "fail"

    @display(description="Requirements")
    def codes(self, obj):
        return ", ".join(obj.requirement_codes)

    @display(description="Evidence")
    def evidence_json(self, obj):
        return format_html(
            "<pre class='text-xs whitespace-pre-wrap'>{}</pre>", json.dumps(obj.evidence, indent=2)
        )

    @action(
        description="Dashboard", url_path="go-dashboard", permissions=["view"], icon="monitoring"
    )
    def dashboard_link(self, request):
        return HttpResponseRedirect(reverse("admin:compliance_monitor_dashboard"))

    @action(description="Run all monitors now", url_path="run", permissions=["run"], icon="refresh")
    def run_all(self, request):
        def run():
            found = services.run_monitors(actor=request.user)
            failing = sum(1 for m in found if not m.passed)
            return f"{len(found)} monitors refreshed; {failing} failing."

        return confirm(
            self,
            request,
            title="Run every monitor now?",
            message="Each monitor reads the platform's records and stores its result and evidence.",
            confirm_label="Run monitors",
            on_confirm=run,
            done_url=reverse("admin:compliance_monitor_dashboard"),
            destructive=False,
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("dashboard/", wrap(self.dashboard_view), name="compliance_monitor_dashboard"),
            path("audit-trail/", wrap(self.audit_view), name="compliance_monitor_audit_trail"),
            path("processing/", wrap(self.processing_view), name="compliance_monitor_processing"),
            path(
                "processing.csv",
                wrap(self.processing_csv),
                name="compliance_monitor_processing_csv",
            ),
            *super().get_urls(),
        ]

    def _page(self, request, template, title, **context):
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": title,
                **context,
            },
        )

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        monitors = selectors.monitor_list()
        board = selectors.dashboard(monitors)
        chart = {
            "labels": [row["label"] for row in board["by_standard"]],
            "datasets": [
                {
                    "label": "Passing",
                    "data": [row["passed"] for row in board["by_standard"]],
                    "backgroundColor": "#16a34a",
                },
                {
                    "label": "Failing",
                    "data": [row["failed"] for row in board["by_standard"]],
                    "backgroundColor": "#dc2626",
                },
            ],
        }
        options = {
            "responsive": True,
            "maintainAspectRatio": False,
            "animation": False,
            "plugins": {"legend": {"display": True, "position": "bottom"}},
            "scales": {
                "x": {"stacked": True},
                "y": {"stacked": True, "beginAtZero": True, "ticks": {"precision": 0}},
            },
        }
        return self._page(
            request,
            "admin/compliance/dashboard.html",
            "Compliance dashboard",
            board=board,
            chart=json.dumps(chart),
            chart_options=json.dumps(options),
            can_run=self.has_run_permission(request),
            run_url=reverse("admin:compliance_monitor_run_all"),
            can_audit=request.user.has_perm("compliance.view_audit_trail"),
        )

    def processing_view(self, request):
        if not request.user.has_perm("compliance.view_requirement"):
            raise PermissionDenied
        return self._page(
            request,
            "admin/compliance/processing.html",
            "Record of processing (GDPR Art. 30)",
            records=selectors.processing_record_list(),
            errors=processing.declaration_errors(),
        )

    def processing_csv(self, request):
        if not request.user.has_perm("compliance.view_requirement"):
            raise PermissionDenied
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="record-of-processing.csv"'
        writer = csv.writer(response)
        writer.writerow(processing.CSV_HEADER)
        writer.writerows(record.as_row() for record in selectors.processing_record_list())
        return response

    def audit_view(self, request):
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        if not request.user.has_perm("compliance.view_audit_trail"):
            raise PermissionDenied
        labels = list(audit.history_models())
        form = AuditFilterForm(request.GET or None, models=labels)
        page = None
        if not form.is_bound or form.is_valid():
            data = form.cleaned_data if form.is_bound else {}
            user_id = None
            username = (data.get("user") or "").strip()
            error = None
            if username:
                user_model = get_user_model()
                user_id = (
                    user_model.objects.filter(**{user_model.USERNAME_FIELD: username})
                    .values_list("pk", flat=True)
                    .first()
                )
                if user_id is None:
                    error = "No user with that username."
            if error:
                form.add_error("user", error)
            else:
                try:
                    page = audit.audit_page(
                        model=data.get("model") or None,
                        user_id=user_id,
                        date_from=data.get("date_from"),
                        date_to=data.get("date_to"),
                        cursor=data.get("cursor") or None,
                    )
                except DomainError as exc:
                    form.add_error(None, exc.detail)
        query = request.GET.copy()
        query.pop("cursor", None)
        older = None
        if page is not None and page.next_cursor:
            query_older = query.copy()
            query_older["cursor"] = page.next_cursor
            older = "?" + query_older.urlencode()
        return self._page(
            request,
            "admin/compliance/audit_trail.html",
            "Audit trail",
            form=form,
            page=page,
            older_url=older,
            newest_url="?" + query.urlencode(),
            is_first=not request.GET.get("cursor"),
        )
