"""Evidence from live data, each piece with its source (docs/scoring.md, "Evidence"):

- support tickets carrying the feature's `support_tags` in the last 90 days: how many, per
  month, and the accounts behind them (each account once);
- revenue at risk: accounts whose weakest health factors are among the feature's
  `addresses_health_factors`, from the health provider (`set_health_provider`; account health
  lives in deployments and is plugged in by the wiring: with none registered the evidence says
  "no health data" and changes nothing);
- the measured lift of onboarding versions whose `features` include the feature's key.

Support's tickets are read by model label (scoring does not import support)."""

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.apps import apps
from django.db.models import Count, Q
from django.utils import timezone

from scoring.formulas import q2, q4

ACCOUNTS_SHOWN = 20

# fn(factor_names) -> iterable of {"account_id": int, "monthly_revenue": Decimal}
HealthProvider = Callable[[list[str]], Iterable[dict[str, Any]]]
_health_provider: HealthProvider | None = None


def set_health_provider(fn: HealthProvider | None) -> None:
    """Register (or with None remove) where account health comes from: `fn(factor_names)`
    returns the accounts whose weakest health factors are among `factor_names`, each as
    `{"account_id": int, "monthly_revenue": Decimal}`."""
    global _health_provider
    _health_provider = fn


def health_provider() -> HealthProvider | None:
    return _health_provider


def _tag_filter(tags: list[str]) -> Q:
    """Tickets store tags as "a,b,c": match whole tags only."""
    q = Q()
    for tag in tags:
        q |= (
            Q(tags=tag)
            | Q(tags__startswith=f"{tag},")
            | Q(tags__endswith=f",{tag}")
            | Q(tags__contains=f",{tag},")
        )
    return q


def ticket_evidence(tags: list[str], *, now: dt.datetime, window_days: int) -> dict:
    """Tickets with any of `tags` created in the window; reach counts each account once."""
    if not tags:
        return {"source": "support tickets", "used": False, "note": "no support_tags given"}
    if not apps.is_installed("support"):
        return {"source": "support tickets", "used": False, "note": "support is not installed"}
    Ticket = apps.get_model("support", "Ticket")
    since = now - dt.timedelta(days=window_days)
    scope = Ticket.objects.filter(_tag_filter(tags), created_at__gte=since, created_at__lte=now)
    # One pass over the window: tickets per account (tickets without an account count, but
    # reach no account).
    per_account = list(scope.values("account_id").annotate(n=Count("id")).order_by())
    tickets = sum(row["n"] for row in per_account)
    account_ids = sorted(row["account_id"] for row in per_account if row["account_id"])
    per_month = Fraction(tickets) * 30 / window_days
    return {
        "source": "support tickets",
        "used": tickets > 0,
        "tags": tags,
        "window_days": window_days,
        "since": since.isoformat(),
        "tickets": tickets,
        "tickets_per_month": str(q4(per_month)),
        "accounts": len(account_ids),
        "account_ids": account_ids[:ACCOUNTS_SHOWN],
        "_account_ids": account_ids,
        "_tickets_per_month": per_month,
    }


def ticket_count(tags: list[str], *, since: dt.datetime, until: dt.datetime) -> int:
    """Tickets with any of `tags` created in [since, until)."""
    if not tags or not apps.is_installed("support"):
        return 0
    Ticket = apps.get_model("support", "Ticket")
    return Ticket.objects.filter(
        _tag_filter(tags), created_at__gte=since, created_at__lt=until
    ).count()


def health_evidence(factors: list[str]) -> dict:
    if not factors:
        return {
            "source": "account health",
            "used": False,
            "note": "no addresses_health_factors given",
        }
    provider = health_provider()
    if provider is None:
        return {"source": "account health", "used": False, "note": "no health data"}
    revenue_by_account: dict[int, Decimal] = {}
    for row in provider(list(factors)):
        account_id = int(row["account_id"])
        revenue = Decimal(str(row["monthly_revenue"]))
        if not revenue.is_finite() or revenue < 0:
            continue
        revenue_by_account[account_id] = revenue
    at_risk = sum(revenue_by_account.values(), Decimal(0))
    ids = sorted(revenue_by_account)
    return {
        "source": "account health",
        "used": bool(ids),
        "factors": factors,
        "accounts": len(ids),
        "account_ids": ids[:ACCOUNTS_SHOWN],
        "at_risk_revenue": str(q2(at_risk)),
        "_account_ids": ids,
        "_at_risk_revenue": Fraction(at_risk),
    }


def onboarding_versions() -> list:
    """The onboarding versions that ran or run (not drafts), read once per batch of scores."""
    if not apps.is_installed("deployments"):
        return []
    from deployments.models import OnboardingVersion

    return list(
        OnboardingVersion.objects.exclude(status=OnboardingVersion.Status.DRAFT)
        .prefetch_related("target_personas")
        .order_by("id")
    )


def onboarding_evidence(key: str, versions: list | None = None) -> dict:
    """Onboarding versions listing the key; lift = completion-rate difference to control,
    averaged over versions with a usable verdict, weighted by their assigned accounts."""
    if not apps.is_installed("deployments"):
        return {"source": "onboarding experiments", "used": False, "note": "not installed"}
    from deployments import selectors as deployment_selectors

    if versions is None:
        versions = onboarding_versions()
    versions = [v for v in versions if isinstance(v.features, list) and key in v.features]
    if not versions:
        return {
            "source": "onboarding experiments",
            "used": False,
            "note": "no onboarding version lists this feature",
        }
    rows = []
    weighted = Fraction(0)
    weight = 0
    for version in versions:
        result = deployment_selectors.onboarding_results(version=version)
        assigned = result["arms"][0]["assigned"]
        usable = result["verdict"] in ("winner", "loser", "no_significant_difference")
        lift = result["lift_abs"]
        rows.append(
            {
                "version_id": version.id,
                "name": version.name,
                "verdict": result["verdict"],
                "assigned": assigned,
                "lift_abs": None if lift is None else str(q4(Decimal(str(lift)))),
                "used": usable and lift is not None,
            }
        )
        if usable and lift is not None:
            weighted += Fraction(q4(Decimal(str(lift)))) * assigned
            weight += assigned
    lift = weighted / weight if weight else Fraction(0)
    return {
        "source": "onboarding experiments",
        "used": weight > 0,
        "versions": rows,
        "lift_abs": str(q4(lift)) if weight else None,
        "_lift": lift,
    }


def gather(
    *,
    key: str,
    values: dict,
    window_days: int,
    now: dt.datetime | None = None,
    versions: list | None = None,
) -> dict:
    now = now or timezone.now()
    return {
        "tickets": ticket_evidence(values["support_tags"], now=now, window_days=window_days),
        "health": health_evidence(values["addresses_health_factors"]),
        "onboarding": onboarding_evidence(key, versions),
    }


def public(evidence: dict) -> dict:
    """The evidence as stored and shown: without the private working values."""
    return {
        name: {k: v for k, v in piece.items() if not k.startswith("_")}
        for name, piece in evidence.items()
    }
