"""The raw value of every health factor for a set of accounts, and the score it makes.

`measure(accounts, now=…, days=…)` costs a fixed number of aggregate queries whatever the
number of accounts (one per data source, each grouped by account over the given ids), so a
batch of 10 and a batch of 1,000 cost the same. Everything is read as of `now`: rows after it
are ignored, so a check can be recomputed for a past day (billing and deletion state excepted:
they are read as they are now). Support and userflows are read by model label: deployments
does not import them (import-linter), and a factor whose app is not installed has no data.

`score(card, raw)` is pure: points per factor from the scorecard's thresholds, the weighted
mean over the factors that have data, the status band, and the recommendations.
"""

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.apps import apps
from django.db.models import Count, DecimalField, F, Max, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from deployments.health.models import CHOICES, HUNDRED, Factor, HealthStatus, parse_thresholds
from opsplatform.models import Campaign, CampaignMetric, UsageEvent

LOGIN_EVENT = "login"
ONBOARDED_EVENT = "onboarding_completed"
ERROR_EVENT = "error"
HEALTH_TAG = "health"
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
TOP_REASONS = 3
# Plain strings for the per-account loops (an enum member's attribute access is slow).
FACTOR_NAMES = [str(f.value) for f in Factor]
(
    DAYS_SINCE_LOGIN,
    LOGINS,
    ACTIVE_CAMPAIGNS,
    METRICS_STALENESS,
    ROAS_TREND,
    OPEN_TICKETS,
    ESCALATED_TICKETS,
    SLA_BREACHES,
    BILLING_STATUS,
    DELETION_REQUESTED,
    ONBOARDING_COMPLETED,
    USAGE_TREND,
) = FACTOR_NAMES


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class AccountRow:
    id: int
    persona_id: int
    last_login: dt.datetime | None = None


# A check for a moment older than this reads billing from the subscriptions' history.
PAST_CHECK = dt.timedelta(hours=1)


def _trend(current: Decimal, previous: Decimal) -> Decimal:
    return (current / previous - 1).quantize(RATIO, rounding=ROUND_HALF_UP)


