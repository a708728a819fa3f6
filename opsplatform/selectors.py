"""Reads of the shared domain, with the tenant filter inside."""

from django.db.models import QuerySet

from opsplatform.compiled import CompiledQuery, Listing
from opsplatform.errors import NotFound
from opsplatform.models import Account, ApiToken, Campaign
from opsplatform.tenancy import scope_account_id
from opsplatform.validation import NUL


def campaign_list(
    *, user, account_id: int | None = None, status: str | None = None, sponsor: str | None = None
) -> QuerySet[Campaign]:
    scoped = scope_account_id(user, account_id, perm="opsplatform.view_campaign")
    qs = Campaign.objects.select_related("sponsor").order_by("-starts_on", "-id")
    if scoped is not None:
        qs = qs.filter(account_id=scoped)
    if status:
        qs = qs.filter(status=status)
    if sponsor:
        qs = qs.filter(sponsor__name=sponsor)
    return qs


# One account's campaigns, newest first: what every customer's GET /campaigns pages through.
_ACCOUNT_CAMPAIGNS = CompiledQuery(
    lambda account_id: (
        Campaign.objects.select_related("sponsor")
        .filter(account_id=account_id)
        .order_by("-starts_on", "-id")
    ),
    account_id=int,
)


def campaign_listing(
    *, user, account_id: int | None = None, status: str | None = None, sponsor: str | None = None
) -> QuerySet[Campaign] | Listing:
    """What the campaigns endpoint pages through: the same rows as `campaign_list`; one
    account's unfiltered list (every customer's call) compiled once (opsplatform/compiled.py)."""
    if status or sponsor:
        return campaign_list(user=user, account_id=account_id, status=status, sponsor=sponsor)
    scoped = scope_account_id(user, account_id, perm="opsplatform.view_campaign")
    if scoped is None:
        return campaign_list(user=user)
    return Listing(_ACCOUNT_CAMPAIGNS, account_id=scoped)


def campaign_get(*, user, campaign_id: int, for_update: bool = False) -> Campaign:
    """A campaign the user may see; another tenant's campaign is simply not found."""
    qs = campaign_list(user=user).select_related("account")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    try:
        return qs.get(id=campaign_id)
    except Campaign.DoesNotExist:
        raise NotFound("Campaign not found.") from None


def account_get(*, account_id: int) -> Account:
    try:
        return Account.objects.select_related("persona", "user").get(id=account_id)
    except Account.DoesNotExist:
        raise NotFound("Account not found.") from None


# Every API request runs it: compiled once per process (opsplatform/compiled.py).
_TOKEN_LOOKUP = CompiledQuery(
    lambda token_hash: (
        ApiToken.objects.select_related("user", "user__account__persona")
        .filter(token_hash=token_hash, revoked_at__isnull=True, user__is_active=True)
        .order_by()[:1]
    ),
    token_hash=str,
)


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The active token matching a presented secret, with its active user, or None. One
    query: the user's account (and persona) come with it and are kept for `account_of`."""
    if not raw or len(raw) > 200 or NUL in raw:
        return None
    token = _TOKEN_LOOKUP.first(token_hash=ApiToken.hash(raw))
    if token is not None:
        try:
            token.user._account_cache = token.user.account
        except Account.DoesNotExist:
            token.user._account_cache = None
    return token


def account_summary(*, account: Account, days: int = 30) -> dict:
    """Headline numbers for the account page, computed in two aggregate queries."""
    import datetime as dt

    from django.db.models import Count, Q, Sum
    from django.utils import timezone

    from opsplatform.models import CampaignMetric

    campaigns = Campaign.objects.filter(account=account).aggregate(
        total=Count("id"),
        active=Count("id", filter=Q(status=Campaign.Status.ACTIVE)),
        renewals=Count("id", filter=Q(renewed_from__isnull=False)),
    )
    since = timezone.localdate() - dt.timedelta(days=days)
    metrics = CampaignMetric.objects.filter(campaign__account=account, date__gt=since).aggregate(
        impressions=Sum("impressions"),
        clicks=Sum("clicks"),
        conversions=Sum("conversions"),
        revenue=Sum("revenue"),
        spend=Sum("spend"),
    )
    return {"days": days, **campaigns, **{k: v or 0 for k, v in metrics.items()}}


def api_token_list(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def api_token_get(*, user, token_id: int) -> ApiToken:
    """One of the user's own tokens; anyone else's token is not found."""
    try:
        return ApiToken.objects.get(user=user, id=token_id)
    except ApiToken.DoesNotExist:
        raise NotFound("Token not found.") from None


CAMPAIGN_PAGE_DAYS = 366  # the campaign page charts at most the last year of its days


def campaign_daily_metrics(*, campaign: Campaign, days: int = CAMPAIGN_PAGE_DAYS) -> list[dict]:
    """The campaign's last `days` days of metrics, oldest first (one query)."""
    rows = campaign.metrics.order_by("-date").values(
        "date", "impressions", "clicks", "conversions", "revenue", "spend"
    )[:days]
    return list(reversed(rows))


def renewal_chain(*, campaign: Campaign) -> list[Campaign]:
    """The campaigns this one renews and the ones renewing it, oldest first, this one
    included. Renewals keep the sponsor and the account, so one query over the sponsor's
    campaigns finds the whole chain, however long."""
    by_id = {
        c.id: c
        for c in Campaign.objects.filter(
            account_id=campaign.account_id, sponsor_id=campaign.sponsor_id
        ).only("id", "name", "starts_on", "ends_on", "status", "deal_value", "renewed_from_id")
    }
    renews = {c.renewed_from_id: c for c in by_id.values() if c.renewed_from_id}
    chain = [by_id.get(campaign.id, campaign)]
    seen = {campaign.id}
    while (earlier := by_id.get(chain[0].renewed_from_id)) is not None and earlier.id not in seen:
        chain.insert(0, earlier)
        seen.add(earlier.id)
    while (later := renews.get(chain[-1].id)) is not None and later.id not in seen:
        chain.append(later)
        seen.add(later.id)
    return chain


# --- figures for the scaling checkpoints (set-based: one grouped query each) --------------------


def account_counts_by_persona(*, until) -> dict[str, int]:
    """persona slug → accounts created before `until`."""
    from django.db.models import Count

    return dict(
        Account.objects.filter(created_at__lt=until)
        .values("persona__slug")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("persona__slug", "n")
    )


def campaign_first_metrics(*, since, until) -> list[tuple]:
    """(created_at, date of its first metric row or None) per live campaign created in
    [since, until): the journey "campaign created → first metrics" (one query)."""
    from django.db.models import Min, Q

    return list(
        Campaign.objects.filter(created_at__gte=since, created_at__lt=until)
        .exclude(status=Campaign.Status.CANCELED)
        .annotate(first=Min("metrics__date", filter=Q(metrics__date__lt=until.date())))
        .order_by()
        .values_list("created_at", "first")
    )
