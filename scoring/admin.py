"""Feature scoring in admin (on django-unfold): features with their latest score and a bar chart
of the dimensions, a comparison page, the roadmap board by tier, model versions with their
calibration figures and a predicted-against-actual scatter chart, outcomes. Every write goes
through `scoring.services`."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action, display

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
from opsplatform.errors import DomainError
from scoring import charts, selectors, services
from scoring.formulas import DIMENSIONS
from scoring.metadata import MetadataError, validate_metadata
from scoring.models import Feature, FeatureScore, Outcome, Roadmap, ScoringModel

DIMENSION_LABELS = {
    "roi": "ROI",
    "workload_impact": "Workload impact",
    "ease_of_use": "Ease of use",
    "value_creation": "Value creation",
}
STATUS_COLOURS = {
    Feature.Status.PROPOSED: INFO,
    Feature.Status.PLANNED: INFO,
    Feature.Status.IN_PROGRESS: WARNING,
    Feature.Status.LAUNCHED: SUCCESS,
    Feature.Status.DROPPED: DANGER,
}


def dimension_chart(score: FeatureScore):
    return charts.bar_chart(
        {DIMENSION_LABELS[d]: v for d, v in selectors.dimension_rows(score)}
        | {"Overall": score.overall_score},
        title=f"Scores by model v{score.model.version}",
    )


class FeatureForm(forms.ModelForm):
    class Meta:
        model = Feature
        fields = ["key", "name", "description", "metadata", "depends_on"]

    def clean_metadata(self):
        metadata = self.cleaned_data.get("metadata")
        try:
            validate_metadata(
                metadata if metadata is not None else {}, persona_slugs=services.persona_slugs()
            )
        except MetadataError as exc:
            raise forms.ValidationError(
                [f"{key}: {message}" for key, message in exc.problems.items()]
            ) from None
        return metadata if metadata is not None else {}

    def clean(self):
        cleaned = super().clean()
        depends_on = cleaned.get("depends_on")
        key = cleaned.get("key") or (self.instance.key if self.instance.pk else None)
        if depends_on is not None and key:
            edges = services.dependency_edges()
            edges[key] = [f.key for f in depends_on]
            cycle = services.find_cycle(edges)
            if cycle:
                self.add_error("depends_on", f"This closes a cycle: {' → '.join(cycle)}")
        return cleaned


class LaunchForm(forms.Form):
    launched_on = forms.DateField(required=False, help_text="Empty: today.")


@admin.register(Feature)
class FeatureAdmin(HistoryAdmin):
    form = FeatureForm
    list_display = [
        "key",
        "name",
        "status_label",
        "overall",
        "roi",
        "workload",
        "ease",
        "value",
        "scored_by",
    ]
    list_filter = ["status"]
    search_fields = ["key", "name"]
    ordering = ["key"]
    filter_horizontal = ["depends_on"]
    actions = ["compare_selected"]
    actions_list = ["roadmap_board", "build_roadmap"]
    actions_detail = [
        "score_detail",
        "plan_detail",
        "start_detail",
        "launch_detail",
        "drop_detail",
        "reopen_detail",
    ]
    change_form_template = "admin/scoring/feature/change_form.html"
    status_label = status_badge("status", STATUS_COLOURS)

    def get_queryset(self, request):
        latest = FeatureScore.objects.filter(feature_id=OuterRef("pk")).order_by(
            "-created_at", "-id"
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_overall=Subquery(latest.values("overall_score")[:1]),
                latest_roi=Subquery(latest.values("roi_score")[:1]),
                latest_workload=Subquery(latest.values("workload_impact_score")[:1]),
                latest_ease=Subquery(latest.values("ease_of_use_score")[:1]),
                latest_value=Subquery(latest.values("value_creation_score")[:1]),
                latest_version=Subquery(latest.values("model__version")[:1]),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        base = ["status", "launched_on", "created_at"]
        return [*base, "key"] if obj else base

    @display(description="Overall", ordering="latest_overall")
    def overall(self, obj):
        return "—" if obj.latest_overall is None else obj.latest_overall

    @display(description="ROI")
    def roi(self, obj):
        return "—" if obj.latest_roi is None else obj.latest_roi

    @display(description="Workload")
    def workload(self, obj):
        return "—" if obj.latest_workload is None else obj.latest_workload

    @display(description="Ease")
    def ease(self, obj):
        return "—" if obj.latest_ease is None else obj.latest_ease

    @display(description="Value")
    def value(self, obj):
        return "—" if obj.latest_value is None else obj.latest_value

    @display(description="Model")
    def scored_by(self, obj):
        return "—" if obj.latest_version is None else f"v{obj.latest_version}"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        depends_on = list(data.get("depends_on") or [])
        if change:
            services.update_feature(
                feature_id=obj.pk,
                name=data["name"],
                description=data.get("description", ""),
                metadata=data.get("metadata") or {},
                depends_on=[f.pk for f in depends_on],
                actor=request.user,
            )
        else:
            created, _ = services.create_feature(
                key=data["key"],
                name=data["name"],
                description=data.get("description", ""),
                metadata=data.get("metadata") or {},
                depends_on=[f.key for f in depends_on],
                actor=request.user,
            )
            obj.pk = created.pk
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        """The services set the dependencies (with the cycle check)."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if str(object_id).isdigit():
            feature = Feature.objects.filter(pk=int(object_id)).first()
            if feature is not None:
                score = (
                    FeatureScore.objects.select_related("model")
                    .filter(feature=feature)
                    .order_by("-created_at", "-id")
                    .first()
                )
                extra.update(
                    {
                        "score": score,
                        "chart": dimension_chart(score) if score else None,
                        "explanation_rows": _explanation_rows(score) if score else [],
                        "outcomes": list(feature.outcomes.order_by("-measured_on")[:10]),
                    }
                )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    # --- buttons ---------------------------------------------------------------------------

    def _back(self, object_id) -> str:
        return reverse("admin:scoring_feature_change", args=[object_id])

    @action(description="Score now", url_path="score", permissions=["change"])
    def score_detail(self, request, object_id):
        feature = Feature.objects.filter(pk=int(object_id)).first()
        if feature is None:
            raise PermissionDenied

        def act():
            score = services.score_feature(feature.key, actor=request.user)
            return f"Scored {feature.key}: overall {score.overall_score}."

        return confirm(
            self,
            request,
            title=f"Score {feature.name}",
            message="Score this feature with its stored metadata under the active model, "
            "reading the live evidence now?",
            confirm_label="Score",
            on_confirm=act,
            done_url=self._back(object_id),
            destructive=False,
        )

    def _move(self, request, object_id, to: str, verb: str, form=None):
        def act(data=None):
            feature = services.change_feature_status(
                feature_id=int(object_id),
                to=to,
                launched_on=(data or {}).get("launched_on"),
                actor=request.user,
            )
            return f"{feature.key} is now {feature.get_status_display().lower()}."

        return confirm(
            self,
            request,
            title=f"{verb} feature",
            message=f"Mark this feature {Feature.Status(to).label.lower()}?",
            confirm_label=verb,
            on_confirm=act,
            done_url=self._back(object_id),
            destructive=to == Feature.Status.DROPPED,
            form=form,
        )

    @action(description="Plan", url_path="plan", permissions=["change"])
    def plan_detail(self, request, object_id):
        return self._move(request, object_id, Feature.Status.PLANNED, "Plan")

    @action(description="Start", url_path="start", permissions=["change"])
    def start_detail(self, request, object_id):
        return self._move(request, object_id, Feature.Status.IN_PROGRESS, "Start")

    @action(description="Launch", url_path="launch", permissions=["change"])
    def launch_detail(self, request, object_id):
        return self._move(request, object_id, Feature.Status.LAUNCHED, "Launch", LaunchForm)

    @action(description="Drop", url_path="drop", permissions=["change"])
    def drop_detail(self, request, object_id):
        return self._move(request, object_id, Feature.Status.DROPPED, "Drop")

    @action(description="Back to proposed", url_path="reopen", permissions=["change"])
    def reopen_detail(self, request, object_id):
        return self._move(request, object_id, Feature.Status.PROPOSED, "Reopen")

    # --- comparison and roadmap ------------------------------------------------------------

    @admin.action(description="Compare the selected features")
    def compare_selected(self, request, queryset):
        if not request.user.has_perm("scoring.add_featurescore"):
            raise PermissionDenied
        keys = list(queryset.order_by("key").values_list("key", flat=True)[: services.MAX_COMPARE])
        try:
            result = services.compare_features(keys, actor=request.user)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return None
        return TemplateResponse(
            request,
            "admin/scoring/feature/compare.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Compare features",
                "result": result,
                "dimensions": DIMENSIONS,
                "labels": DIMENSION_LABELS,
            },
        )

    def has_roadmap_permission(self, request, obj=None):
        return request.user.has_perm("scoring.view_roadmap")

    def has_build_roadmap_permission(self, request, obj=None):
        return request.user.has_perm("scoring.add_roadmap") and request.user.has_perm(
            "scoring.add_featurescore"
        )

    @action(description="Roadmap board", url_path="board", permissions=["roadmap"])
    def roadmap_board(self, request):
        roadmap = None
        wanted = request.GET.get("roadmap", "")
        if wanted.isdigit() and len(wanted) < 19:
            roadmap = Roadmap.objects.select_related("model").filter(pk=int(wanted)).first()
        roadmap = roadmap or selectors.roadmap_latest()
        return TemplateResponse(
            request,
            "admin/scoring/feature/board.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Roadmap board",
                "roadmap": roadmap,
                "columns": selectors.roadmap_board(roadmap) if roadmap else [],
            },
        )

    @action(description="Build roadmap", url_path="build-roadmap", permissions=["build_roadmap"])
    def build_roadmap(self, request):
        def act():
            roadmap = services.open_features_roadmap(actor=request.user)
            return f"Roadmap {roadmap.pk}: {len(roadmap.items)} features placed."

        return confirm(
            self,
            request,
            title="Build a roadmap",
            message="Score every proposed, planned and in-progress feature with its stored "
            "metadata, rank by overall score per effort week after its dependencies, and tier "
            "by 12 weeks of capacity?",
            confirm_label="Build",
            on_confirm=act,
            done_url=reverse("admin:scoring_feature_roadmap_board"),
            destructive=False,
        )