def measure(
    accounts: list[AccountRow],
    *,
    now: dt.datetime,
    days: int,
    id_range: tuple[int, int] | None = None,
) -> dict[int, dict]:
    """{account_id: {factor name: raw value or None (no data)}} for every given account.
    `id_range` (first, last) says the accounts are exactly those with ids in that range (a
    batch of check_all_accounts): the queries then filter on the range, not on a list."""
    ids = [a.id for a in accounts]
    start = now - dt.timedelta(days=days)
    prev_start = start - dt.timedelta(days=days)
    today = now.date()
    raw: dict[int, dict] = {a.id: dict.fromkeys(FACTOR_NAMES) for a in accounts}
    if not ids:
        return raw

    def of_batch(field: str = "account_id") -> Q:
        if id_range is not None:
            return Q(**{f"{field}__gte": id_range[0], f"{field}__lte": id_range[1]})
        return Q(**{f"{field}__in": ids})

    # 1. Usage events: logins, usage in this and the previous window, onboarding.
    last_login: dict[int, dt.datetime] = {
        a.id: a.last_login for a in accounts if a.last_login and a.last_login <= now
    }
    events = (
        UsageEvent.objects.filter(of_batch(), occurred_at__lt=now)
        .filter(Q(occurred_at__gte=prev_start) | Q(type__in=[LOGIN_EVENT, ONBOARDED_EVENT]))
        .values("account_id")
        .annotate(
            last_login=Max("occurred_at", filter=Q(type=LOGIN_EVENT)),
            logins=Count("id", filter=Q(type=LOGIN_EVENT, occurred_at__gte=start)),
            current=Count("id", filter=Q(occurred_at__gte=start) & ~Q(type=ERROR_EVENT)),
            previous=Count(
                "id",
                filter=Q(occurred_at__gte=prev_start, occurred_at__lt=start) & ~Q(type=ERROR_EVENT),
            ),
            onboarded=Count("id", filter=Q(type=ONBOARDED_EVENT)),
        )
        .order_by()
    )
    usage = {row["account_id"]: row for row in events}
    for account_id, values in raw.items():
        row = usage.get(account_id)
        seen = [t for t in (last_login.get(account_id), row and row["last_login"]) if t]
        if seen:
            values[DAYS_SINCE_LOGIN] = (now - max(seen)).days
        values[LOGINS] = row["logins"] if row else 0
        values[ONBOARDING_COMPLETED] = "yes" if row and row["onboarded"] else "no"
        if row and row["previous"]:
            values[USAGE_TREND] = _trend(Decimal(row["current"]), Decimal(row["previous"]))

    # 2. One row per campaign that ran during the two windows: whether it runs today, when
    # its metrics last arrived, and its revenue and spend in each window. Each figure is a
    # sub-query per campaign on the (campaign, date) index: a join would let the planner
    # scan the whole metrics table once per batch.
    day0 = today - dt.timedelta(days=days)
    before = day0 - dt.timedelta(days=days)
    campaigns = (
        Campaign.objects.filter(of_batch(), starts_on__lt=today, ends_on__gte=before)
        .values("account_id", "starts_on", "ends_on", "status")
        .annotate(
            last=_metric_last(today),
            rev_now=_metric_sum("revenue", day0, today),
            spend_now=_metric_sum("spend", day0, today),
            rev_before=_metric_sum("revenue", before, day0),
            spend_before=_metric_sum("spend", before, day0),
        )
        .order_by()
    )
    zero = Decimal(0)
    money: dict[int, list[Decimal]] = {}
    for values in raw.values():
        values[ACTIVE_CAMPAIGNS] = 0
    for row in campaigns:
        account_id = row["account_id"]
        if row["ends_on"] >= today and row["status"] != Campaign.Status.CANCELED:
            values = raw[account_id]
            values[ACTIVE_CAMPAIGNS] += 1
            stale = (today - (row["last"] or row["starts_on"])).days
            values[METRICS_STALENESS] = max(values[METRICS_STALENESS] or 0, stale)
        sums = money.setdefault(account_id, [zero, zero, zero, zero])
        sums[0] += row["rev_now"] or zero
        sums[1] += row["spend_now"] or zero
        sums[2] += row["rev_before"] or zero
        sums[3] += row["spend_before"] or zero

    # 3. ROAS over the last `days` full days against the `days` before.
    for account_id, (rev_now, spend_now, rev_before, spend_before) in money.items():
        if spend_now and spend_before and rev_before:
            raw[account_id][ROAS_TREND] = _trend(rev_now / spend_now, rev_before / spend_before)

    # 4. Support tickets opened in the window (not the ones health itself opened).
    if apps.is_installed("support"):
        ticket = apps.get_model("support", "Ticket")
        breached = (
            Q(first_response_at__gt=F("first_response_due_at"))
            | Q(resolved_at__gt=F("resolution_due_at"))
            | Q(first_response_breach_escalated_at__isnull=False)
            | Q(resolution_breach_escalated_at__isnull=False)
            | ticket.breached_q(now)
        )
        tickets = (
            ticket.objects.filter(of_batch(), created_at__gte=start, created_at__lt=now)
            .exclude(tags__regex=rf"(^|,){HEALTH_TAG}(,|$)")
            .values("account_id")
            .annotate(
                opened=Count("id"),
                escalated=Count("id", filter=Q(escalation_level__gte=3)),
                breaches=Count("id", filter=breached),
            )
            .order_by()
        )
        counts = {row["account_id"]: row for row in tickets}
        for account_id, values in raw.items():
            row = counts.get(account_id, {"opened": 0, "escalated": 0, "breaches": 0})
            values[OPEN_TICKETS] = row["opened"]
            values[ESCALATED_TICKETS] = row["escalated"]
            values[SLA_BREACHES] = row["breaches"]

    # 5. Billing and deletion, as they were at `now`. A check for a past moment (the demo's
    # history, a recomputation) reads each subscription's last history row by then; a
    # subscription without history rows (bulk-created) is read as it is.
    if apps.is_installed("userflows"):
        subscription = apps.get_model("userflows", "Subscription")
        states = {
            row["account_id"]: row
            for row in subscription.objects.filter(of_batch()).values(
                "account_id", "status", "cancel_at_period_end", "created_at"
            )
        }
        if now < timezone.now() - PAST_CHECK:
            # Rows in time order: the last one by `now` per account wins.
            history = subscription.history.model.objects.filter(of_batch(), history_date__lte=now)
            as_of = {
                row["account_id"]: row
                for row in history.order_by("history_date", "history_id").values(
                    "account_id", "status", "cancel_at_period_end"
                )
            }
            for account_id, row in list(states.items()):
                if account_id in as_of:
                    states[account_id] = as_of[account_id]
                elif row["created_at"] > now:
                    del states[account_id]  # it did not exist yet
        for account_id, row in states.items():
            raw[account_id][BILLING_STATUS] = billing_value(
                row["status"], row["cancel_at_period_end"]
            )
        # A request pending at `now`: made before it, and neither canceled nor completed by
        # then (the status machine stamps both moments).
        deletion = apps.get_model("userflows", "DeletionRequest")
        asked = set(
            deletion.objects.filter(of_batch(), requested_at__lt=now)
            .filter(
                Q(status__in=deletion.PENDING_STATUSES)
                | Q(status=deletion.Status.CANCELED, canceled_at__gt=now)
                | Q(status=deletion.Status.COMPLETED, completed_at__gt=now)
            )
            .values_list("account_id", flat=True)
        )
        for account_id, values in raw.items():
            values[DELETION_REQUESTED] = "yes" if account_id in asked else "no"
    return raw


