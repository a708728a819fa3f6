"""Studies in admin (on django-unfold): the list, a study page with its definition, headline
figures, per-persona table and chart, the longitudinal view, CSV downloads and a run form.
Every write goes through `studies.services`."""

import csv

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action, display

from opsplatform.admin_base import HistoryAdmin
from opsplatform.errors import DomainError
from studies import charts, metrics, selectors, services
from studies.definitions import DEFINITIONS
from studies.forms import RunStudyForm
from studies.models import Study


def _csv_response(studies, filename: str) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerows(selectors.study_rows(studies))
    return response


@admin.register(Study)
class StudyAdmin(HistoryAdmin):
    list_display = [
        "id",
        "study_type",
        "period_start",
        "period_end",
        "segment",
        "status_label",
        "headline_figure",
        "computed_at",
        "duration_ms",
    ]
    list_filter = ["study_type", "status", "persona_segment"]
    list_select_related = ["persona_segment"]
    date_hierarchy = "period_end"
    ordering = ["-created_at", "-id"]
    actions = ["download_selected_csv"]
    actions_list = ["run_study", "longitudinal_view"]
    actions_detail = ["download_csv"]
    change_form_template = "admin/studies/study/change_form.html"
    readonly_fields = [
        "study_type",
        "period_start",
        "period_end",
        "persona_segment",
        "status",
        "definition_version",
        "requested_by",
        "schedule_name",
        "error",
        "created_at",
        "started_at",
        "computed_at",
        "failed_at",
        "duration_ms",
    ]
    exclude = ["results"]

    def has_add_permission(self, request):
        return False  # studies are run through the "Run a study" form (the service)

    def has_change_permission(self, request, obj=None):
        return False  # a result is a record: never edited

    def has_delete_permission(self, request, obj=None):
        return False

    def has_run_study_permission(self, request, obj=None):
        return request.user.has_perm("studies.add_study")

    @display(description="Segment", ordering="persona_segment__slug")
    def segment(self, obj):
        return obj.segment_slug or "all accounts"

    @display(
        description="Status",
        ordering="status",
        label={
            Study.Status.QUEUED: "info",
            Study.Status.RUNNING: "warning",
            Study.Status.COMPLETED: "success",
            Study.Status.FAILED: "danger",
        },
    )
    def status_label(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Headline")
    def headline_figure(self, obj):
        key = selectors.HEADLINE_METRIC.get(obj.study_type)
        if key is None or obj.study_type == Study.Type.PERSONA_IMPACT:
            return "—"
        value = (obj.results or {}).get(key)
        return "—" if value is None else f"{key} = {value}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        study = selectors.study_get(study_id=int(object_id)) if object_id.isdigit() else None
        extra = dict(extra_context or {})
        if study is not None:
            extra.update(self._report_context(study))
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _report_context(self, study: Study) -> dict:
        columns, rows = selectors.persona_table(study)
        chart = None
        if study.status == Study.Status.COMPLETED:
            if study.study_type == Study.Type.REVENUE_COHORTS:
                cohorts = study.results.get("cohorts", [])
                width = max((len(c["revenue_retention"]) for c in cohorts), default=0)
                chart = charts.line_chart(
                    {c["cohort"]: c["revenue_retention"] + [None] * width for c in cohorts[-6:]},
                    [f"month {k}" for k in range(width)],
                    title="Net revenue retention by cohort (month 0 = 1)",
                )
            else:
                metric = selectors.HEADLINE_METRIC[study.study_type]
                labels, lines = selectors.longitudinal(
                    study_type=study.study_type, metrics=[metric], until=study.period_end
                )
                chart = charts.line_chart(
                    lines[metric], labels, title=f"{metric} over past runs up to this one"
                )
        return {
            "study": study,
            "definition": DEFINITIONS[study.study_type],
            "headline": selectors.headline(study),
            "persona_columns": columns,
            "persona_rows": rows,
            "cohorts": (study.results or {}).get("cohorts"),
            "chart": chart,
        }

    @action(description="Download CSV", url_path="csv", permissions=["view"])
    def download_csv(self, request, object_id):
        study = selectors.study_get(study_id=int(object_id))
        return _csv_response([study], f"study-{study.pk}.csv")

    @admin.action(description="Download the selected studies as CSV")
    def download_selected_csv(self, request, queryset):
        return _csv_response(queryset.select_related("persona_segment"), "studies.csv")

    @action(description="Run a study", url_path="run", permissions=["run_study"])
    def run_study(self, request):
        form = RunStudyForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                study = services.request_study(
                    study_type=data["study_type"],
                    period_start=data["period_start"],
                    period_end=data["period_end"],
                    persona_segment=data["persona_segment"],
                    actor=request.user,
                    background=data["background"],
                )
            except DomainError as exc:
                form.add_error(
                    exc.field if exc.field in form.fields else None,
                    exc.detail,
                )
            else:
                messages.success(request, f"Study {study.pk}: {study.get_status_display()}.")
                return HttpResponseRedirect(reverse("admin:studies_study_change", args=[study.pk]))
        return TemplateResponse(
            request,
            "admin/studies/study/run.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Run a study",
                "form": form,
                "definitions": DEFINITIONS,
            },
        )

    @action(description="Longitudinal view", url_path="longitudinal", permissions=["view"])
    def longitudinal_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        study_type = request.GET.get("study_type", Study.Type.RENEWAL_RATE)
        if study_type not in metrics.SERIES_METRICS:
            study_type = Study.Type.RENEWAL_RATE
        labels, lines = selectors.longitudinal(
            study_type=study_type, metrics=metrics.SERIES_METRICS[study_type]
        )
        panels = [
            {"metric": metric, "chart": charts.line_chart(by_line, labels, title=metric)}
            for metric, by_line in lines.items()
        ]
        return TemplateResponse(
            request,
            "admin/studies/study/longitudinal.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Longitudinal view: {Study.Type(study_type).label}",
                "study_type": study_type,
                "study_types": [
                    (value, label)
                    for value, label in Study.Type.choices
                    if value in metrics.SERIES_METRICS
                ],
                "definition": DEFINITIONS[study_type],
                "panels": panels,
            },
        )
