# ruff: noqa: E501  (one default KPI per line reads as a table)
"""The default KPI targets (loaded by migration 0002 and by ensure_reference_data, which
never overwrites an edited KPI). Each: key, name, scope kind, scope, metric, comparator,
target, warning band, severity, reliability."""

from decimal import Decimal as D

# fmt: off
DEFAULT_KPIS = [
    # Every persona.
    ("persona-health-mean", "Mean account health", "all_personas", "", "health_mean_score", ">=", D("60"), D("5"), "high", False),
    ("persona-health-critical", "Share of accounts critical", "all_personas", "", "health_share_critical", "<=", D("0.15"), D("0.05"), "high", False),
    ("persona-renewal-rate", "Campaign renewal rate", "all_personas", "", "renewal_rate", ">=", D("0.30"), D("0.05"), "medium", False),
    ("persona-revenue-growth", "Revenue growth", "all_personas", "", "revenue_growth", ">=", D("0"), D("0.05"), "medium", False),
    ("persona-pooled-roas", "Pooled ROAS", "all_personas", "", "pooled_roas", ">=", D("1.5"), D("0.25"), "medium", False),
    ("persona-tickets-per-account", "Tickets per account", "all_personas", "", "tickets_per_account", "<=", D("0.5"), D("0.1"), "medium", False),
    ("persona-onboarding", "Onboarding completion", "all_personas", "", "onboarding_completion", ">=", D("0.6"), D("0.1"), "medium", False),
    # Business functions.
    ("support-first-response", "Median first response (hours)", "function", "support", "support_first_response_median_hours", "<=", D("4"), D("1"), "high", False),
    ("support-sla", "First-response SLA attainment", "function", "support", "support_sla_attainment", ">=", D("0.9"), D("0.05"), "high", False),
    ("billing-payment-failures", "Payment failure rate", "function", "billing", "billing_payment_failure_rate", "<=", D("0.05"), D("0.02"), "high", False),
    ("billing-involuntary-churn", "Involuntary churn", "function", "billing", "billing_involuntary_churn", "<=", D("0.02"), D("0.01"), "high", False),
    ("onboarding-completion", "Onboarding completion (all)", "function", "onboarding", "onboarding_completion_all", ">=", D("0.6"), D("0.1"), "medium", False),
    ("deployments-success", "Deployment success rate", "function", "deployments", "deployment_success_rate", ">=", D("0.9"), D("0.05"), "critical", True),
    ("deployments-rollbacks", "Deployments rolled back", "function", "deployments", "deployment_rollbacks", "<=", D("2"), D("1"), "high", True),
    ("compliance-monitors", "Failing compliance monitors", "function", "compliance", "compliance_failing_monitors", "<=", D("0"), D("0"), "critical", False),
    ("revenue-growth", "Revenue growth (all accounts)", "function", "revenue", "revenue_growth_total", ">=", D("0"), D("0.05"), "high", False),
    # Critical journeys, end to end.
    ("journey-signup-success", "Signup → onboarded: success", "journey", "signup_onboarding", "journey_success_rate", ">=", D("0.6"), D("0.1"), "medium", False),
    ("journey-signup-p95", "Signup → onboarded: p95 hours", "journey", "signup_onboarding", "journey_p95_hours", "<=", D("336"), D("72"), "low", False),
    ("journey-campaign-success", "Campaign → first metrics: success", "journey", "campaign_first_metrics", "journey_success_rate", ">=", D("0.8"), D("0.1"), "medium", False),
    ("journey-campaign-p95", "Campaign → first metrics: p95 hours", "journey", "campaign_first_metrics", "journey_p95_hours", "<=", D("72"), D("24"), "low", False),
    ("journey-export-success", "Export → ready: success", "journey", "export_ready", "journey_success_rate", ">=", D("0.95"), D("0.03"), "high", True),
    ("journey-export-p95", "Export → ready: p95 hours", "journey", "export_ready", "journey_p95_hours", "<=", D("1"), D("1"), "medium", True),
    ("journey-deletion-on-time", "Deletion executed on its date", "journey", "deletion_executed", "journey_success_rate", ">=", D("1"), D("0"), "critical", False),
    ("journey-ticket-sla", "Ticket → first response in SLA", "journey", "ticket_first_response", "journey_success_rate", ">=", D("0.9"), D("0.05"), "high", False),
    ("journey-ticket-p50", "Ticket → first response: p50 hours", "journey", "ticket_first_response", "journey_p50_hours", "<=", D("4"), D("1"), "medium", False),
]
# fmt: on
FIELDS = (
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
)


def ensure_default_kpis(model, history_model) -> int:
    """Create the default KPIs that are missing (by key), each with its "created" history row;
    edited ones are left alone. Takes the models so the data migration can pass its own."""
    from django.utils import timezone

    existing = set(model.objects.values_list("key", flat=True))
    rows = [
        model(**dict(zip(FIELDS, row, strict=True)))
        for row in DEFAULT_KPIS
        if row[0] not in existing
    ]
    if not rows:
        return 0
    model.objects.bulk_create(rows)
    created = model.objects.filter(key__in=[r.key for r in rows])
    kept = {f.attname for f in history_model._meta.fields}
    now = timezone.now()
    history_model.objects.bulk_create(
        [
            history_model(
                **{
                    f.attname: getattr(kpi, f.attname)
                    for f in model._meta.fields
                    if f.attname in kept
                },
                history_date=now,
                history_type="+",
                history_change_reason="default KPI",
            )
            for kpi in created
        ]
    )
    return len(rows)