def _metric_last(today: dt.date) -> Subquery:
    return Subquery(
        CampaignMetric.objects.filter(campaign=OuterRef("pk"), date__lte=today)
        .order_by("-date")
        .values("date")[:1]
    )


def _metric_sum(field: str, start: dt.date, end: dt.date) -> Subquery:
    return Subquery(
        CampaignMetric.objects.filter(campaign=OuterRef("pk"), date__gte=start, date__lt=end)
        .order_by()
        .values("campaign")
        .annotate(total=Sum(field))
        .values("total"),
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )


def billing_value(status: str, cancel_at_period_end: bool) -> str:
    if status in ("past_due", "canceled"):
        return status
    if cancel_at_period_end:
        return "cancel_scheduled"
    return status  # active or trialing


# --- scoring ------------------------------------------------------------------------------------


@dataclass
class Card:
    """A scorecard parsed once per run: (name, weight, thresholds) and the bands."""

    persona_id: int
    healthy_min: Decimal
    at_risk_min: Decimal
    factors: list[tuple[str, Decimal, object]] = field(default_factory=list)
    # Per run: points by (factor, value) and stored rows by (factor, value, total weight).
    points: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)
    texts: dict = field(default_factory=dict)

    @classmethod
    def of(cls, scorecard) -> "Card":
        return cls(
            persona_id=scorecard.persona_id,
            healthy_min=scorecard.healthy_min,
            at_risk_min=scorecard.at_risk_min,
            factors=[
                (f.name, f.weight, parse_thresholds(f.name, f.thresholds))
                for f in scorecard.factors.all()
            ],
        )

    def advice(self, name: str, value, days: int) -> str:
        key = (name, value, days)
        text = self.texts.get(key)
        if text is None:
            text = self.texts[key] = recommend(name, value, days)
        return text

    def band(self, score: Decimal | None) -> str:
        if score is None:
            return HealthStatus.NO_DATA
        if score >= self.healthy_min:
            return HealthStatus.HEALTHY
        if score >= self.at_risk_min:
            return HealthStatus.AT_RISK
        return HealthStatus.CRITICAL


def points_for(name: str, thresholds, value) -> Decimal:
    """0 to 100 points: a choice's points, or the thresholds' line at `value` (flat beyond)."""
    if name in CHOICES:
        return q2(thresholds[value])
    value = Decimal(value)
    if value <= thresholds[0][0]:
        return q2(thresholds[0][1])
    for (x0, y0), (x1, y1) in itertools.pairwise(thresholds):
        if value <= x1:
            return q2(y0 + (y1 - y0) * (value - x0) / (x1 - x0))
    return q2(thresholds[-1][1])


@dataclass
class Result:
    """A scored account: `factors` are the rows stored on the check, as a JSON text
    (`factors_json`, built from cached fragments) and as Python on demand."""

    score: Decimal | None
    status: str
    factors_json: str
    recommendations: list[dict]

    @property
    def factors(self) -> list[dict]:
        return json.loads(self.factors_json)

    @property
    def top_factors(self) -> list[str]:
        return [r["factor"] for r in self.recommendations]


def _entry(name: str, value, points, weight: Decimal, total: Decimal) -> tuple:
    """One factor's stored row (as JSON text) and its cost; the same inputs always give the
    same row, so a run computes each distinct row once (see Card.entry)."""
    has_data = value is not None and total > 0
    contribution = cost = None
    if has_data:
        contribution = q2(points * weight / total)
        cost = q2((HUNDRED - points) * weight / total)
    row = {
        "name": name,
        "value": _json_value(value),
        "has_data": value is not None,
        "points": points,
        "weight": weight,
        "contribution": contribution,
        "cost": cost,
    }
    text = json.dumps({k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()})
    return text, cost


