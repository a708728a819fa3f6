from opsplatform import registry

_SCORE = [
    "scoring.view_feature",
    "scoring.add_feature",
    "scoring.change_feature",
    "scoring.view_featurescore",
    "scoring.add_featurescore",
    "scoring.view_scoringmodel",
    "scoring.add_scoringmodel",
    "scoring.change_scoringmodel",
    "scoring.view_outcome",
    "scoring.add_outcome",
    "scoring.change_outcome",
    "scoring.view_roadmap",
    "scoring.add_roadmap",
]
_READ = [
    "scoring.view_feature",
    "scoring.view_featurescore",
    "scoring.view_scoringmodel",
    "scoring.view_outcome",
    "scoring.view_roadmap",
]


class ScoringConfig(registry.PlatformAppConfig):
    """Predictive feature scoring: transparent scores per dimension and persona, evidence from
    live data, comparison, roadmaps and calibration against outcomes (docs/scoring.md)."""

    name = "scoring"
    verbose_name = "Feature scoring"
    admin_icon = "leaderboard"
    admin_links = [
        ("Roadmap board", "view_kanban", "admin:scoring_feature_roadmap_board", "view_roadmap"),
    ]
    api_router = "scoring.api.router"
    api_prefix = "/scoring/"
    # Product and operations staff score features; compliance reads them.
    group_permissions = {"operations": _SCORE, "compliance": _READ}

    def ready(self):
        from scoring import evidence

        # Account health (deployments.health) is the evidence of revenue at risk.
        evidence.set_health_provider(health_weakest_in)

    def ensure_reference_data(self):
        from scoring.services import ensure_default_model

        ensure_default_model()


def health_weakest_in(factor_names: list[str]):
    """The health provider: at-risk and critical accounts whose costliest health factor is one
    of `factor_names`, with their monthly recurring revenue (0 without an active plan)."""
    from decimal import Decimal

    from deployments.health.selectors import weakest_in

    return [
        {"account_id": row["account_id"], "monthly_revenue": row["mrr"] or Decimal("0.00")}
        for row in weakest_in(factor_names)
    ]
