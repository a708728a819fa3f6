"""The shared domain's part in privacy requests: the data types a customer can export, and the
erasure of an account's personal data from the core tables (and their history) on deletion.

The export types are declared with `opsplatform.exports` (`ExportType`, `query_export`): one
column list gives each file its header, rows, count and, where the exporter may use
PostgreSQL's COPY, the SELECT whose text columns are already formula-safe.
"""

import datetime as dt
import hashlib
import hmac
import logging
from decimal import Decimal

from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    CharField,
    DecimalField,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat

from opsplatform import timezones
from opsplatform.exports import (
    ExportType,
    csv_text_sql,
    export_types,
    money,
    query_export,
    ratio,
)
from opsplatform.models import (
    Account,
    ApiToken,
    Campaign,
    CampaignMetric,
    Sponsor,
    UsageEvent,
    UserSession,
)
from opsplatform.registry import ErasureResult

logger = logging.getLogger(__name__)


def subject_reference(account_id: int) -> str:
    """A stable pseudonym for an account: links kept records (invoices, certificates) to one
    erased subject without saying who it was (keyed with SECRET_KEY, not reversible)."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"privacy-subject:{account_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"subj_{digest[:20]}"


def day_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start of date_from, start of the day after date_to) in UTC."""
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(date_to, dt.time.min, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return start, end


# --- export types -----------------------------------------------------------------------------


def _campaigns(account, date_from, date_to):
    return Campaign.objects.filter(
        account=account, starts_on__lte=date_to, ends_on__gte=date_from
    ).order_by("starts_on", "id")


def _metrics(account, date_from, date_to):
    return CampaignMetric.objects.filter(
        campaign__account=account, date__gte=date_from, date__lte=date_to
    ).order_by("campaign_id", "date")


def _analytics_csv_chunks(account, date_from, date_to) -> tuple[str, tuple]:
    """The analytics rows as CSV made by PostgreSQL, one chunk per campaign. The line's
    prefix (the campaign's id and CSV-escaped, formula-safe name) is made once per campaign
    in a materialized CTE, not once per row; the numbers are written by the database's own
    output functions (as COPY writes them); rows come in `_metrics`' order (campaign, then
    date), the campaigns sorted before the lateral join so the wide chunks are never sorted."""
    metric, campaign = CampaignMetric._meta.db_table, Campaign._meta.db_table
    line = (
        "c.prefix || m.date::text || ',' || m.impressions::text || ',' || m.clicks::text"
        " || ',' || m.conversions::text || ',' || m.revenue::text || ',' || m.spend::text"
        " || E'\\n'"
    )
    sql = (
        "WITH c AS MATERIALIZED ("  # noqa: S608
        f"SELECT id, id::text || ',' || {csv_text_sql('name')} || ',' AS prefix "
        f"FROM {campaign} WHERE account_id = %s) "
        "SELECT x.n, x.body FROM (SELECT id, prefix FROM c ORDER BY id) c "
        f"CROSS JOIN LATERAL (SELECT count(*) AS n, string_agg({line}, '' ORDER BY m.date) "
        f"AS body FROM {metric} m WHERE m.campaign_id = c.id AND m.date >= %s "
        "AND m.date <= %s) x "
        "ORDER BY c.id"
    )
    return sql, (account.pk, date_from, date_to)


def _report_totals(account, date_from, date_to):
    """One row per campaign overlapping the range with its delivery summed over the range."""
    in_range = Q(metrics__date__gte=date_from, metrics__date__lte=date_to)
    money_field = DecimalField(max_digits=16, decimal_places=2)
    zero = Value(Decimal("0.00"))
    return _campaigns(account, date_from, date_to).annotate(
        total_impressions=Coalesce(Sum("metrics__impressions", filter=in_range), 0),
        total_clicks=Coalesce(Sum("metrics__clicks", filter=in_range), 0),
        total_conversions=Coalesce(Sum("metrics__conversions", filter=in_range), 0),
        total_revenue=Coalesce(
            Sum("metrics__revenue", filter=in_range), zero, output_field=money_field
        ),
        total_spend=Coalesce(
            Sum("metrics__spend", filter=in_range), zero, output_field=money_field
        ),
    )


REPORT_FIELDS = (
    "id",
    "name",
    "sponsor__name",
    "starts_on",
    "ends_on",
    "total_impressions",
    "total_clicks",
    "total_conversions",
    "total_revenue",
    "total_spend",
)


def _report_rows(account, date_from, date_to):
    """The sums from SQL, finished in Decimal: revenue and spend with two places,
    ROI = (revenue - spend) / spend and ROAS = revenue / spend rounded to RATIO_PLACES
    (halves up), empty when there was no spend. One row per campaign, so Python does little."""
    rows = _report_totals(account, date_from, date_to).values_list(*REPORT_FIELDS)
    for *head, revenue, spend in rows.iterator(chunk_size=2000):
        revenue, spend = money(revenue), money(spend)
        yield (*head, revenue, spend, ratio(revenue - spend, spend), ratio(revenue, spend))


def _report_count(account, date_from, date_to) -> int:
    return _campaigns(account, date_from, date_to).count()


def _usage_events(account, date_from, date_to):
    start, end = day_bounds(date_from, date_to)
    return UsageEvent.objects.filter(
        account=account, occurred_at__gte=start, occurred_at__lt=end
    ).order_by("occurred_at", "id")


def _profile(account, date_from, date_to):
    """The profile is not dated: the range does not apply."""
    return Account.objects.filter(id=account.id)


EXPORT_TYPES = export_types(
    query_export(
        "campaigns",
        "Campaigns",
        columns=[
            ("campaign_id", "id"),
            ("name", "name"),
            ("sponsor", "sponsor__name"),
            ("starts_on", "starts_on"),
            ("ends_on", "ends_on"),
            ("deal_value", "deal_value"),
            ("status", "status"),
            ("renewed_from_id", "renewed_from_id"),
            ("created_at", "created_at"),
        ],
        query=_campaigns,
    ),
    query_export(
        "analytics",
        "Analytics (daily metrics)",
        columns=[
            ("campaign_id", "campaign_id"),
            ("campaign", "campaign__name"),
            ("date", "date"),
            ("impressions", "impressions"),
            ("clicks", "clicks"),
            ("conversions", "conversions"),
            ("revenue", "revenue"),
            ("spend", "spend"),
        ],
        query=_metrics,
        formula_safe_copy=["campaign__name"],
        csv_chunks=_analytics_csv_chunks,
    ),
    ExportType(
        name="reports",
        label="Reports (per-campaign summaries with ROI and ROAS)",
        columns=(
            "campaign_id",
            "campaign",
            "sponsor",
            "starts_on",
            "ends_on",
            "impressions",
            "clicks",
            "conversions",
            "revenue",
            "spend",
            "roi",
            "roas",
        ),
        rows=_report_rows,
        count=_report_count,
    ),
    query_export(
        "account",
        "Account profile",
        columns=[
            ("account_id", "id"),
            ("name", "name"),
            ("email", "user__email"),
            ("first_name", "user__first_name"),
            ("last_name", "user__last_name"),
            ("username", "user__username"),
            ("persona", "persona__slug"),
            ("plan", "plan"),
            ("country", "country"),
            ("time_zone", "time_zone"),
            ("created_at", "created_at"),
            ("last_login", "user__last_login"),
        ],
        query=_profile,
    ),
    query_export(
        "usage_events",
        "Usage events",
        columns=[
            ("event_id", "id"),
            ("type", "type"),
            ("occurred_at", "occurred_at"),
            ("properties", "properties"),
            ("idempotency_key", "idempotency_key"),
            ("received_at", "received_at"),
        ],
        query=_usage_events,
    ),
)


# --- erasure ----------------------------------------------------------------------------------

ERASED_CHANGE_REASON = "anonymized: account deleted"


def erase_account(account: Account, *, actor) -> list[ErasureResult]:
    """Erase or irreversibly anonymize the account's personal data in the shared domain:
    the user, their sessions, API tokens and login records, usage events, names of the
    account, its sponsors and campaigns — and the history rows and admin log lines holding
    copies of them. Campaign figures stay, anonymized, for aggregate statistics. Runs inside
    the caller's transaction; running it again finds nothing more to erase."""
    user = account.user
    identities = {v for v in (user.get_username(), user.email) if v}
    # First, while the rows whose ids it needs (tokens, events, sessions) still exist.
    log_lines = _scrub_admin_log_of(account, identities)
    results = [
        ErasureResult("sessions", "erased", _delete_sessions(user.pk)),
        ErasureResult("api tokens", "erased", _delete_api_tokens(user.pk)),
        ErasureResult(
            "usage events", "erased", UsageEvent.objects.filter(account=account).delete()[0]
        ),
        ErasureResult("login records", "erased", _delete_login_records(identities)),
        ErasureResult("admin log entries", "anonymized", log_lines),
        ErasureResult("sponsor names", "anonymized", _anonymize_sponsors(account)),
        *_anonymize_campaigns(account, actor),
        ErasureResult("account profile", "anonymized", _anonymize_account(account, actor)),
        ErasureResult("user login", "anonymized", _anonymize_user(user)),
    ]
    return results


# --- admin log --------------------------------------------------------------------------------

ERASED_LOG_MESSAGE = "Details erased with the account's personal data."
LOG_CHUNK = 500


def scrub_admin_log(model, ids) -> int:
    """Scrub the admin log lines (`django_admin_log`) about these objects of `model`: their
    `object_repr` and `change_message` repeat what the object said (a ticket's subject, a
    user's email). The line stays — who did what to which object, and when — with a neutral
    text, so the audit trail keeps that a change happened. Set-based: one UPDATE per chunk of
    ids, whatever their number; lines already scrubbed are left alone, so it is safe to repeat.
    Every app's `erase_account` calls it for each model it erases or anonymizes, with the ids
    taken before it deletes any row."""
    id_strings = sorted({str(i) for i in ids})  # LogEntry.object_id is text
    if not id_strings:
        return 0
    # Admin logs an object under its own model's content type: include proxies of `model`.
    models = [m for m in apps.get_models() if m._meta.concrete_model is model._meta.concrete_model]
    content_types = ContentType.objects.get_for_models(*models, for_concrete_models=False)
    neutral = f"{model._meta.verbose_name} (erased)"
    total = 0
    for start in range(0, len(id_strings), LOG_CHUNK):
        total += (
            LogEntry.objects.filter(
                content_type__in=list(content_types.values()),
                object_id__in=id_strings[start : start + LOG_CHUNK],
            )
            .exclude(object_repr=neutral, change_message=ERASED_LOG_MESSAGE)
            .update(object_repr=neutral, change_message=ERASED_LOG_MESSAGE)
        )
    return total


def _history_ids(model, **filters) -> set:
    """Ids of the objects `model`'s history has seen, deleted ones included."""
    return set(model.history.filter(**filters).values_list("id", flat=True).distinct())


def _scrub_admin_log_of(account: Account, identities: set[str]) -> int:
    user_id = account.user_id
    campaign_ids = set(Campaign.objects.filter(account=account).values_list("id", flat=True))
    targets = [
        (Account, [account.pk]),
        (get_user_model(), [user_id]),
        (Campaign, campaign_ids | _history_ids(Campaign, account_id=account.pk)),
        (
            Sponsor,
            set(Sponsor.objects.filter(account=account).values_list("id", flat=True))
            | _history_ids(Sponsor, account_id=account.pk),
        ),
        (
            ApiToken,
            set(ApiToken.objects.filter(user_id=user_id).values_list("id", flat=True))
            | _history_ids(ApiToken, user_id=user_id),
        ),
        (UsageEvent, UsageEvent.objects.filter(account=account).values_list("id", flat=True)),
        (
            UserSession,
            UserSession.objects.filter(user_id=user_id).values_list("session_key", flat=True),
        ),
    ]
    if identities and apps.is_installed("axes"):
        from axes.models import AccessAttempt, AccessFailureLog, AccessLog

        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            targets.append(
                (model, model.objects.filter(username__in=identities).values_list("id", flat=True))
            )
    return sum(scrub_admin_log(model, ids) for model, ids in targets)


def _delete_sessions(user_id: int) -> int:
    """The user's server-side sessions, found by the indexed user id of UserSession."""
    return UserSession.objects.filter(user_id=user_id).delete()[0]


def _delete_api_tokens(user_id: int) -> int:
    count = ApiToken.objects.filter(user_id=user_id).delete()[0]
    ApiToken.history.filter(user_id=user_id).delete()
    return count


def _delete_login_records(identities: set[str]) -> int:
    if not identities or not apps.is_installed("axes"):
        return 0
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    total = 0
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        total += model.objects.filter(username__in=identities).delete()[0]
    return total


def _anonymize_sponsors(account: Account) -> int:
    pseudonym = Concat(Value("Sponsor "), Cast("id", CharField()))
    # Sponsor names may name a person (a solo brand): their history rows are scrubbed too.
    Sponsor.history.filter(account_id=account.pk).update(name=pseudonym, history_change_reason=None)
    return Sponsor.objects.filter(account=account).update(name=pseudonym)


def _anonymize_campaigns(account: Account, actor) -> list[ErasureResult]:
    qs = Campaign.objects.filter(account=account)
    count = qs.update(name=Concat(Value("Campaign "), Cast("id", CharField())))
    scrubbed = Campaign.history.filter(account_id=account.pk).update(
        name=Concat(Value("Campaign "), Cast("id", CharField())), history_change_reason=None
    )
    # The sweep bypassed save(): write the history rows that record it.
    batch = []
    for campaign in qs.iterator(chunk_size=1000):
        batch.append(campaign)
        if len(batch) == 1000:
            Campaign.history.bulk_history_create(
                batch, update=True, default_user=actor, default_change_reason=ERASED_CHANGE_REASON
            )
            batch = []
    Campaign.history.bulk_history_create(
        batch, update=True, default_user=actor, default_change_reason=ERASED_CHANGE_REASON
    )
    metrics = CampaignMetric.objects.filter(campaign__account=account).count()
    return [
        ErasureResult("campaign names", "anonymized", count),
        ErasureResult("campaign history rows", "anonymized", scrubbed),
        ErasureResult(
            "campaign figures and daily metrics",
            "kept",
            count + metrics,
            "Anonymized aggregate statistics: no longer personal data (GDPR Recital 26).",
        ),
    ]


def _anonymize_account(account: Account, actor) -> int:
    pseudonym = f"Deleted account {account.pk}"
    # The time zone hints where the customer lives: back to the site's default.
    zone = timezones.default_name()
    scrubbed = Account.history.filter(id=account.pk).update(
        name=pseudonym, time_zone=zone, history_change_reason=None
    )
    if account.name != pseudonym or account.time_zone != zone:
        account.name, account.time_zone = pseudonym, zone
        account._history_user = actor
        account._change_reason = ERASED_CHANGE_REASON
        account.save(update_fields=["name", "time_zone"])
    return scrubbed + 1


def _anonymize_user(user) -> int:
    user.username = f"deleted-{user.pk}"
    user.email = ""
    user.first_name = ""
    user.last_name = ""
    user.is_active = False
    user.is_staff = False
    user.is_superuser = False
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()
    return 1


# --- record of processing (GDPR Art. 30) -------------------------------------------------------
# The shared domain's personal data, read by the compliance app's record of processing: each
# model's personal fields with purpose, legal basis and retention. `history_exempt` says why
# a model keeps no history (else the compliance monitor reports it).
PERSONAL_DATA = [
    {
        "model": "auth.User",
        "fields": ["username", "email", "first_name", "last_name", "last_login"],
        "purpose": "Sign-in of customers and staff; contact about the account",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until the account is deleted (erased on deletion)",
    },
    {
        "model": "opsplatform.Account",
        "fields": ["name", "country", "time_zone", "user"],
        "purpose": "Provide the service to the customer; tax country for billing",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until the account is deleted (erased on deletion)",
    },
    {
        "model": "opsplatform.UsageEvent",
        "fields": ["account", "properties", "occurred_at"],
        "purpose": "Product analytics and account health",
        "legal_basis": "Legitimate interests (Art. 6(1)(f))",
        "retention": "Until the account is deleted (erased on deletion)",
        "history_exempt": "Append-only event log: rows are never edited",
    },
    {
        "model": "opsplatform.ApiToken",
        "fields": ["user", "label"],
        "purpose": "Authenticate API clients",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until revoked or the account is deleted",
    },
    {
        "model": "opsplatform.UserSession",
        "fields": ["user_id", "session_data"],
        "purpose": "Keep a signed-in user signed in",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until the session expires (SESSION_COOKIE_AGE), then cleared",
        "history_exempt": "Short-lived sign-in state; history would keep session secrets",
    },
]
