"""Writes to the shared domain: accounts, tokens, campaigns, metrics, usage events, groups."""

import datetime as dt
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from opsplatform import selectors, telemetry, timezones, validation
from opsplatform.errors import Conflict, Forbidden, InvalidInput, NotFound
from opsplatform.models import (
    Account,
    ApiToken,
    Campaign,
    CampaignMetric,
    Heartbeat,
    Persona,
    Sponsor,
    UsageEvent,
    UserSession,
)
from opsplatform.registry import app_modules, platform_apps
from opsplatform.tenancy import account_of, is_staff, require_perm

STAFF_GROUPS = ("support_l1", "support_l2", "support_l3", "support_l4", "operations", "compliance")


# --- schedules --------------------------------------------------------------------------------


@transaction.atomic
def sync_schedules() -> dict[str, int]:
    """Upsert every app's django-q2 schedules (`<app>/schedules.py: SCHEDULES`) by name.
    Idempotent: a second run changes nothing. Returns created/updated/unchanged counts."""
    from django_q.models import Schedule

    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for module in app_modules("schedules"):
        for spec in getattr(module, "SCHEDULES", []):
            wanted = {
                "func": spec.func,
                "schedule_type": spec.schedule_type,
                "minutes": spec.minutes,
                "cron": spec.cron,
                # django-q2 keeps kwargs as the dict's literal text: compare that text.
                "kwargs": repr(spec.kwargs) if spec.kwargs else None,
                "repeats": -1,
            }
            schedule = Schedule.objects.select_for_update().filter(name=spec.name).first()
            if schedule is None:
                Schedule.objects.create(name=spec.name, **wanted)
                counts["created"] += 1
                continue
            changed = [key for key, value in wanted.items() if getattr(schedule, key) != value]
            for key in changed:
                setattr(schedule, key, wanted[key])
            if changed:
                schedule.save()
            counts["updated" if changed else "unchanged"] += 1
    return counts


# --- groups -----------------------------------------------------------------------------------


def ensure_groups() -> dict[str, int]:
    """Create the staff groups and give each the permissions every app declares for it.

    Idempotent: running it again changes nothing. Returns permission counts per group.
    """
    wanted: dict[str, set[str]] = {name: set() for name in STAFF_GROUPS}
    for config in platform_apps():
        for group, perms in config.group_permissions.items():
            wanted.setdefault(group, set()).update(perms)
    result = {}
    for name, perms in wanted.items():
        group, _ = Group.objects.get_or_create(name=name)
        pairs = [p.split(".", 1) for p in perms]
        found = Permission.objects.filter(
            content_type__app_label__in={a for a, _ in pairs}, codename__in={c for _, c in pairs}
        ).select_related("content_type")
        chosen = [p for p in found if [p.content_type.app_label, p.codename] in pairs]
        group.permissions.add(*chosen)
        result[name] = len(chosen)
    return result


PERSONAS = [
    (Persona.SOLO_PODCASTER, "Solo podcaster", "An independent show selling its own ad slots."),
    (
        Persona.PODCAST_NETWORK,
        "Podcast network",
        "Many shows under one roof, selling inventory across them.",
    ),
    (Persona.AGENCY, "Agency", "Buys and manages sponsorships on behalf of brands."),
    (Persona.BRAND, "Brand", "Sponsors podcasts directly to reach listeners."),
]


def ensure_personas() -> None:
    """The four personas are reference data: present after every migrate (and test flush)."""
    for slug, name, description in PERSONAS:
        Persona.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description}
        )


def post_migrate_ensure_groups(sender, **kwargs):
    """Reference data after migrate (and after a test flush): every app's
    `PlatformAppConfig.ensure_reference_data()` (personas, SLA policies, plans), then staff
    groups.

    post_migrate is sent once per app; this waits for the last one so every app's tables and
    permission rows exist. Each step is idempotent and keeps edits made in admin.
    """
    last = [c for c in django_apps.get_app_configs() if c.models_module is not None][-1]
    if sender.name != last.name:
        return
    for config in platform_apps():
        config.ensure_reference_data()
    ensure_groups()


# --- accounts and tokens ----------------------------------------------------------------------


