"""The study definitions of docs/metrics.md, computed in the database.

Every study costs a fixed number of queries whatever the data size: the database sums the
large tables (campaigns, 50M metric rows) down to one row per group, and Python only finishes
exact arithmetic on those groups. Money is summed as integer cents (`CAST(ROUND(x * 100))`
is exact on PostgreSQL's numeric and on SQLite's floats, whose cents fit in 53 bits); a
recognised share `cents * days / length` stays an exact integer fraction (grouped by campaign
length, so a total is a short sum) until the result, where it is rounded once to cents, half
up. Rates follow docs/metrics.md ("Rates").
"""

import datetime as dt
import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from operator import itemgetter

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    DateField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import ExpressionWrapper
from django.db.models.functions import Greatest, Least
from psycopg.types.numeric import IntLoader

from deployments.health.models import AccountHealthCheck
from deployments.selectors import COMPLETED_EVENT as ONBOARDING_COMPLETED
from opsplatform.models import Account, Campaign, CampaignMetric, Persona, UsageEvent
from support.models import Ticket

Z_95 = 1.959963984540054
# Memory for one revenue aggregation on PostgreSQL (see _account_revenue_pg).
PG_WORK_MEM = "64MB"
CANCELED = Campaign.Status.CANCELED

RENEWAL_KEYS = ["renewal_rate", "total_campaigns", "renewed_campaigns", "ci_low", "ci_high"]
GROWTH_KEYS = [
    "revenue",
    "previous_revenue",
    "growth_rate",
    "median_account_growth",
    "accounts_growing",
    "accounts_flat",
    "accounts_shrinking",
]
EFFICIENCY_KEYS = [
    "campaigns",
    "campaigns_with_spend",
    "revenue",
    "spend",
    "avg_roi",
    "median_roi",
    "avg_roas",
    "pooled_roas",
    "cpa",
    "ctr",
    "conversion_rate",
]
PERSONA_KEYS = ["accounts", "revenue_share", "tickets", "tickets_per_account"]
# The headline keys a series can follow, per study type (money keys are decimal strings).
SERIES_METRICS = {
    "renewal_rate": RENEWAL_KEYS,
    "revenue_growth": GROWTH_KEYS,
    "campaign_efficiency": EFFICIENCY_KEYS,
    "persona_impact": PERSONA_KEYS,
}
MONEY_KEYS = {"revenue", "previous_revenue", "spend", "cpa"}


# --- SQL building blocks that read the same on SQLite and PostgreSQL -------------------------


class DaysBetween(Func):
    """`a - b` in days for two dates: PostgreSQL's `date - date` is an integer; SQLite keeps
    dates as ISO text, so it goes through `julianday`."""

    arity = 2
    output_field = IntegerField()
    template = "(%(expressions)s)"
    arg_joiner = " - "

    def as_sqlite(self, compiler, conn, **extra):
        return self.as_sql(
            compiler,
            conn,
            template="CAST(ROUND(julianday(%(expressions)s)) AS INTEGER)",
            arg_joiner=") - julianday(",
            **extra,
        )


class Cents(Func):
    """A money column as integer cents, exactly (see the module docstring)."""

    arity = 1
    output_field = BigIntegerField()
    template = "CAST(ROUND(%(expressions)s * 100) AS BIGINT)"


def _date(value: dt.date) -> Value:
    return Value(value, output_field=DateField())


def overlap_days(start: dt.date, end: dt.date):
    """Days of a campaign inside [start, end] (callers filter to campaigns that overlap)."""
    return DaysBetween(Least(F("ends_on"), _date(end)), Greatest(F("starts_on"), _date(start))) + 1


def campaign_days():
    return DaysBetween(F("ends_on"), F("starts_on")) + 1


def _bigint(expression):
    return ExpressionWrapper(expression, output_field=BigIntegerField())


# --- exact arithmetic and formatting ---------------------------------------------------------


