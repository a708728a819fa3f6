"""Demo scoring: a dozen candidate features (their tags match the demo tickets, two of their
keys match the demo onboarding experiments), scored by the real services, a roadmap of the
open ones, three launched features with outcomes, and a refit of the model against them.
Run twice, it changes nothing."""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from scoring import services
from scoring.models import Feature

D = Decimal
FEATURES = [
    (
        "advanced_attribution",
        "Advanced attribution",
        "Per-episode attribution of conversions to sponsor reads.",
        {
            "estimated_revenue_impact": D(15000),
            "conversion_potential": D("0.8"),
            "complexity": D("0.6"),
            "ui_complexity": D("0.4"),
            "time_savings_hours_per_month": D(10),
            "effort_weeks": D(6),
            "confidence": D("0.7"),
            "target_personas": ["agency", "brand"],
            "support_tags": ["attribution"],
        },
        [],
    ),
    (
        "smart_links",
        "Smart sponsor links",
        "Promo links that never 404 and carry attribution.",
        {
            "estimated_revenue_impact": D(4000),
            "conversion_potential": D("0.5"),
            "complexity": D("0.3"),
            "ui_complexity": D("0.2"),
            "time_savings_hours_per_month": D(12),
            "effort_weeks": D(3),
            "confidence": D("0.8"),
            "support_tags": ["links"],
        },
        ["advanced_attribution"],
    ),
    (
        "checklist",
        "Guided onboarding checklist",
        "The checklist tested in the Guided checklist onboarding version.",
        {
            "estimated_revenue_impact": D(3000),
            "conversion_potential": D("0.5"),
            "complexity": D("0.3"),
            "ui_complexity": D("0.5"),
            "time_savings_hours_per_month": D(5),
            "effort_weeks": D(2),
            "confidence": D("0.6"),
            "target_personas": ["solo_podcaster"],
        },
        [],
    ),
    (
        "workspace_tour",
        "Agency workspace tour",
        "The tour tested in the Agency workspace tour onboarding version.",
        {
            "estimated_revenue_impact": D(2500),
            "conversion_potential": D("0.4"),
            "complexity": D("0.2"),
            "ui_complexity": D("0.6"),
            "time_savings_hours_per_month": D(4),
            "effort_weeks": D(2),
            "confidence": D("0.6"),
            "target_personas": ["agency"],
        },
        [],
    ),
    (
        "renewal_assistant",
        "Renewal assistant",
        "Suggests renewal terms to accounts whose renewals are at risk.",
        {
            "estimated_revenue_impact": D(9000),
            "conversion_potential": D("0.6"),
            "complexity": D("0.5"),
            "ui_complexity": D("0.3"),
            "time_savings_hours_per_month": D(8),
            "effort_weeks": D(5),
            "confidence": D("0.5"),
            "target_personas": ["podcast_network", "agency"],
            "support_tags": ["renewal"],
            "addresses_health_factors": ["renewal_rate"],
        },
        ["smart_links"],
    ),
    (
        "sponsor_marketplace",
        "Sponsor marketplace",
        "Brands find shows and book reads directly.",
        {
            "estimated_revenue_impact": D(40000),
            "conversion_potential": D("0.6"),
            "complexity": D("0.9"),
            "ui_complexity": D("0.7"),
            "time_savings_hours_per_month": D(0),
            "effort_weeks": D(16),
            "confidence": D("0.3"),
            "target_personas": ["brand", "podcast_network"],
            "launch_quarter": "2027-Q3",
        },
        [],
    ),
    (
        "brand_safety_reports",
        "Brand-safety reports",
        "Episode-level brand-safety summaries for brands.",
        {
            "estimated_revenue_impact": D(6000),
            "conversion_potential": D("0.4"),
            "complexity": D("0.5"),
            "ui_complexity": D("0.3"),
            "time_savings_hours_per_month": D(6),
            "effort_weeks": D(4),
            "confidence": D("0.5"),
            "target_personas": ["brand"],
        },
        [],
    ),
    (
        "bulk_metrics_upload",
        "Bulk metrics upload",
        "Upload a season of campaign metrics from one spreadsheet.",
        {
            "estimated_revenue_impact": D(1500),
            "conversion_potential": D("0.2"),
            "complexity": D("0.3"),
            "ui_complexity": D("0.4"),
            "time_savings_hours_per_month": D(25),
            "effort_weeks": D(2),
            "confidence": D("0.7"),
            "target_personas": ["podcast_network"],
        },
        [],
    ),
    # Launched (with outcomes below).
    (
        "csv_export_v2",
        "CSV export v2",
        "All campaign metrics in one export.",
        {
            "estimated_revenue_impact": D(1000),
            "conversion_potential": D("0.2"),
            "complexity": D("0.2"),
            "ui_complexity": D("0.2"),
            "time_savings_hours_per_month": D(30),
            "effort_weeks": D(2),
            "confidence": D("0.8"),
            "support_tags": ["export", "how-to"],
        },
        [],
    ),
    (
        "team_access",
        "Team access",
        "Invite producers and assistants with their own logins.",
        {
            "estimated_revenue_impact": D(3000),
            "conversion_potential": D("0.4"),
            "complexity": D("0.4"),
            "ui_complexity": D("0.3"),
            "time_savings_hours_per_month": D(8),
            "effort_weeks": D(3),
            "confidence": D("0.7"),
            "support_tags": ["access"],
        },
        [],
    ),
    (
        "invoice_clarity",
        "Clear invoices",
        "Invoices that explain plan changes line by line.",
        {
            "estimated_revenue_impact": D(500),
            "conversion_potential": D("0.1"),
            "complexity": D("0.2"),
            "ui_complexity": D("0.3"),
            "time_savings_hours_per_month": D(15),
            "effort_weeks": D(1),
            "confidence": D("0.8"),
            "support_tags": ["billing"],
        },
        [],
    ),
    (
        "podcast_analytics_api",
        "Analytics API",
        "Read campaign metrics programmatically.",
        {
            "estimated_revenue_impact": D(5000),
            "conversion_potential": D("0.3"),
            "complexity": D("0.7"),
            "ui_complexity": D("0.1"),
            "time_savings_hours_per_month": D(20),
            "effort_weeks": D(6),
            "confidence": D("0.6"),
            "target_personas": ["agency", "podcast_network"],
        },
        [],
    ),
]
# key: (adoption_rate, revenue_change, ticket_change, time_saved_hours)
OUTCOMES = {
    "csv_export_v2": (D("0.42"), D("300.00"), -18, D("26.00")),
    "team_access": (D("0.35"), D("4200.00"), -6, D("6.00")),
    "invoice_clarity": (D("0.12"), D("0.00"), -9, D("10.00")),
}