def require_customer_owner(account: Account) -> None:
    """Customer-side actions (billing, exports, deletion) act on customer logins only: an
    account whose owner is a staff user or a superuser is refused, so such an action can
    never reach (or erase) a staff login."""
    user = account.user
    if user.is_staff or user.is_superuser:
        raise Conflict(
            "This account belongs to a staff login; customer actions cannot act on it.",
            code="staff_account",
        )


@transaction.atomic
def create_account(
    *,
    email: str,
    password: str | None,
    persona_slug: str,
    name: str = "",
    plan: str = Account.Plan.STARTER,
    country: str = "US",
    actor=None,
) -> Account:
    """A customer: a user that logs in with its email, and the account it owns.

    In the same transaction every app's `accounts.on_account_created(account, actor=...)`
    runs (billing starts the account's one subscription there), so an account never exists
    without what the apps attach to it.
    """
    User = get_user_model()
    email = email.strip().lower()
    if (
        User.objects.filter(username__iexact=email).exists()
        or User.objects.filter(email__iexact=email).exists()
    ):
        raise Conflict("A user with this email already exists.", code="email_taken")
    try:
        persona = Persona.objects.get(slug=persona_slug)
    except Persona.DoesNotExist:
        slugs = ", ".join(Persona.objects.values_list("slug", flat=True))
        raise InvalidInput(
            f"Unknown persona {persona_slug!r}; choose one of: {slugs}.", field="persona"
        ) from None
    if plan not in Account.Plan.values:
        raise InvalidInput(
            f"Unknown plan {plan!r}; choose one of: {', '.join(Account.Plan.values)}.",
            field="plan",
        )
    user = User(username=email, email=email)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean()
    user.save()
    account = Account(
        user=user,
        persona=persona,
        name=name or email.split("@")[0],
        plan=plan,
        country=country.upper(),
    )
    account._history_user = actor
    account.full_clean()
    account.save()
    for module in app_modules("accounts"):
        hook = getattr(module, "on_account_created", None)
        if hook is not None:
            hook(account, actor=actor)
    return account


ACCOUNT_EDITABLE_FIELDS = ("name", "persona", "country")


@transaction.atomic
def update_account(*, account_id: int, actor, **changes) -> Account:
    """Staff edits of an account's details. Only `name`, `persona` and `country` can change
    here: the owner never changes, the plan follows billing (`set_account_plan`) and the
    creation date is a fact. The actor needs `opsplatform.change_account`."""
    if not (
        actor is not None
        and actor.is_active
        and actor.is_staff
        and actor.has_perm("opsplatform.change_account")
    ):
        raise Forbidden("You do not have permission to change accounts.", code="permission_denied")
    unknown = sorted(set(changes) - set(ACCOUNT_EDITABLE_FIELDS))
    if unknown:
        raise Forbidden(
            f"These account fields cannot be changed here: {', '.join(unknown)}.",
            code="read_only_field",
        )
    account = Account.objects.select_for_update().filter(pk=account_id).first()
    if account is None:
        raise NotFound("Account not found.")
    changed = [f for f, v in changes.items() if getattr(account, f) != v]
    if not changed:
        return account
    for field, value in changes.items():
        setattr(account, field, value)
    account._history_user = actor
    account.full_clean()
    account.save(update_fields=changed)
    return account


def set_account_plan(*, account_id: int, plan_code: str, actor=None, reason: str = "") -> Account:
    """The one writer of `Account.plan` (what every app reads), called by billing inside its
    transaction. The row is locked and read again here, so the comparison is never made
    against a copy loaded before another transaction changed it. A history row records who
    changed it and why."""
    if plan_code not in Account.Plan.values:
        raise InvalidInput(f"Unknown plan {plan_code!r}.", field="plan")
    with transaction.atomic():
        account = Account.objects.select_for_update().filter(pk=account_id).first()
        if account is None:
            raise NotFound("Account not found.")
        if account.plan != plan_code:
            account.plan = plan_code
            account._history_user = actor
            if reason:
                account._change_reason = reason
            account.save(update_fields=["plan"])
    return account