def _explanation_rows(score: FeatureScore) -> list[dict]:
    rows = []
    for dimension in (*DIMENSIONS, "overall"):
        part = score.explanation.get(dimension, {})
        rows.append(
            {
                "dimension": DIMENSION_LABELS.get(dimension, "Overall"),
                "formula": part.get("formula", ""),
                "inputs": part.get("inputs") or part.get("weights") or {},
                "steps": part.get("steps") or part.get("terms") or {},
                "score": part.get("score"),
                "moved": part.get("moved_by_evidence"),
            }
        )
    return rows


@admin.register(FeatureScore)
class FeatureScoreAdmin(ReadOnlyAdmin):
    list_display = ["id", "feature", "model", "overall_score", "rice", "ice", "wsjf", "created_at"]
    list_select_related = ["feature", "model"]
    list_filter = ["model"]
    search_fields = ["feature__key"]
    ordering = ["-created_at", "-id"]
    change_form_template = "admin/scoring/featurescore/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if str(object_id).isdigit():
            score = FeatureScore.objects.select_related("model").filter(pk=int(object_id)).first()
            if score is not None:
                extra.update(
                    {
                        "score": score,
                        "chart": dimension_chart(score),
                        "explanation_rows": _explanation_rows(score),
                    }
                )
        return super().change_view(request, object_id, form_url, extra_context=extra)


