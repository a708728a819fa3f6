"""Deterministic, realistic demo data for the shared domain, written set-based.

`seed_demo(ctx)` is found by the `seed_demo` command like every app's `demo.py`; it runs
first and fills `ctx.accounts` for the apps that follow. Same seed and same `as_of` date give
the same rows. Seeded rows are bulk-written, so they carry no history rows.
"""

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from opsplatform.models import Account, Campaign, CampaignMetric, Persona, Sponsor, UsageEvent

DEMO_PASSWORD = "opsplatform-demo"
DEMO_STAFF = [
    # username, groups, superuser
    ("admin", [], True),
    ("agent1", ["support_l1"], False),
    ("agent2", ["support_l2"], False),
    ("agent3", ["support_l3"], False),
    ("agent4", ["support_l4"], False),
    ("ops", ["operations"], False),
    ("compliance", ["compliance"], False),
]
DEMO_CUSTOMERS = {
    "solo_podcaster": ("solo@demo.test", "The Solo Hour"),
    "podcast_network": ("network@demo.test", "Wavelength Network"),
    "agency": ("agency@demo.test", "Loudmouth Media Agency"),
    "brand": ("brand@demo.test", "Brightside Coffee"),
}
PERSONA_WEIGHTS = {"solo_podcaster": 55, "podcast_network": 15, "agency": 15, "brand": 15}
# Daily impressions scale by persona (networks sell inventory across many shows).
PERSONA_REACH = {
    "solo_podcaster": 1_800,
    "podcast_network": 25_000,
    "agency": 9_000,
    "brand": 6_000,
}
HEALTH_WEIGHTS = {"healthy": 60, "churning": 25, "new": 15}
RENEWAL_ODDS = {"healthy": 0.72, "churning": 0.25, "new": 0.55}
COUNTRIES = ["US"] * 10 + ["GB"] * 3 + ["CA"] * 2 + ["DE", "FR", "AU", "NL", "SE", "BR", "IN"]
PLANS = ["free"] * 2 + ["starter"] * 5 + ["growth"] * 3 + ["enterprise"]
SPONSOR_NAMES = [
    "Acme Mattress",
    "Northwind VPN",
    "Bluebird Meals",
    "Keystone Bank",
    "Summit Shoes",
    "Orbit Audio",
    "Fernleaf Tea",
    "Copperline Razors",
    "Harbor Insurance",
    "Pixel Hosting",
    "Tidewater Coffee",
    "Lumen Learning",
    "Atlas Fitness",
    "Cobalt CRM",
    "Juniper Wine Club",
]
EVENT_TYPES = [
    "login",
    "campaign.viewed",
    "report.exported",
    "metrics.uploaded",
    "sponsor.contacted",
    "invoice.viewed",
]
ADJECTIVES = [
    "Daily",
    "Curious",
    "Late Night",
    "Weekend",
    "Deep Dive",
    "Honest",
    "Modern",
    "Quiet",
    "Bold",
    "Backyard",
]
TOPICS = [
    "Finance",
    "History",
    "Comedy",
    "Tech",
    "Cooking",
    "Running",
    "Parenting",
    "Gardening",
    "Film",
    "Science",
]


@dataclass
class SeededAccount:
    id: int
    persona: str
    health: str
    created_at: dt.datetime
    user_id: int
    email: str
    plan: str = "starter"  # as seeded; billing may then move a canceled account to free