def set_account_plans(*, plans: dict[int, str], reason: str, actor=None) -> int:
    """`set_account_plan` for many accounts at once (the billing cycle, the demo seed): locks
    the rows, writes the ones that differ in one statement and their history rows in another.
    Returns how many accounts changed."""
    unknown = set(plans.values()) - set(Account.Plan.values)
    if unknown:
        raise InvalidInput(f"Unknown plan(s): {', '.join(sorted(unknown))}.", field="plan")
    if not plans:
        return 0
    with transaction.atomic():
        accounts = list(
            Account.objects.select_for_update().filter(pk__in=list(plans)).order_by("pk")
        )
        changed = [a for a in accounts if a.plan != plans[a.pk]]
        for account in changed:
            account.plan = plans[account.pk]
        if changed:
            Account.objects.bulk_update(changed, ["plan"], batch_size=1000)
            Account.history.bulk_history_create(
                changed, update=True, default_user=actor, default_change_reason=reason
            )
    return len(changed)


@transaction.atomic
def issue_api_token(*, user, label: str, actor=None) -> tuple[ApiToken, str]:
    """Create a token and return it with its secret, which is never stored nor shown again."""
    raw = ApiToken.generate()
    token = ApiToken(
        user=user,
        label=label.strip() or "API token",
        token_prefix=raw[: len(ApiToken.PREFIX) + 6],
        token_hash=ApiToken.hash(raw),
    )
    token._history_user = actor
    token.full_clean()
    token.save()
    return token, raw


@transaction.atomic
def revoke_api_token(*, token: ApiToken, actor=None) -> ApiToken:
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token._history_user = actor
        token.save(update_fields=["revoked_at"])
    return token


def touch_api_token(token: ApiToken) -> None:
    """Record use at most once a minute, without a history row (not a person's change)."""
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


# --- usage events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EventInput:
    account_id: int | None  # None: the caller's own account (customers)
    type: str
    occurred_at: dt.datetime
    idempotency_key: str
    properties: dict


def push_usage_events(*, user, events: Sequence[EventInput]) -> tuple[int, int]:
    """Events sent by a caller: a customer's go to their own account and may not name
    another (`account_id` is for staff); staff name the account of every event and need
    `opsplatform.add_usageevent`. All are checked before any is stored."""
    staff = is_staff(user)
    own = None if staff else account_of(user)
    resolved = []
    for i, event in enumerate(events):
        if staff:
            if event.account_id is None:
                raise InvalidInput(
                    "Staff must give account_id for every event.", field=f"events.{i}.account_id"
                )
            resolved.append(event)
            continue
        if event.account_id is not None:
            raise InvalidInput(
                "account_id may only be given by staff tokens.", field=f"events.{i}.account_id"
            )
        if own is None:
            raise Forbidden("This action needs a customer account.", code="no_account")
        resolved.append(replace(event, account_id=own.id))
    if staff:
        require_perm(user, "opsplatform.add_usageevent")
    return ingest_events(events=resolved)