class ScoringModelForm(forms.ModelForm):
    class Meta:
        model = ScoringModel
        fields = ["weights", "persona_weights", "constants", "note"]


@admin.register(ScoringModel)
class ScoringModelAdmin(HistoryAdmin):
    """A version that has scored is a record: edits are made as a new version (Add), which
    becomes the active one. The refit button fits the weights to outcomes."""

    form = ScoringModelForm
    list_display = ["version", "active_label", "spearman", "calibration_decision", "created_at"]
    ordering = ["-version"]
    actions_list = ["refit"]
    change_form_template = "admin/scoring/scoringmodel/change_form.html"

    @display(description="Active", label={True: SUCCESS, False: ""})
    def active_label(self, obj):
        return obj.active, "active" if obj.active else "—"

    @display(description="Spearman rho")
    def spearman(self, obj):
        value = (obj.calibration or {}).get("spearman")
        return "—" if value is None else value

    @display(description="Last calibration")
    def calibration_decision(self, obj):
        return (obj.calibration or {}).get("reason", "—")

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_changeform_initial_data(self, request):
        current = services.active_model()
        return {
            "weights": current.weights,
            "persona_weights": current.persona_weights,
            "constants": current.constants,
            "note": f"Edited from v{current.version}",
        }

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.create_scoring_model(
            weights=data["weights"],
            persona_weights=data["persona_weights"],
            constants=data["constants"],
            note=data.get("note", ""),
            actor=request.user,
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if str(object_id).isdigit():
            model = ScoringModel.objects.filter(pk=int(object_id)).first()
            points = (model.calibration or {}).get("points", []) if model else []
            if model is not None:
                extra.update(
                    {
                        "model_obj": model,
                        "calibration": model.calibration or {},
                        "scatter": charts.scatter_chart(
                            [
                                (Decimal(p["predicted"]), Decimal(p["actual"]), p["feature_id"])
                                for p in points
                            ],
                            title=f"Predicted against actual (v{model.version})",
                            x_label="predicted overall score",
                            y_label="outcome score",
                        )
                        if points
                        else None,
                    }
                )
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def has_refit_permission(self, request, obj=None):
        return request.user.has_perm("scoring.add_scoringmodel")

    @action(description="Refit to outcomes", url_path="refit", permissions=["refit"])
    def refit(self, request):
        def act():
            return services.refit_scoring_model(actor=request.user)["reason"]

        return confirm(
            self,
            request,
            title="Refit the scoring model",
            message="Fit the dimension weights to the recorded outcomes (non-negative least "
            "squares) and make a new active version only if it predicts held-out features "
            "better (leave-one-out)?",
            confirm_label="Refit",
            on_confirm=act,
            done_url=reverse("admin:scoring_scoringmodel_changelist"),
            destructive=False,
        )


class OutcomeForm(forms.ModelForm):
    class Meta:
        model = Outcome
        fields = [
            "feature",
            "measured_on",
            "adoption_rate",
            "revenue_change",
            "ticket_change",
            "time_saved_hours",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "feature" in self.fields:
            self.fields["feature"].queryset = Feature.objects.filter(status=Feature.Status.LAUNCHED)

    def clean(self):
        cleaned = super().clean()
        feature, measured_on = cleaned.get("feature"), cleaned.get("measured_on")
        if feature and measured_on and feature.launched_on and measured_on < feature.launched_on:
            self.add_error("measured_on", "An outcome is measured on or after the launch.")
        if feature and measured_on and self.instance.pk is None:
            # Recording the same day again replaces that day's outcome (`record_outcome`
            # does it under a row lock): validate against the row it will replace.
            existing = Outcome.objects.filter(feature=feature, measured_on=measured_on).first()
            if existing is not None:
                self.instance = existing
        return cleaned


@admin.register(Outcome)
class OutcomeAdmin(HistoryAdmin):
    form = OutcomeForm
    list_display = [
        "feature",
        "measured_on",
        "adoption_rate",
        "revenue_change",
        "ticket_change",
        "time_saved_hours",
        "source",
    ]
    list_select_related = ["feature"]
    list_filter = ["source"]
    ordering = ["-measured_on", "-id"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.record_outcome(
            feature_id=data["feature"].key,
            measured_on=data["measured_on"],
            adoption_rate=data["adoption_rate"],
            revenue_change=data["revenue_change"],
            ticket_change=data["ticket_change"],
            time_saved_hours=data["time_saved_hours"],
            actor=request.user,
        )
        obj.pk = created.pk
        obj.refresh_from_db()


@admin.register(Roadmap)
class RoadmapAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "capacity_weeks", "model", "size"]
    list_select_related = ["model"]
    ordering = ["-created_at", "-id"]

    @display(description="Features")
    def size(self, obj):
        return len(obj.items)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if str(object_id).isdigit() and Roadmap.objects.filter(pk=int(object_id)).exists():
            return HttpResponseRedirect(
                reverse("admin:scoring_feature_roadmap_board") + f"?roadmap={int(object_id)}"
            )
        return super().change_view(request, object_id, form_url, extra_context)