def seed_demo(ctx) -> None:
    if Feature.objects.filter(key=FEATURES[0][0]).exists():
        ctx.write("scoring: already seeded")
        return
    staff = ctx.staff.get("ops")  # the demo operations user, when the core seeded staff
    today = min(ctx.as_of, timezone.localdate())
    with transaction.atomic():
        for key, name, description, metadata, depends_on in FEATURES:
            services.create_feature(
                key=key,
                name=name,
                description=description,
                metadata={k: str(v) if isinstance(v, Decimal) else v for k, v in metadata.items()},
                depends_on=depends_on,
                actor=staff,
            )
            services.score_feature(key, actor=staff)
        for key in OUTCOMES:
            feature = Feature.objects.get(key=key)
            for to in (Feature.Status.PLANNED, Feature.Status.IN_PROGRESS):
                services.change_feature_status(feature_id=feature.pk, to=to, actor=staff)
            services.change_feature_status(
                feature_id=feature.pk,
                to=Feature.Status.LAUNCHED,
                launched_on=today - dt.timedelta(days=60),
                actor=staff,
            )
        for key, (adoption, revenue, tickets, hours) in OUTCOMES.items():
            services.record_outcome(
                feature_id=key,
                measured_on=today - dt.timedelta(days=1),
                adoption_rate=adoption,
                revenue_change=revenue,
                ticket_change=tickets,
                time_saved_hours=hours,
                actor=staff,
            )
        roadmap = services.open_features_roadmap(actor=staff)
        refit = services.refit_scoring_model(actor=staff)
    ctx.counts["scoring_features"] = len(FEATURES)
    ctx.write(
        f"scoring: {len(FEATURES)} features scored, roadmap of {len(roadmap.items)}, "
        f"{len(OUTCOMES)} outcomes; refit: {refit['reason']}"
    )