def ingest_events(*, events: Sequence[EventInput]) -> tuple[int, int]:
    """Store a batch of usage events; keys already stored (or repeated) count as duplicates.

    The accounts' rows (and their owners', as a deletion and an export lock them) are locked
    first, so two concurrent batches with the same keys cannot both count them as accepted,
    and a batch arriving while the account is being deleted waits for the deletion and is
    then refused (its owner's login is closed) instead of being stored after the erasure.
    Returns (accepted, duplicates).
    """
    if not events:
        return 0, 0
    account_ids = sorted({e.account_id for e in events})
    with transaction.atomic():
        locked = list(
            Account.objects.select_for_update()
            .filter(id__in=account_ids, user__is_active=True)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if len(locked) != len(account_ids):
            raise NotFound("Account not found.")
        now = timezone.now()
        if connection.vendor == "postgresql":
            accepted = _insert_events_pg(events, now)
        else:
            accepted = _insert_events_orm(events, account_ids, now)
    telemetry.EVENTS_INGESTED.labels(result="accepted").inc(accepted)
    telemetry.EVENTS_INGESTED.labels(result="duplicate").inc(len(events) - accepted)
    return accepted, len(events) - accepted


def _insert_events_orm(events: Sequence[EventInput], account_ids, now: dt.datetime) -> int:
    """The stored keys are read, the new events created in bulk; returns how many."""
    existing = set(
        UsageEvent.objects.filter(
            account_id__in=account_ids,
            idempotency_key__in={e.idempotency_key for e in events},
        ).values_list("account_id", "idempotency_key")
    )
    fresh: list[UsageEvent] = []
    for e in events:
        key = (e.account_id, e.idempotency_key)
        if key in existing:
            continue
        existing.add(key)
        fresh.append(
            UsageEvent(
                account_id=e.account_id,
                type=e.type,
                occurred_at=e.occurred_at,
                properties=e.properties,
                idempotency_key=e.idempotency_key,
                received_at=now,
            )
        )
    UsageEvent.objects.bulk_create(fresh, batch_size=500)
    return len(fresh)


@functools.cache
def _insert_events_sql() -> str:
    """The statement of `_insert_events_pg`, built once from the model's columns."""
    quote = connection.ops.quote_name
    column = {f.name: quote(f.column) for f in UsageEvent._meta.concrete_fields}
    return f"""
        INSERT INTO {quote(UsageEvent._meta.db_table)} ({column["account"]}, {column["type"]},
            {column["occurred_at"]}, {column["properties"]}, {column["idempotency_key"]},
            {column["received_at"]})
        SELECT a, t, o, p::jsonb, k, %s
        FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::text[])
            AS e(a, t, o, p, k)
        ON CONFLICT ({column["account"]}, {column["idempotency_key"]}) DO NOTHING"""  # noqa: S608 (names from the model; values are parameters)


def _insert_events_pg(events: Sequence[EventInput], now: dt.datetime) -> int:
    """PostgreSQL: the batch in one INSERT … SELECT FROM unnest(…), keys already stored (or
    repeated in the batch) skipped by the unique constraint; returns how many were stored.
    Replaces a read of the existing keys and Django's bulk_create, whose per-field
    preparation of 50 rows cost half of a batch request's CPU."""
    sql = _insert_events_sql()
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                now,
                [e.account_id for e in events],
                [e.type for e in events],
                [e.occurred_at for e in events],
                [json.dumps(e.properties) for e in events],
                [e.idempotency_key for e in events],
            ],
        )
        return cursor.rowcount


# --- campaigns --------------------------------------------------------------------------------


def campaign_status_for(starts_on: dt.date, ends_on: dt.date, today: dt.date) -> str:
    if today < starts_on:
        return Campaign.Status.SCHEDULED
    if today > ends_on:
        return Campaign.Status.COMPLETED
    return Campaign.Status.ACTIVE


@transaction.atomic
def create_campaign(
    *,
    account: Account,
    name: str,
    sponsor_name: str,
    starts_on: dt.date,
    ends_on: dt.date,
    deal_value: Decimal,
    renewed_from_id: int | None = None,
    actor=None,
) -> Campaign:
    """A campaign of `account`; the sponsor is found by name or created."""
    if ends_on < starts_on:
        raise InvalidInput("The end date must be on or after the start date.", field="ends_on")
    renewed_from = None
    if renewed_from_id is not None:
        renewed_from = (
            Campaign.objects.select_for_update().filter(account=account, id=renewed_from_id).first()
        )
        if renewed_from is None:
            raise InvalidInput(
                "renewed_from is not a campaign of this account.", field="renewed_from"
            )
        if Campaign.objects.filter(renewed_from=renewed_from).exists():
            raise Conflict("That campaign has already been renewed.", code="already_renewed")
        if starts_on < renewed_from.starts_on:
            raise InvalidInput(
                "A renewal cannot start before the campaign it renews.", field="starts_on"
            )
    sponsor, _ = Sponsor.objects.get_or_create(account=account, name=sponsor_name.strip())
    campaign = Campaign(
        account=account,
        sponsor=sponsor,
        name=name.strip(),
        starts_on=starts_on,
        ends_on=ends_on,
        deal_value=deal_value,
        renewed_from=renewed_from,
        status=campaign_status_for(starts_on, ends_on, timezone.localdate()),
    )
    campaign._history_user = actor
    campaign.full_clean()
    try:
        campaign.save()
    except IntegrityError:
        raise Conflict("That campaign has already been renewed.", code="already_renewed") from None
    return campaign