@dataclass
class DemoContext:
    seed: int
    accounts_wanted: int
    as_of: dt.date
    write: callable
    accounts: list[SeededAccount] = field(default_factory=list)
    staff: dict = field(default_factory=dict)  # username -> user
    customers: dict = field(default_factory=dict)  # persona slug -> SeededAccount
    counts: dict = field(default_factory=dict)
    clock: dt.datetime | None = None  # the wall clock, read once per seed run

    def rng(self, name: str) -> random.Random:
        """An independent, reproducible random stream per app/purpose."""
        return random.Random(f"{self.seed}:{name}")

    @property
    def now(self) -> dt.datetime:
        """Noon UTC of `as_of`, or the current minute when that noon is still ahead (a seed
        run on the morning of `as_of`): demo rows are never dated in the future."""
        noon = dt.datetime.combine(self.as_of, dt.time(12, 0), tzinfo=dt.UTC)
        if self.clock is None:
            self.clock = timezone.now().replace(second=0, microsecond=0)
        return min(noon, self.clock)


def seasonality(day: dt.date) -> float:
    """Podcast ad demand: strong Q4, a summer dip, a January slump."""
    month_factor = {
        1: 0.82,
        2: 0.9,
        3: 1.0,
        4: 1.0,
        5: 0.97,
        6: 0.88,
        7: 0.84,
        8: 0.86,
        9: 1.02,
        10: 1.1,
        11: 1.22,
        12: 1.18,
    }[day.month]
    weekday_factor = (1.08, 1.1, 1.06, 1.02, 0.95, 0.86, 0.9)[day.weekday()]
    return month_factor * weekday_factor


def seed_demo(ctx: DemoContext) -> None:
    with transaction.atomic():
        _seed_staff(ctx)
        _seed_accounts(ctx)
        _seed_campaigns(ctx)
        _seed_usage_events(ctx)


def _seed_staff(ctx: DemoContext) -> None:
    User = get_user_model()
    password = make_password(DEMO_PASSWORD)
    for username, groups, superuser in DEMO_STAFF:
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={
                "email": f"{username}@opsplatform.local",
                "is_staff": True,
                "is_superuser": superuser,
                "password": password,
            },
        )
        if groups:
            user.groups.add(*Group.objects.filter(name__in=groups))
        ctx.staff[username] = user


def _seed_accounts(ctx: DemoContext) -> None:
    rng = ctx.rng("accounts")
    User = get_user_model()
    personas = {p.slug: p for p in Persona.objects.all()}
    login_hash = make_password(DEMO_PASSWORD)
    start = Account.objects.count()
    specs = []
    demo_slugs = list(DEMO_CUSTOMERS)
    for i in range(ctx.accounts_wanted):
        n = start + i
        if (
            n < len(demo_slugs)
            and not User.objects.filter(username=DEMO_CUSTOMERS[demo_slugs[n]][0]).exists()
        ):
            persona = demo_slugs[n]
            email, name = DEMO_CUSTOMERS[persona]
            health = "healthy"
            password = login_hash
        else:
            persona = rng.choices(list(PERSONA_WEIGHTS), weights=PERSONA_WEIGHTS.values())[0]
            health = rng.choices(list(HEALTH_WEIGHTS), weights=HEALTH_WEIGHTS.values())[0]
            name = f"{rng.choice(ADJECTIVES)} {rng.choice(TOPICS)} {n + 1}"
            email = f"customer{n + 1}@example.test"
            password = "!"  # unusable: bulk demo accounts cannot sign in
        age_days = rng.randint(10, 40) if health == "new" else rng.randint(200, 900)
        created = ctx.now - dt.timedelta(days=age_days, minutes=rng.randint(0, 1439))
        specs.append(
            (
                persona,
                health,
                name,
                email,
                password,
                created,
                rng.choice(COUNTRIES),
                rng.choice(PLANS),
            )
        )
    users = User.objects.bulk_create(
        [User(username=s[3], email=s[3], password=s[4], date_joined=s[5]) for s in specs],
        batch_size=2000,
    )
    accounts = Account.objects.bulk_create(
        [
            Account(
                user=u, persona=personas[s[0]], name=s[2], created_at=s[5], country=s[6], plan=s[7]
            )
            for u, s in zip(users, specs, strict=True)
        ],
        batch_size=2000,
    )
    for account, user, s in zip(accounts, users, specs, strict=True):
        seeded = SeededAccount(
            id=account.id,
            persona=s[0],
            health=s[1],
            created_at=s[5],
            user_id=user.id,
            email=s[3],
            plan=s[7],
        )
        ctx.accounts.append(seeded)
        if s[3] in {v[0] for v in DEMO_CUSTOMERS.values()}:
            ctx.customers[s[0]] = seeded
    ctx.counts["accounts"] = len(accounts)


