"""Reads of account health for the admin, the API and other apps (scoring, the agent
workspace, checkpoints, the rollout gates). Each costs a fixed number of queries.

For other apps (documented in docs/health.md):
- `latest_health(account_ids)` → {account_id: AccountHealthCheck} (the latest check);
- `weakest_in(factor_names)` → the accounts whose costliest factor is one of them, with MRR;
- `revenue_at_risk(factor_names)` → those accounts' count and MRR, in all and per factor.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from django.apps import apps
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDate

from deployments.bucketing import Hash32, threshold
from deployments.health.models import AccountHealth, AccountHealthCheck, HealthStatus
from opsplatform.errors import NotFound
from opsplatform.models import Account, Persona

H = HealthStatus
AT_RISK_STATUSES = (H.AT_RISK, H.CRITICAL)
HISTORY_LIMIT = 90
MRR_STATUSES = ("active", "past_due")
MONEY = DecimalField(max_digits=16, decimal_places=2)


def _money(value) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(Decimal("0.01"))


def health_list() -> QuerySet[AccountHealth]:
    return AccountHealth.objects.select_related("account", "persona").order_by(
        "score", "account_id"
    )


def health_get(*, account_id: int) -> AccountHealth:
    found = (
        health_list()
        .select_related("last_check__persona")
        .filter(account_id=account_id, last_check__isnull=False)
        .first()
    )
    if found is None:
        raise NotFound("This account has not been checked yet.")
    return found


def check_history(*, account_id: int, limit: int = HISTORY_LIMIT) -> list[AccountHealthCheck]:
    """The account's latest checks, newest first."""
    return list(
        AccountHealthCheck.objects.filter(account_id=account_id).order_by("-checked_at", "-id")[
            :limit
        ]
    )


def latest_health(account_ids: Iterable[int]) -> dict[int, AccountHealthCheck]:
    """{account_id: its latest check} for the given accounts that have one (one query)."""
    ids = list(account_ids)
    checks = AccountHealthCheck.objects.filter(
        id__in=AccountHealth.objects.filter(account_id__in=ids).values("last_check_id")
    )
    return {c.account_id: c for c in checks}


def _mrr() -> Subquery | Value:
    """An account's monthly recurring revenue in currency units (Decimal): its plan's price
    while the subscription is active or past due, else 0. Read by model label."""
    if not apps.is_installed("userflows"):
        return Value(None, output_field=MONEY)
    subscription = apps.get_model("userflows", "Subscription")
    cents = subscription.objects.filter(
        account_id=OuterRef("account_id"), status__in=MRR_STATUSES
    ).values("plan__price_cents")[:1]
    return ExpressionWrapper(Coalesce(Subquery(cents), 0) / Value(Decimal(100)), output_field=MONEY)


def weakest_in(
    factor_names: Iterable[str], *, statuses: Iterable[str] = AT_RISK_STATUSES
) -> QuerySet:
    """Accounts (in the given statuses) whose costliest factor is one of `factor_names`: rows
    of account_id, persona slug, status, score, top_factor, top_factors and mrr (Decimal, or
    None without billing). Lazy: iterate it, or aggregate it as revenue_at_risk does."""
    return (
        AccountHealth.objects.filter(top_factor__in=list(factor_names), status__in=list(statuses))
        .annotate(mrr=_mrr(), persona_slug=F("persona__slug"))
        .values("account_id", "persona_slug", "status", "score", "top_factor", "top_factors", "mrr")
        .order_by("account_id")
    )