@dataclass(frozen=True)
class MetricInput:
    date: dt.date
    impressions: int
    clicks: int
    conversions: int
    revenue: Decimal
    spend: Decimal


def put_campaign_metrics(*, user, campaign_id: int, metrics: Iterable[MetricInput]) -> int:
    """A caller's metric upsert: the campaign must be visible to them (another tenant's is
    not found) and locked while its days are replaced; staff need
    `opsplatform.change_campaignmetric`."""
    with transaction.atomic():
        campaign = selectors.campaign_get(user=user, campaign_id=campaign_id, for_update=True)
        if is_staff(user):
            require_perm(user, "opsplatform.change_campaignmetric")
        return upsert_campaign_metrics(campaign=campaign, metrics=metrics)


def upsert_campaign_metrics(*, campaign: Campaign, metrics: Iterable[MetricInput]) -> int:
    """Insert or replace a campaign's daily metrics by date, in one statement per batch."""
    rows = list(metrics)
    errors = []
    seen = set()
    for i, m in enumerate(rows):
        if not campaign.starts_on <= m.date <= campaign.ends_on:
            errors.append(
                (
                    i,
                    "date",
                    f"{m.date} is outside the campaign "
                    f"({campaign.starts_on} to {campaign.ends_on}).",
                )
            )
        if m.date in seen:
            errors.append((i, "date", f"{m.date} appears more than once."))
        seen.add(m.date)
        if m.clicks > m.impressions:
            errors.append((i, "clicks", "clicks cannot exceed impressions."))
    if errors:
        raise MetricsInvalid(errors)
    objs = [
        CampaignMetric(
            campaign=campaign,
            date=m.date,
            impressions=m.impressions,
            clicks=m.clicks,
            conversions=m.conversions,
            revenue=m.revenue,
            spend=m.spend,
        )
        for m in rows
    ]
    with transaction.atomic():
        CampaignMetric.objects.bulk_create(
            objs,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["campaign", "date"],
            update_fields=["impressions", "clicks", "conversions", "revenue", "spend"],
        )
    return len(objs)


class MetricsInvalid(InvalidInput):
    loc_prefix = ("metrics",)

    def __init__(self, errors: list[tuple[int, str, str]]):
        super().__init__(f"{len(errors)} metric row(s) are invalid.")
        self.errors = errors


# --- liveness ---------------------------------------------------------------------------------


def record_heartbeat(*, name: str = "worker") -> Heartbeat:
    beat, _ = Heartbeat.objects.update_or_create(name=name, defaults={"beat_at": timezone.now()})
    return beat


# --- the customer's own sign-in details --------------------------------------------------------

EMAIL_CHANGE_SALT = "opsplatform.email-change"
EMAIL_CHANGE_MAX_AGE = dt.timedelta(days=1)


def sign_out_other_sessions(*, user, keep_session_key: str | None) -> int:
    """Delete every session of `user` except the one making the request (after a password
    change the other browsers must sign in again). Returns how many were ended."""
    others = UserSession.objects.filter(user_id=user.pk)
    if keep_session_key:
        others = others.exclude(session_key=keep_session_key)
    deleted, _ = others.delete()
    return deleted


@transaction.atomic
def update_profile(
    *, user, first_name: str, last_name: str, time_zone: str | None = None, actor=None
) -> None:
    """The customer's name as shown on their pages and in emails, and the time zone their
    dates are shown in (an IANA name; None leaves it as it is)."""
    if time_zone is not None:
        set_time_zone(user=user, time_zone=time_zone, actor=actor or user)
    User = get_user_model()
    locked = User.objects.select_for_update().get(pk=user.pk)
    locked.first_name = validation.clean_text(
        first_name, field="first_name", label="First name", max_length=150, required=False
    )
    locked.last_name = validation.clean_text(
        last_name, field="last_name", label="Last name", max_length=150, required=False
    )
    locked.full_clean()
    locked.save(update_fields=["first_name", "last_name"])
    user.first_name, user.last_name = locked.first_name, locked.last_name