def _seed_campaigns(ctx: DemoContext) -> None:
    """Sponsors, renewal chains of campaigns, and one metric row per campaign day."""
    rng = ctx.rng("campaigns")
    sponsors = []
    chains = []  # per sponsor: list of (name, starts, ends, value)
    for acc in ctx.accounts:
        n_sponsors = rng.randint(1, 4) if acc.persona != "brand" else rng.randint(1, 2)
        names = rng.sample(SPONSOR_NAMES, n_sponsors)
        if acc.persona == "brand":
            names = [f"{n} Media Buy" for n in names]
        for sponsor_name in names:
            sponsors.append(
                Sponsor(account_id=acc.id, name=sponsor_name, created_at=acc.created_at)
            )
            chain = []
            start = acc.created_at.date() + dt.timedelta(days=rng.randint(0, 60))
            value = Decimal(
                rng.randrange(500, 6000 if acc.persona == "solo_podcaster" else 40000, 50)
            )
            stop_after = (
                ctx.as_of - dt.timedelta(days=rng.randint(90, 240))
                if acc.health == "churning"
                else ctx.as_of
            )
            while start <= stop_after:
                length = rng.choice([28, 30, 42, 56, 60, 84, 90])
                ends = start + dt.timedelta(days=length - 1)
                chain.append((start, ends, value))
                # The demo logins' accounts keep renewing so their pages show live campaigns.
                odds = 0.97 if acc in ctx.customers.values() else RENEWAL_ODDS[acc.health]
                if rng.random() > odds:
                    break
                start = ends + dt.timedelta(days=rng.randint(1, 14))
                value = (value * Decimal(str(round(rng.uniform(0.95, 1.18), 3)))).quantize(
                    Decimal("0.01")
                )
            chains.append((acc, chain))
    sponsors = Sponsor.objects.bulk_create(sponsors, batch_size=2000)
    ctx.counts["sponsors"] = len(sponsors)

    # Campaigns generation by generation, so each renewal can point at its predecessor.
    previous: dict[int, int] = {}
    generation = 0
    total_campaigns = 0
    campaign_rows = []  # (campaign_id, account persona, starts, ends, value, health)
    while True:
        batch, keys = [], []
        for idx, (acc, chain) in enumerate(chains):
            if generation >= len(chain):
                continue
            starts, ends, value = chain[generation]
            status = Campaign.Status.ACTIVE
            if ctx.as_of < starts:
                status = Campaign.Status.SCHEDULED
            elif ctx.as_of > ends:
                status = Campaign.Status.COMPLETED
            label = sponsors[idx].name
            batch.append(
                Campaign(
                    account_id=acc.id,
                    sponsor=sponsors[idx],
                    name=f"{label} — {starts:%b %Y}",
                    starts_on=starts,
                    ends_on=ends,
                    deal_value=value,
                    status=status,
                    renewed_from_id=previous.get(idx),
                    created_at=dt.datetime.combine(
                        starts - dt.timedelta(days=7), dt.time(9), tzinfo=dt.UTC
                    ),
                )
            )
            keys.append(idx)
        if not batch:
            break
        created = Campaign.objects.bulk_create(batch, batch_size=2000)
        for idx, campaign in zip(keys, created, strict=True):
            previous[idx] = campaign.id
            acc = chains[idx][0]
            campaign_rows.append(
                (campaign.id, acc, campaign.starts_on, campaign.ends_on, campaign.deal_value)
            )
        total_campaigns += len(created)
        generation += 1
    ctx.counts["campaigns"] = total_campaigns
    ctx.counts["metric_rows"] = _write_metrics(ctx, campaign_rows)


