"""Scoring test data, made through the services."""

from decimal import Decimal

from scoring import services
from scoring.models import Feature

SEED_EXAMPLE = {
    "estimated_revenue_impact": 15000,
    "conversion_potential": 0.8,
    "complexity": 0.6,
    "ui_complexity": 0.4,
    "time_savings_hours_per_month": 10,
}


def feature(key: str = "advanced_attribution", name: str | None = None, **metadata) -> Feature:
    created, _ = services.create_feature(
        key=key, name=name or key.replace("_", " ").title(), metadata=metadata
    )
    return created


def launched(key: str, effort_weeks=2, launched_on=None, **metadata) -> Feature:
    f = feature(key, effort_weeks=effort_weeks, **metadata)
    services.score_feature(key)
    for to in ("planned", "in_progress"):
        services.change_feature_status(feature_id=f.pk, to=to)
    return services.change_feature_status(feature_id=f.pk, to="launched", launched_on=launched_on)


def outcome(key: str, adoption="0.5", revenue="0", tickets=0, hours="0", on=None):
    from django.utils import timezone

    return services.record_outcome(
        feature_id=key,
        measured_on=on or timezone.localdate(),
        adoption_rate=Decimal(adoption),
        revenue_change=Decimal(revenue),
        ticket_change=tickets,
        time_saved_hours=Decimal(hours),
    )