@transaction.atomic
def set_time_zone(*, user, time_zone: str, actor) -> None:
    """Store the customer's time zone on their account (one sign-in per account)."""
    if not timezones.is_valid(time_zone):
        raise InvalidInput(timezones.MESSAGE, field="time_zone")
    account = account_of(user)
    if account is None:
        raise InvalidInput("Only a customer account has a time zone.", field="time_zone")
    locked = Account.objects.select_for_update().get(pk=account.pk)
    if locked.time_zone != time_zone:
        locked.time_zone = time_zone
        locked._history_user = actor
        locked.full_clean()
        locked.save(update_fields=["time_zone"])
    account.time_zone = time_zone


def _email_taken(email: str, *, except_user_id: int) -> bool:
    User = get_user_model()
    return (
        User.objects.filter(Q(username__iexact=email) | Q(email__iexact=email))
        .exclude(pk=except_user_id)
        .exists()
    )


def email_change_token(*, user, new_email: str) -> str:
    """A signed token naming the user, the address it changes from and the new address: it
    stops working once the address has changed (so it works once) and after a day."""
    return signing.dumps(
        {"user": user.pk, "from": user.email.lower(), "to": new_email},
        salt=EMAIL_CHANGE_SALT,
        compress=True,
    )


def request_email_change(*, user, new_email: str, password: str) -> str:
    """Check the password and the new address, then mail a confirmation link to the new
    address (the change happens only when that link is followed) and a notice to the current
    one. Returns the token (the link carries it)."""
    if not user.check_password(password or ""):
        raise InvalidInput("The password is not correct.", field="password")
    new_email = (new_email or "").strip().lower()
    try:
        validate_email(new_email)
    except ValidationError:
        raise InvalidInput("Enter a valid email address.", field="email") from None
    if new_email == user.email.lower():
        raise InvalidInput("That is already your email address.", field="email")
    if _email_taken(new_email, except_user_id=user.pk):
        raise Conflict(
            "Another account already uses this email address.", code="email_taken", field="email"
        )
    token = email_change_token(user=user, new_email=new_email)
    link = settings.SITE_URL + reverse("email_change_confirm", args=[token])
    context = {"user": user, "new_email": new_email, "link": link, "site_url": settings.SITE_URL}
    with timezones.for_user(user):
        messages = [
            EmailMessage(
                subject="Confirm your new email address",
                body=render_to_string("account/email/email_change_confirm.txt", context),
                to=[new_email],
            ),
            EmailMessage(
                subject="Your email address is about to change",
                body=render_to_string("account/email/email_change_notice.txt", context),
                to=[user.email],
            ),
        ]
    transaction.on_commit(lambda: [m.send() for m in messages])
    return token


def read_email_change(token: str) -> tuple[object, str]:
    """The user and new address a confirmation token stands for, or InvalidInput when it is
    forged, expired or already used."""
    User = get_user_model()
    invalid = InvalidInput(
        "This confirmation link is invalid or has expired. Ask for a new one from your profile.",
        code="link_invalid",
    )
    try:
        data = signing.loads(
            token, salt=EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_MAX_AGE.total_seconds()
        )
        user = User.objects.get(pk=int(data["user"]), is_active=True)
        new_email = str(data["to"])
    except (signing.BadSignature, User.DoesNotExist, KeyError, TypeError, ValueError):
        raise invalid from None
    if user.email.lower() != data.get("from"):
        raise invalid
    return user, new_email


@transaction.atomic
def confirm_email_change(*, token: str):
    """Make the confirmed address the user's email (and their sign-in name, which is the
    email for customers)."""
    user, new_email = read_email_change(token)
    User = get_user_model()
    locked = User.objects.select_for_update().get(pk=user.pk)
    if locked.email.lower() != user.email.lower():
        raise InvalidInput("This confirmation link was already used.", code="link_invalid")
    if _email_taken(new_email, except_user_id=locked.pk):
        raise Conflict("Another account already uses this email address.", code="email_taken")
    if locked.username.lower() == locked.email.lower():
        locked.username = new_email
    locked.email = new_email
    locked.full_clean()
    locked.save(update_fields=["username", "email"])
    return locked
