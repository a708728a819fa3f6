"""Reads of the shared domain, with the tenant filter inside."""

from django.db.models import QuerySet

from opsplatform.errors import NotFound
from opsplatform.models import Account, ApiToken, Campaign
from opsplatform.tenancy import scope_account_id
from opsplatform.validation import NUL


def campaign_list(
    *, user, account_id: int | None = None, status: str | None = None, sponsor: str | None = None
) -> QuerySet[Campaign]:
    scoped = scope_account_id(user, account_id, perm="opsplatform.view_campaign")
    qs = Campaign.objects.select_related("sponsor", "account").order_by("-starts_on", "-id")
    if scoped is not None:
        qs = qs.filter(account_id=scoped)
    if status:
        qs = qs.filter(status=status)
    if sponsor:
        qs = qs.filter(sponsor__name=sponsor)
    return qs


def campaign_get(*, user, campaign_id: int, for_update: bool = False) -> Campaign:
    """A campaign the user may see; another tenant's campaign is simply not found."""
    qs = campaign_list(user=user)
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


def api_token_authenticate(raw: str) -> ApiToken | None:
    """The active token matching a presented secret, with its active user, or None."""
    if not raw or len(raw) > 200 or NUL in raw:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=ApiToken.hash(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
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