def money(cents: Fraction | int | None) -> str | None:
    """Cents (exact) → a decimal string with two places, rounded half up (away from zero)."""
    if cents is None:
        return None
    value = Fraction(cents)
    rounded = math.floor(abs(value) + Fraction(1, 2))
    amount = (Decimal(rounded) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return str(-amount if value < 0 else amount)


def ratio(numerator, denominator) -> float | None:
    """numerator / denominator as the nearest double (ints divide correctly rounded)."""
    if not denominator:
        return None
    if isinstance(numerator, int) and isinstance(denominator, int):
        return numerator / denominator
    return float(Fraction(numerator) / Fraction(denominator))


class Rates:
    """Per-item rates num/den (ints, den > 0) with their mean and median as doubles.

    Averaging thousands of exact fractions with unrelated denominators makes numbers with
    thousands of digits, so each rate becomes its nearest double once, the mean is the
    correctly rounded `fsum` of those divided by the count, and the median is picked by
    that order then computed from the exact middle fraction(s)."""

    def __init__(self):
        self.items: list[tuple[float, int, int]] = []

    def add(self, num: int, den: int) -> None:
        self.items.append((num / den, num, den))

    def mean(self) -> float | None:
        return math.fsum(r for r, _, _ in self.items) / len(self.items) if self.items else None

    def median(self) -> float | None:
        if not self.items:
            return None
        ordered = sorted(self.items, key=itemgetter(0))
        middle = len(ordered) // 2
        if len(ordered) % 2:
            return ordered[middle][0]
        (_, n1, d1), (_, n2, d2) = ordered[middle - 1], ordered[middle]
        return (n1 * d2 + n2 * d1) / (2 * d1 * d2)


def wilson_interval(successes: int, total: int, z: float = Z_95):
    """The Wilson score interval of successes/total; (None, None) when total is 0."""
    if total == 0:
        return None, None
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


# --- segments ---------------------------------------------------------------------------------


def personas(segment: Persona | None) -> dict[int, str]:
    """id → slug of the personas a study breaks down by (one query, or none for a segment)."""
    if segment is not None:
        return {segment.id: segment.slug}
    return dict(Persona.objects.order_by("slug").values_list("id", "slug"))


def _live_campaigns(segment: Persona | None):
    campaigns = Campaign.objects.exclude(status=CANCELED)
    if segment is not None:
        campaigns = campaigns.filter(account__persona_id=segment.id)
    return campaigns


# --- renewal rate -----------------------------------------------------------------------------


def _renewal(total: int, renewed: int) -> dict:
    low, high = wilson_interval(renewed, total)
    return {
        "renewal_rate": ratio(renewed, total),
        "total_campaigns": total,
        "renewed_campaigns": renewed,
        "ci_low": low,
        "ci_high": high,
    }


def renewal_rate(start: dt.date, end: dt.date, segment: Persona | None) -> dict:
    slugs = personas(segment)
    live_renewal = Q(renewal__isnull=False) & ~Q(renewal__status=CANCELED)
    rows = (
        _live_campaigns(segment)
        .filter(ends_on__gte=start, ends_on__lte=end)
        .values("account__persona_id")
        .annotate(total=Count("id"), renewed=Count("id", filter=live_renewal))
        .order_by()
    )
    per = dict.fromkeys(slugs.values(), (0, 0))
    for row in rows:
        per[slugs[row["account__persona_id"]]] = (row["total"], row["renewed"])
    total = sum(t for t, _ in per.values())
    renewed = sum(r for _, r in per.values())
    return {
        **_renewal(total, renewed),
        "by_persona": {slug: _renewal(*counts) for slug, counts in per.items()},
    }


# --- revenue and revenue growth ---------------------------------------------------------------


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The same number of days, ending the day before `start`."""
    days = (end - start).days + 1
    return start - dt.timedelta(days=days), start - dt.timedelta(days=1)


class Revenue:
    """Recognised revenue of a set of accounts in a period and the previous one, exact.

    `by_length`: per persona, campaign length -> summed `cents * days inside` for each period,
    so a total is a short exact sum over the distinct lengths;
    `accounts`: per account [persona id, current num, den, previous num, den] in cents — every
    account with revenue on the portable path; on PostgreSQL only the few the database could
    not place by itself (see `_account_revenue_pg`), with `decided` holding what it placed."""

    def __init__(self):
        self.accounts: dict[int, list] = {}
        self.by_length: dict[int, tuple[dict, dict]] = {}
        # PostgreSQL only (None on the portable path): per persona (growing, flat, shrinking,
        # accounts with a rate, of those certainly below the middle of everyone's rates, of
        # those certainly below the middle of the persona's rates).
        self.decided: dict[int, tuple[int, int, int, int, int, int]] | None = None
        self.uncounted: set[int] = set()  # accounts of `accounts` whose call is not decided
        # account id -> (could be everyone's median, could be its persona's median)
        self.median_candidates: dict[int, tuple[bool, bool]] = {}
        # exact rates that could be a median, known without their rows:
        # (persona id, num, den, how many accounts, everyone's candidate, persona's candidate)
        self.candidate_rates: list[tuple[int, int, int, int, bool, bool]] = []

    def add(self, account_id, persona_id, length, current, previous, *, totals=True):
        entry = self.accounts.get(account_id)
        if entry is None:
            self.accounts[account_id] = [persona_id, current, length, previous, length]
        else:
            entry[1] = entry[1] * length + current * entry[2]
            entry[2] *= length
            entry[3] = entry[3] * length + previous * entry[4]
            entry[4] *= length
        if totals:
            self.add_total(persona_id, length, current, previous)

    def add_total(self, persona_id, length, current, previous):
        current_sums, previous_sums = self.by_length.setdefault(persona_id, ({}, {}))
        current_sums[length] = current_sums.get(length, 0) + current
        previous_sums[length] = previous_sums.get(length, 0) + previous

    def totals(self, persona_id: int | None = None) -> tuple[Fraction, Fraction]:
        """(current, previous) exact cents of one persona, or of everyone."""
        groups = (
            list(self.by_length.values())
            if persona_id is None
            else [self.by_length.get(persona_id, ({}, {}))]
        )
        current: dict[int, int] = defaultdict(int)
        previous: dict[int, int] = defaultdict(int)
        for current_sums, previous_sums in groups:
            for length, value in current_sums.items():
                current[length] += value
            for length, value in previous_sums.items():
                previous[length] += value
        return _exact(current), _exact(previous)

    def growth(self, persona_id: int | None = None) -> dict:
        """The growth figures of one persona, or of everyone."""
        counts = {-1: 0, 0: 0, 1: 0}
        rates: list[tuple[int, int, int]] = []  # (num, den, how many), den > 0
        mine = [
            (account_id, entry)
            for account_id, entry in self.accounts.items()
            if persona_id is None or entry[0] == persona_id
        ]
        if self.decided is None:  # the portable path: every account is here
            for _, (_, cn, cd, pn, pd) in mine:
                if cn == 0 and pn == 0:
                    continue  # no revenue in either period: not counted
                now, before = cn * pd, pn * cd  # cross-multiplied over the positive lengths
                counts[(now > before) - (now < before)] += 1
                if pn > 0:
                    rates.append((now - before, before, 1))
            return self._figures(persona_id, counts, _median(rates, len(rates), 0))
        rated = below = 0
        for pid, (
            growing,
            flat,
            shrinking,
            with_rate,
            below_all,
            below_own,
        ) in self.decided.items():
            if persona_id is None or pid == persona_id:
                counts[1] += growing
                counts[0] += flat
                counts[-1] += shrinking
                rated += with_rate
                below += below_all if persona_id is None else below_own
        which = 0 if persona_id is None else 1
        for account_id, (_, cn, cd, pn, pd) in mine:
            now, before = cn * pd, pn * cd
            if account_id in self.uncounted:
                counts[(now > before) - (now < before)] += 1
            if self.median_candidates.get(account_id, (False, False))[which]:
                rates.append((now - before, before, 1))
        for pid, num, den, many, *candidate in self.candidate_rates:
            if (persona_id is None or pid == persona_id) and candidate[which]:
                rates.append((num, den, many))
        return self._figures(persona_id, counts, _median(rates, rated, below))

    def _figures(self, persona_id, counts: dict, median: float | None) -> dict:
        revenue, previous = self.totals(persona_id)
        return {
            "revenue": money(revenue),
            "previous_revenue": money(previous),
            "growth_rate": float((revenue - previous) / previous) if previous else None,
            "median_account_growth": median,
            "accounts_growing": counts[1],
            "accounts_flat": counts[0],
            "accounts_shrinking": counts[-1],
        }


def _median(rates: list[tuple[int, int, int]], rated: int, below: int) -> float | None:
    """The median of `rated` exact rates: `below` of them are smaller than every one of
    `rates` ((num, den, how many accounts), exactly), which hold the middle one(s).

    Sorted by their nearest doubles, which order different rates the same way as the exact
    fractions do; only equal doubles compare as fractions."""
    if rated == 0:
        return None
    ordered = sorted(rates, key=lambda rate: (rate[0] / rate[1], Fraction(rate[0], rate[1])))
    middle = rated // 2
    positions = [middle] if rated % 2 else [middle - 1, middle]
    picked, seen = [], 0
    for num, den, many in ordered:
        seen += many
        while positions and positions[0] - below < seen:
            picked.append((num, den))
            positions.pop(0)
    if len(picked) == 1:
        num, den = picked[0]
        return num / den
    (n1, d1), (n2, d2) = picked
    return (n1 * d2 + n2 * d1) / (2 * d1 * d2)


def _exact(sums_by_length: dict[int, int]) -> Fraction:
    """Σ sum / length exactly, over one common denominator (a Fraction per term would reduce
    each partial sum by a gcd of ever larger numbers)."""
    if not sums_by_length:
        return Fraction(0)
    common = math.lcm(*sums_by_length)
    return Fraction(
        sum(total * (common // length) for length, total in sums_by_length.items()), common
    )


def _revenue_rows(start: dt.date, end: dt.date, segment: Persona | None):
    """Per account, persona and campaign length: summed `cents * days inside` for the period
    and the previous one, over live campaigns overlapping either."""
    prev_start, prev_end = previous_period(start, end)
    in_current = Q(starts_on__lte=end, ends_on__gte=start)
    in_previous = Q(starts_on__lte=prev_end, ends_on__gte=prev_start)
    return (
        _live_campaigns(segment)
        .filter(starts_on__lte=end, ends_on__gte=prev_start)
        .annotate(cents=Cents("deal_value"), length=campaign_days())
        .values("account_id", "account__persona_id", "length")
        .annotate(
            current=Sum(
                Case(
                    When(in_current, then=_bigint(F("cents") * overlap_days(start, end))),
                    default=Value(0),
                    output_field=BigIntegerField(),
                )
            ),
            previous=Sum(
                Case(
                    When(
                        in_previous,
                        then=_bigint(F("cents") * overlap_days(prev_start, prev_end)),
                    ),
                    default=Value(0),
                    output_field=BigIntegerField(),
                )
            ),
        )
        .order_by()
        .values_list("account_id", "account__persona_id", "length", "current", "previous")
    )


def account_revenue(start: dt.date, end: dt.date, segment: Persona | None) -> Revenue:
    """Recognised revenue per account for the period and the previous one, for every account
    with a live campaign overlapping either. One query: the database sums
    `cents * days inside` per account and campaign length; the division by the length stays
    exact in Python (integers). PostgreSQL takes the faster path of `_account_revenue_pg`."""
    if connection.vendor == "postgresql":
        return _account_revenue_pg(start, end, segment)
    revenue = Revenue()
    # A plain cursor, not .iterator(): PostgreSQL plans a named cursor for the first rows and
    # ran these aggregates 3-4x slower.
    for account_id, persona_id, length, current, previous in _revenue_rows(start, end, segment):
        revenue.add(account_id, persona_id, int(length), int(current), int(previous))
    return revenue


# The SQL of _account_revenue_pg (table names and fixed fragments are interpolated; values
# are parameters). `k`: each live campaign overlapping either period, its length, cents and
# days inside each period.
_CAMPAIGN_FIGURES = """
    SELECT c.account_id, c.ends_on - c.starts_on + 1 AS len,
           CAST(c.deal_value * 100 AS bigint) AS cents,
           GREATEST(LEAST(c.ends_on, %(end)s) - GREATEST(c.starts_on, %(start)s) + 1, 0) AS dc,
           GREATEST(LEAST(c.ends_on, %(prev_end)s) - GREATEST(c.starts_on, %(prev_start)s) + 1,
                    0) AS dp
    FROM {campaign} c
    WHERE c.starts_on <= %(end)s AND c.ends_on >= %(prev_start)s AND c.status <> %(canceled)s"""
_GROWTH_SQL = """
WITH rated AS MATERIALIZED (
    -- One pass over the campaigns: per persona and length the exact integer totals; per
    -- account (with revenue) its call where certain — its integer sums are exact when all
    -- its campaigns share one length, else its shares summed in doubles must be apart by
    -- more than twice their error bound (see _account_revenue_pg) — else NULL, and its
    -- rate within `bound`. A sum of positive shares is 0 exactly when every share is.
    SELECT k.account_id, a.persona_id, k.len,
           SUM(k.now) AS cur_int, SUM(k.before) AS prev_int,
           CAST(CASE WHEN SUM(k.share_before) = 0 THEN 1
                     WHEN SUM(k.share_now) = 0 THEN -1
                     WHEN MIN(k.len) = MAX(k.len) AND SUM(k.now) < CAST(%(exact_below)s AS float8)
                          AND SUM(k.before) < CAST(%(exact_below)s AS float8)
                     THEN sign(SUM(k.now) - SUM(k.before))
                     WHEN abs(SUM(k.share_now) - SUM(k.share_before)) > (COUNT(*) + 2)
                          * CAST(%(e51)s AS float8) * (SUM(k.share_now) + SUM(k.share_before))
                     THEN sign(SUM(k.share_now) - SUM(k.share_before)) END AS int) AS comparison,
           (SUM(k.share_now) = 0 OR MIN(k.len) = MAX(k.len))
               AND SUM(k.now) < CAST(%(exact_below)s AS float8)
               AND SUM(k.before) < CAST(%(exact_below)s AS float8) AS exact,
           CASE WHEN SUM(k.share_before) > 0
                THEN SUM(k.share_now) / SUM(k.share_before) - 1 END AS rate,
           (COUNT(*) + 2) * CAST(%(e50)s AS float8)
               * (SUM(k.share_now) / NULLIF(SUM(k.share_before), 0))
               + CAST(%(e50)s AS float8) AS bound
    -- OFFSET 0 keeps each subquery whole, so every figure is computed once per campaign.
    FROM (SELECT d.account_id, d.len, d.now, d.before, d.now / d.days AS share_now,
                 d.before / d.days AS share_before
          FROM (SELECT f.account_id, f.len, CAST(f.len AS float8) AS days,
                       CAST(f.cents * f.dc AS float8) AS now,
                       CAST(f.cents * f.dp AS float8) AS before
                FROM ({figures} OFFSET 0) f OFFSET 0) d OFFSET 0) k
    JOIN {account} a ON a.id = k.account_id
    WHERE true {segment_filter}
    GROUP BY GROUPING SETS ((k.account_id, a.persona_id), (a.persona_id, k.len))
    HAVING GROUPING(k.account_id) = 1 OR SUM(k.share_now) > 0 OR SUM(k.share_before) > 0
),
middles AS MATERIALIZED (
    -- Per persona and for everyone: the certain calls, how many rates, and where the middle
    -- exact rate(s) can be. percentile_disc at 0.5 and just above it picks the lower and
    -- upper middle doubles in one sort (rows ceil(n / 2) and floor(n / 2) + 1; it skips
    -- nulls); the widest bound is added on both sides.
    SELECT persona_id, everyone, growing, flat, shrinking, with_rate,
           m[1] - widest AS low, m[2] + widest AS high
    FROM (SELECT persona_id, GROUPING(persona_id) AS everyone,
                 COUNT(*) FILTER (WHERE comparison = 1) AS growing,
                 COUNT(*) FILTER (WHERE comparison = 0) AS flat,
                 COUNT(*) FILTER (WHERE comparison = -1) AS shrinking,
                 COUNT(rate) AS with_rate, MAX(bound) FILTER (WHERE rate IS NOT NULL) AS widest,
                 percentile_disc(ARRAY[0.5, CAST(%(upper_middle)s AS float8)])
                     WITHIN GROUP (ORDER BY rate) AS m
          FROM rated WHERE account_id IS NOT NULL
          GROUP BY GROUPING SETS ((persona_id), ())) w
),
marked AS NOT MATERIALIZED (
    SELECT r.*, p.growing, p.flat, p.shrinking, p.with_rate,
           COALESCE(r.rate + r.bound < e.low, false) AS below_all,
           COALESCE(r.rate + r.bound < p.low, false) AS below_own,
           COALESCE(r.rate + r.bound >= e.low AND r.rate - r.bound <= e.high, false) AS median_all,
           COALESCE(r.rate + r.bound >= p.low AND r.rate - r.bound <= p.high, false) AS median_own
    FROM rated r JOIN middles e ON e.everyone = 1
    JOIN middles p ON p.everyone = 0 AND p.persona_id = r.persona_id
    WHERE r.account_id IS NOT NULL
),
pending AS MATERIALIZED (
    SELECT * FROM marked
    WHERE comparison IS NULL OR median_all OR median_own
)
-- 'g': what the database decided, per persona
SELECT 'g', persona_id, CAST(NULL AS bigint), MIN(growing), MIN(flat), MIN(shrinking),
       MIN(with_rate), COUNT(*) FILTER (WHERE below_all), COUNT(*) FILTER (WHERE below_own),
       NULL::bool, NULL::bool
FROM marked GROUP BY persona_id
UNION ALL
-- 'v': exact rates that could be a median, reduced and counted
SELECT 'v', persona_id, NULL, n / g, d / g, COUNT(*), NULL, NULL, NULL, median_all, median_own
FROM (SELECT persona_id, median_all, median_own, CAST(cur_int - prev_int AS bigint) AS n,
             CAST(prev_int AS bigint) AS d,
             gcd(CAST(cur_int - prev_int AS bigint), CAST(prev_int AS bigint)) AS g
      FROM pending WHERE exact) v
GROUP BY persona_id, n / g, d / g, median_all, median_own
UNION ALL
-- 'a': the rows per length of the accounts the database could not place
SELECT 'a', m.persona_id, m.account_id, l.len, l.cur, l.prev, CAST(m.comparison IS NULL AS int),
       NULL, NULL, m.median_all, m.median_own
FROM pending m CROSS JOIN LATERAL (
    SELECT f.len, SUM(f.cents * f.dc) AS cur, SUM(f.cents * f.dp) AS prev
    FROM ({figures} AND c.account_id = m.account_id) f
    GROUP BY f.len) l
WHERE NOT m.exact
UNION ALL
-- 't': the exact totals per persona and length (past 2^53 unused, and left out of bigint)
SELECT 't', persona_id, NULL, len,
       CASE WHEN cur_int < CAST(%(exact_below)s AS float8) THEN CAST(cur_int AS bigint) END,
       CASE WHEN prev_int < CAST(%(exact_below)s AS float8) THEN CAST(prev_int AS bigint) END,
       NULL, NULL, NULL, NULL, NULL
FROM rated WHERE account_id IS NULL
UNION ALL
-- 'T': the totals again in integers, read only when a sum in doubles reached 2^53, where
-- doubles stop holding every integer (a one-time filter: otherwise not executed)
SELECT 'T', a.persona_id, NULL, f.len, SUM(f.cents * f.dc), SUM(f.cents * f.dp),
       NULL, NULL, NULL, NULL, NULL
FROM ({figures}) f JOIN {account} a ON a.id = f.account_id
WHERE (SELECT bool_or(GREATEST(cur_int, prev_int) >= CAST(%(exact_below)s AS float8))
       FROM rated WHERE account_id IS NULL) {segment_filter}
GROUP BY a.persona_id, f.len"""


def _account_revenue_pg(start: dt.date, end: dt.date, segment: Persona | None) -> Revenue:
    """The same figures, with the per-account work done by the database: one statement
    returns a few rows whatever the data size.

    One pass over the campaigns (GROUPING SETS) gives per persona and length the sums of
    `cents * days inside` (the exact totals), and per account those sums (its exact revenue
    when its campaigns share one length) and its shares `cents * days / length` summed in
    doubles: each share is an exact integer turned into a double and divided (two roundings),
    so a sum of n is within (n + 2) * 2^-53 of its value, relatively (the SQL takes twice
    that). The integer sums are summed in doubles too, exact while below 2^53; past it the
    totals are summed again in integers (a branch PostgreSQL runs only then) and the account
    is treated as known within its bound. From those the
    database counts the growing/flat/shrinking calls that are certain and finds, per persona
    and for everyone, the window where the middle exact rate(s) must lie: every exact rate is
    within the widest bound of its double, so the middle ones are within it of the middle
    doubles. It returns, per persona, those counts, how many rates there are and how many lie
    certainly below each window; the exact rates that meet a window (reduced, with how many
    accounts share each); and the rows per length of the accounts whose call is uncertain or
    whose uncertain rate meets a window. Python settles those exactly: every published figure
    is the exact one."""
    prev_start, prev_end = previous_period(start, end)
    campaign, account = Campaign._meta.db_table, Account._meta.db_table
    sql = _GROWTH_SQL.format(
        figures=_CAMPAIGN_FIGURES.format(campaign=campaign),
        account=account,
        segment_filter="AND a.persona_id = %(persona)s" if segment is not None else "",
    )
    params = {
        "start": start,
        "end": end,
        "prev_start": prev_start,
        "prev_end": prev_end,
        "canceled": CANCELED,
        "persona": segment.id if segment is not None else None,
        "e50": 2.0**-50,
        "e51": 2.0**-51,
        # 0.5 + 2^-40: percentile_disc's row ceil(f * n) is floor(n / 2) + 1 for n < 2^40.
        "upper_middle": 0.5 + 2.0**-40,
        # Sums of integers in doubles are exact while they stay below 2^53 (each partial
        # sum is then an integer below it; past it, every later sum is 2^53 or more).
        "exact_below": 2.0**53,
    }
    revenue = Revenue()
    revenue.decided = {}
    with transaction.atomic(), connection.cursor() as cursor:
        # The numeric columns are integers: read them as ints, not Decimals.
        cursor.cursor.adapters.register_loader("numeric", IntLoader)
        # The grouping sets hash in memory in one pass instead of sorting to disk; the plan is
        # too short-lived for JIT compilation to pay off. One round trip: the settings, then
        # the statement (the cursor binds parameters on the client, so they can go together).
        cursor.execute(f"SET LOCAL work_mem = '{PG_WORK_MEM}'; SET LOCAL jit = off; {sql}", params)
        while cursor.description is None:  # past the two SETs
            cursor.nextset()
        rows = cursor.fetchall()
    exact_totals = [row for row in rows if row[0] == "T"]
    for kind, persona_id, account_id, a, b, c, d, e, f, median_all, median_own in rows:
        if kind in ("t", "T"):
            if kind == ("T" if exact_totals else "t"):
                revenue.add_total(persona_id, a, b, c)
        elif kind == "g":
            revenue.decided[persona_id] = (a, b, c, d, e, f)
        elif kind == "v":
            revenue.candidate_rates.append((persona_id, a, b, c, median_all, median_own))
        else:  # "a"
            revenue.add(account_id, persona_id, a, b, c, totals=False)
            revenue.median_candidates[account_id] = (median_all, median_own)
            if d:
                revenue.uncounted.add(account_id)
    return revenue


def revenue_growth(start: dt.date, end: dt.date, segment: Persona | None) -> dict:
    slugs = personas(segment)
    revenue = account_revenue(start, end, segment)
    return {
        **revenue.growth(None),
        "by_persona": {slug: revenue.growth(pid) for pid, slug in slugs.items()},
    }


# --- campaign efficiency ----------------------------------------------------------------------


def _efficiency(campaigns: list[tuple]) -> dict:
    """campaigns: (spend cents, revenue cents, conversions, clicks, impressions) each."""
    spend = sum(c[0] for c in campaigns)
    revenue = sum(c[1] for c in campaigns)
    conversions = sum(c[2] for c in campaigns)
    clicks = sum(c[3] for c in campaigns)
    impressions = sum(c[4] for c in campaigns)
    rois, roases = Rates(), Rates()
    for s, v, *_ in campaigns:
        if s > 0:
            rois.add(v - s, s)
            roases.add(v, s)
    return {
        "campaigns": len(campaigns),
        "campaigns_with_spend": len(rois.items),
        "revenue": money(revenue),
        "spend": money(spend),
        "avg_roi": rois.mean(),
        "median_roi": rois.median(),
        "avg_roas": roases.mean(),
        "pooled_roas": ratio(revenue, spend),
        "cpa": money(Fraction(spend, conversions)) if conversions else None,
        "ctr": ratio(clicks, impressions),
        "conversion_rate": ratio(conversions, clicks),
    }


def campaign_totals(start: dt.date, end: dt.date, segment: Persona | None):
    """(persona id, spend cents, revenue cents, conversions, clicks, impressions) per live
    campaign with a metric row dated in the period: one grouped query over the metric table."""
    rows = CampaignMetric.objects.filter(date__gte=start, date__lte=end).exclude(
        campaign__status=CANCELED
    )
    if segment is not None:
        rows = rows.filter(campaign__account__persona_id=segment.id)
    rows = (
        rows.values("campaign_id", "campaign__account__persona_id")
        .annotate(
            spend_cents=Sum(Cents("spend")),
            revenue_cents=Sum(Cents("revenue")),
            conv=Sum("conversions"),
            clk=Sum("clicks"),
            imp=Sum("impressions"),
        )
        .order_by()
        .values_list(
            "campaign__account__persona_id", "spend_cents", "revenue_cents", "conv", "clk", "imp"
        )
    )
    for persona_id, *sums in rows:  # a plain cursor (see account_revenue)
        yield persona_id, *(int(v) for v in sums)


def campaign_efficiency(start: dt.date, end: dt.date, segment: Persona | None) -> dict:
    slugs = personas(segment)
    per: dict[str, list] = {slug: [] for slug in slugs.values()}
    for persona_id, *sums in campaign_totals(start, end, segment):
        per[slugs[persona_id]].append(tuple(sums))
    everyone = [c for campaigns in per.values() for c in campaigns]
    return {
        **_efficiency(everyone),
        "by_persona": {slug: _efficiency(campaigns) for slug, campaigns in per.items()},
    }


# --- persona impact ---------------------------------------------------------------------------


def tickets_opened(start: dt.date, end: dt.date, segment: Persona | None) -> dict[int, int]:
    """persona id → support tickets of its accounts created in the period (UTC days)."""
    since = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    tickets = Ticket.objects.filter(
        account__isnull=False, created_at__gte=since, created_at__lt=until
    )
    if segment is not None:
        tickets = tickets.filter(account__persona_id=segment.id)
    return dict(
        tickets.values("account__persona_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("account__persona_id", "n")
    )


HEALTH_STATUSES = ("healthy", "at_risk", "critical")


def health_and_onboarding(end: dt.date, segment: Persona | None) -> dict[int, dict]:
    """persona id → the account health and onboarding figures of its accounts created on or
    before `end` (one query): each account's latest health check on or before `end` (its
    score and status) and whether it completed onboarding by then."""
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    latest = AccountHealthCheck.objects.filter(
        account_id=OuterRef("pk"), checked_at__lt=until
    ).order_by("-checked_at", "-id")
    onboarded = UsageEvent.objects.filter(
        account_id=OuterRef("pk"), type=ONBOARDING_COMPLETED, occurred_at__lt=until
    )
    accounts = Account.objects.filter(created_at__lt=until)
    if segment is not None:
        accounts = accounts.filter(persona_id=segment.id)
    rows = accounts.annotate(
        health_score=Subquery(latest.values("score")[:1]),
        health_status=Subquery(latest.values("status")[:1]),
        onboarded=Exists(onboarded),
    ).values_list("persona_id", "health_score", "health_status", "onboarded")
    per: dict[int, dict] = defaultdict(
        lambda: {
            "accounts": 0,
            "onboarded": 0,
            "checked": 0,
            "scored": [],
            **dict.fromkeys(HEALTH_STATUSES, 0),
        }
    )
    for persona_id, score, status, was_onboarded in rows:
        figures = per[persona_id]
        figures["accounts"] += 1
        figures["onboarded"] += bool(was_onboarded)
        if status is not None:
            figures["checked"] += 1
            figures[status] += 1
            if score is not None:
                figures["scored"].append(Decimal(score))
    return per


def _health_figures(figures: dict | None) -> dict:
    if figures is None:
        figures = {"accounts": 0, "onboarded": 0, "checked": 0, "scored": []}
    scored = figures["scored"]
    mean = None
    if scored:
        mean = str((sum(scored) / len(scored)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return {
        "health": {
            "accounts_checked": figures["checked"],
            "mean_score": mean,
            **{status: figures.get(status, 0) for status in HEALTH_STATUSES},
        },
        "onboarding_completion_rate": ratio(figures["onboarded"], figures["accounts"]),
    }


def persona_impact(start: dt.date, end: dt.date, segment: Persona | None) -> dict:
    slugs = personas(segment)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    accounts = Account.objects.filter(created_at__lt=until)
    if segment is not None:
        accounts = accounts.filter(persona_id=segment.id)
    account_counts = dict(
        accounts.values("persona_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("persona_id", "n")
    )
    tickets = tickets_opened(start, end, segment)
    renewal = renewal_rate(start, end, segment)["by_persona"]
    revenue = account_revenue(start, end, segment)
    total_revenue, _ = revenue.totals()
    efficiency = campaign_efficiency(start, end, segment)["by_persona"]
    health = health_and_onboarding(end, segment)
    results = {}
    for persona_id, slug in slugs.items():
        n = account_counts.get(persona_id, 0)
        opened = tickets.get(persona_id, 0)
        persona_revenue, _ = revenue.totals(persona_id)
        results[slug] = {
            "accounts": n,
            "revenue_share": ratio(persona_revenue, total_revenue),
            "tickets": opened,
            "tickets_per_account": ratio(opened, n),
            "renewal_rate": renewal[slug],
            "revenue_growth": revenue.growth(persona_id),
            "campaign_efficiency": efficiency[slug],
            **_health_figures(health.get(persona_id)),
        }
    return {"personas": results}


# --- revenue cohorts --------------------------------------------------------------------------


def months_between(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The calendar months from `start`'s month to `end`'s month, as (first day, last day)."""
    months = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        following = dt.date(year + month // 12, month % 12 + 1, 1)
        months.append((dt.date(year, month, 1), following - dt.timedelta(days=1)))
        year, month = following.year, following.month
    return months


def _cohort_sql(vendor: str, month_count: int, segmented: bool) -> str:
    if vendor == "postgresql":
        date, least, greatest = "CAST(%s AS date)", "LEAST", "GREATEST"

        def days(a, b):
            return f"({a} - {b})"
    else:
        date, least, greatest = "%s", "MIN", "MAX"

        def days(a, b):
            return f"CAST(ROUND(julianday({a}) - julianday({b})) AS INTEGER)"

    values = ", ".join(f"(%s, {date}, {date})" for _ in range(month_count))
    segment = "AND a.persona_id = %s" if segmented else ""
    inside = days(f"{least}(l.ends_on, m.m_end)", f"{greatest}(l.starts_on, m.m_start)")
    # Only fixed SQL fragments and model table names are interpolated; values are parameters.
    return f"""
        WITH months(idx, m_start, m_end) AS (VALUES {values}),
        live AS (
            SELECT c.account_id, c.starts_on, c.ends_on,
                   CAST(ROUND(c.deal_value * 100) AS BIGINT) AS cents
            FROM {Campaign._meta.db_table} c
            JOIN {Account._meta.db_table} a ON a.id = c.account_id
            WHERE c.status <> %s {segment}
        ),
        firsts AS (SELECT account_id, MIN(starts_on) AS first_on FROM live GROUP BY account_id),
        cohort AS (
            SELECT f.account_id, m.idx AS cohort_idx
            FROM firsts f JOIN months m ON f.first_on >= m.m_start AND f.first_on <= m.m_end
        ),
        pieces AS (
            SELECT co.cohort_idx, m.idx AS month_idx, l.account_id,
                   {days("l.ends_on", "l.starts_on")} + 1 AS length,
                   l.cents * ({inside} + 1) AS num
            FROM live l
            JOIN cohort co ON co.account_id = l.account_id
            JOIN months m ON m.idx >= co.cohort_idx
                         AND l.starts_on <= m.m_end AND l.ends_on >= m.m_start
        )
        SELECT 'r', cohort_idx, month_idx, length, SUM(num)
        FROM pieces GROUP BY cohort_idx, month_idx, length
        UNION ALL
        SELECT 'l', cohort_idx, month_idx, 0, COUNT(DISTINCT account_id)
        FROM pieces WHERE num > 0 GROUP BY cohort_idx, month_idx
        UNION ALL
        SELECT 'a', cohort_idx, 0, 0, COUNT(*) FROM cohort GROUP BY cohort_idx
    """  # noqa: S608


def revenue_cohorts(start: dt.date, end: dt.date, segment: Persona | None) -> dict:
    """Accounts by the month of their first live campaign's start, for the months of the
    period; each followed month by month to the period's last month (one query)."""
    months = months_between(start, end)
    params: list = []
    for idx, (first, last) in enumerate(months):
        params += [idx, first, last]
    params.append(CANCELED.value)
    if segment is not None:
        params.append(segment.id)
    sql = _cohort_sql(connection.vendor, len(months), segment is not None)
    revenue: dict[tuple[int, int], Fraction] = defaultdict(Fraction)
    active: dict[tuple[int, int], int] = {}
    sizes: dict[int, int] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for kind, cohort, month, length, value in cursor.fetchall():
            if kind == "r":
                revenue[cohort, month] += Fraction(int(value), int(length))
            elif kind == "l":
                active[cohort, month] = int(value)
            else:
                sizes[cohort] = int(value)
    cohorts = []
    for cohort in sorted(sizes):
        base = revenue.get((cohort, cohort), Fraction(0))
        followed = range(cohort, len(months))
        cohorts.append(
            {
                "cohort": months[cohort][0].strftime("%Y-%m"),
                "accounts": sizes[cohort],
                "revenue": [money(revenue.get((cohort, m), 0)) for m in followed],
                "revenue_retention": [ratio(revenue.get((cohort, m), 0), base) for m in followed],
                "logo_retention": [
                    ratio(active.get((cohort, m), 0), sizes[cohort]) for m in followed
                ],
            }
        )
    return {"cohorts": cohorts}


COMPUTE = {
    "renewal_rate": renewal_rate,
    "revenue_growth": revenue_growth,
    "campaign_efficiency": campaign_efficiency,
    "persona_impact": persona_impact,
    "revenue_cohorts": revenue_cohorts,
}