def _metric_rows(ctx: DemoContext, campaign_rows):
    rng = ctx.rng("metrics")
    for campaign_id, acc, starts, ends, value in sorted(campaign_rows, key=lambda r: r[0]):
        last = min(ends, ctx.as_of)
        days = (ends - starts).days + 1
        daily_spend = (value / days).quantize(Decimal("0.01"))
        reach = PERSONA_REACH[acc.persona] * rng.uniform(0.5, 1.6)
        ctr = rng.uniform(0.004, 0.02)
        cvr = rng.uniform(0.02, 0.08)
        order_value = rng.uniform(25, 90)
        fade = 0.985 if acc.health == "churning" else 1.0
        day = starts
        i = 0
        while day <= last:
            impressions = int(reach * seasonality(day) * (fade**i) * rng.uniform(0.8, 1.2))
            clicks = min(impressions, int(impressions * ctr * rng.uniform(0.7, 1.3)))
            conversions = int(clicks * cvr * rng.uniform(0.6, 1.4))
            revenue = Decimal(f"{conversions * order_value:.2f}")
            yield (campaign_id, day, impressions, clicks, conversions, revenue, daily_spend)
            day += dt.timedelta(days=1)
            i += 1


def write_rows(model, columns: list[str], rows) -> int:
    """Stream tuples into a table: COPY on PostgreSQL, bulk_create batches elsewhere. Never
    holds more than one batch in memory. Returns the number of rows written."""
    count = 0
    if connection.vendor == "postgresql":
        names = ", ".join(model._meta.get_field(c).column for c in columns)
        json_columns = {
            i
            for i, c in enumerate(columns)
            if model._meta.get_field(c).get_internal_type() == "JSONField"
        }
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {model._meta.db_table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                if json_columns:
                    row = tuple(
                        json.dumps(v) if i in json_columns else v for i, v in enumerate(row)
                    )
                copy.write_row(row)
                count += 1
        return count
    batch = []
    for row in rows:
        batch.append(model(**dict(zip(columns, row, strict=True))))
        if len(batch) >= 5000:
            model.objects.bulk_create(batch)
            count += len(batch)
            batch = []
    model.objects.bulk_create(batch)
    return count + len(batch)


METRIC_COLUMNS = ["campaign_id", "date", "impressions", "clicks", "conversions", "revenue", "spend"]


def _write_metrics(ctx: DemoContext, campaign_rows) -> int:
    return write_rows(CampaignMetric, METRIC_COLUMNS, _metric_rows(ctx, campaign_rows))


EVENT_COLUMNS = [
    "account_id",
    "type",
    "occurred_at",
    "properties",
    "idempotency_key",
    "received_at",
]


def _event_rows(ctx: DemoContext):
    rng = ctx.rng("events")
    for acc in ctx.accounts:
        per_week = {"healthy": 12, "new": 8, "churning": 5}[acc.health]
        for week in range(13):
            weight = 0.75 ** (12 - week) if acc.health == "churning" else 1.0
            for n in range(int(per_week * weight * rng.uniform(0.6, 1.4))):
                occurred = ctx.now - dt.timedelta(
                    weeks=12 - week, days=rng.randint(0, 6), minutes=rng.randint(0, 1439)
                )
                if occurred < acc.created_at:
                    continue
                yield (
                    acc.id,
                    rng.choice(EVENT_TYPES),
                    occurred,
                    {"source": "seed"},
                    f"seed-{week}-{n}",
                    occurred,
                )


def _seed_usage_events(ctx: DemoContext) -> None:
    """Product usage over the last 90 days: steady for healthy accounts, fading for churning."""
    ctx.counts["usage_events"] = write_rows(UsageEvent, EVENT_COLUMNS, _event_rows(ctx))