def score(card: Card, raw: dict, *, days: int) -> Result:
    """Weighted mean of the points of the factors that have data (a factor without data is
    left out of the weighting, never counted as zero)."""
    present = []
    total = Decimal(0)
    weighted = Decimal(0)
    for name, weight, thresholds in card.factors:
        value = raw.get(name)
        if value is None:
            present.append((name, weight, None, None))
            continue
        key = (name, value)
        points = card.points.get(key)
        if points is None:
            points = card.points[key] = points_for(name, thresholds, value)
        present.append((name, weight, value, points))
        total += weight
        weighted += points * weight
    score_value = q2(weighted / total) if total > 0 else None
    texts, costly = [], []
    for name, weight, value, points in present:
        key = (name, value, total)
        entry = card.entries.get(key)
        if entry is None:
            entry = card.entries[key] = _entry(name, value, points, weight, total)
        texts.append(entry[0])
        if entry[1] is not None and entry[1] > 0:
            costly.append((-entry[1], name, value))
    costly.sort()
    recommendations = [
        {"factor": name, "cost": str(-neg_cost), "text": card.advice(name, value, days)}
        for neg_cost, name, value in costly[:TOP_REASONS]
    ]
    return Result(
        score_value, card.band(score_value), "[" + ", ".join(texts) + "]", recommendations
    )


def described(rows: list[dict]) -> list[dict]:
    """Stored factor rows with their label and the value as people read it ("down 25.0%")."""
    out = []
    for row in rows:
        value = row["value"]
        if row["name"] in (ROAS_TREND, USAGE_TREND) and value is not None:
            value = Decimal(value)
        out.append(
            {**row, "label": Factor(row["name"]).label, "display": display(row["name"], value)}
        )
    return out


def _json_value(value):
    return str(value) if isinstance(value, Decimal) else value


def _percent(ratio: Decimal) -> str:
    pct = (ratio * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return f"{'down' if pct < 0 else 'up'} {abs(pct)}%"


def display(name: str, value) -> str:
    if value is None:
        return "no data"
    if name in (Factor.ROAS_TREND, Factor.USAGE_TREND):
        return _percent(value)
    if name in CHOICES:
        return value.replace("_", " ")
    return str(value)


def recommend(name: str, value, days: int) -> str:
    """What to do about a factor that costs points, saying the value that costs them."""
    s = "" if value == 1 else "s"
    if name == Factor.DAYS_SINCE_LOGIN:
        return f"No login for {value} day{s} — reach out and book a check-in call."
    if name == Factor.LOGINS:
        return f"Only {value} login{s} in {days} days — show the team what they are not using yet."
    if name == Factor.ACTIVE_CAMPAIGNS:
        if value == 0:
            return "No campaign running — help them line up their next sponsor deal."
        return f"Only {value} campaign{s} running — suggest sponsors for their open inventory."
    if name == Factor.METRICS_STALENESS:
        return (
            f"No metrics for {value} day{s} on a running campaign — check their metrics "
            "integration."
        )
    if name == Factor.ROAS_TREND:
        return (
            f"ROAS {_percent(value)} against the previous {days} days — review campaign "
            "performance with them."
        )
    if name == Factor.OPEN_TICKETS:
        return (
            f"{value} ticket{s} opened in {days} days — read their support history before "
            "reaching out."
        )
    if name == Factor.ESCALATED_TICKETS:
        return (
            f"{value} ticket{s} reached L3 or higher in {days} days — plan a joint follow-up "
            "with the support lead."
        )
    if name == Factor.SLA_BREACHES:
        return (
            f"{value} SLA breach{'' if value == 1 else 'es'} suffered in {days} days — apologise "
            "and make sure the open issues are resolved."
        )
    if name == Factor.BILLING_STATUS:
        return {
            "past_due": "Payment past due — contact them before the subscription lapses.",
            "cancel_scheduled": "Cancellation scheduled — call before the period ends and ask why.",
            "canceled": "Subscription canceled — offer a win-back plan.",
            "trialing": "Still on a trial — help them reach value before it ends.",
        }.get(value, f"Billing is {value} — check the subscription.")
    if name == Factor.DELETION_REQUESTED:
        return "Account deletion requested — contact them before the grace period ends."
    if name == Factor.ONBOARDING_COMPLETED:
        return "Onboarding not completed — walk them through the remaining steps."
    if name == Factor.USAGE_TREND:
        return (
            f"Product usage {_percent(value)} against the previous {days} days — find out what "
            "changed."
        )
    raise ValueError(name)