def revenue_at_risk(
    factor_names: Iterable[str], *, statuses: Iterable[str] = AT_RISK_STATUSES
) -> dict:
    """{"accounts", "mrr", "by_factor": {name: {"accounts", "mrr"}}} over weakest_in (one
    query). MRR sums are Decimal (None per factor without billing)."""
    rows = (
        AccountHealth.objects.filter(top_factor__in=list(factor_names), status__in=list(statuses))
        .annotate(mrr=_mrr())
        .values("top_factor")
        .annotate(accounts=Count("id"), total=Sum("mrr", output_field=MONEY))
        .order_by("top_factor")
    )
    by_factor = {
        r["top_factor"]: {"accounts": r["accounts"], "mrr": _money(r["total"])} for r in rows
    }
    return {
        "accounts": sum(v["accounts"] for v in by_factor.values()),
        "mrr": sum((v["mrr"] or 0 for v in by_factor.values()), Decimal("0.00")),
        "by_factor": by_factor,
    }


def summary() -> dict:
    """Accounts by status, in all and per persona (one query)."""
    rows = (
        AccountHealth.objects.values("persona__slug", "status")
        .annotate(n=Count("id"))
        .order_by("persona__slug", "status")
    )
    totals = dict.fromkeys(H.values, 0)
    personas = {slug: dict.fromkeys(H.values, 0) for slug in _persona_slugs()}
    for row in rows:
        personas.setdefault(row["persona__slug"], dict.fromkeys(H.values, 0))
        personas[row["persona__slug"]][row["status"]] = row["n"]
        totals[row["status"]] += row["n"]
    return {
        "total": sum(totals.values()),
        "counts": totals,
        "personas": [
            {"persona": slug, "counts": counts, "total": sum(counts.values())}
            for slug, counts in personas.items()
        ],
    }


def _persona_slugs() -> list[str]:
    return list(Persona.objects.order_by("slug").values_list("slug", flat=True))


def trend(*, days: int = 90, persona_id: int | None = None, now=None) -> list[dict]:
    """Per day of the last `days`: accounts checked in each status (an account checked twice
    the same day counts in each status it had) and the mean score. One query."""
    from django.utils import timezone

    now = now or timezone.now()
    start = (now - dt.timedelta(days=days - 1)).date()
    qs = AccountHealthCheck.objects.filter(
        checked_at__gte=dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC),
        checked_at__lte=now,
    )
    if persona_id:
        qs = qs.filter(persona_id=persona_id)
    rows = (
        qs.annotate(day=TruncDate("checked_at"))
        .values("day", "status")
        .annotate(n=Count("account_id", distinct=True), mean=Avg("score"))
        .order_by("day", "status")
    )
    by_day: dict = defaultdict(lambda: {"counts": dict.fromkeys(H.values, 0), "sum": 0, "n": 0})
    for row in rows:
        entry = by_day[row["day"]]
        entry["counts"][row["status"]] = row["n"]
        if row["mean"] is not None:
            entry["sum"] += Decimal(row["mean"]) * row["n"]
            entry["n"] += row["n"]
    out = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        if day not in by_day:
            continue
        entry = by_day[day]
        mean = (entry["sum"] / entry["n"]).quantize(Decimal("0.01")) if entry["n"] else None
        out.append({"day": day, "counts": entry["counts"], "mean_score": mean})
    return out


def arm_health(*, salt: str, percentage, start: dt.datetime, end: dt.datetime):
    """The rollout gates' health source (deployments.gates.set_health_source): mean score of
    the exposed and the other accounts among those checked during the stage — (exposed mean,
    exposed n, control mean, control n), or None when nobody was checked. One query."""
    exposed = Q(h__lt=threshold(Decimal(str(percentage))))
    checked = Account.objects.filter(
        health__checked_at__gte=start,
        health__checked_at__lt=end,
        health__score__isnull=False,
    ).alias(h=Hash32(salt, F("id")))
    row = checked.aggregate(
        exposed_mean=Avg("health__score", filter=exposed),
        exposed_n=Count("id", filter=exposed),
        control_mean=Avg("health__score", filter=~exposed),
        control_n=Count("id", filter=~exposed),
    )
    if not row["exposed_n"] and not row["control_n"]:
        return None

    def mean(value):
        return None if value is None else float(value)  # the gates compare floats

    return (
        mean(row["exposed_mean"]),
        row["exposed_n"],
        mean(row["control_mean"]),
        row["control_n"],
    )
