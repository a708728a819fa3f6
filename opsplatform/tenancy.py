"""Who is acting and which account they may touch: the tenant wall used by every face."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from opsplatform.compiled import CompiledQuery
from opsplatform.errors import Forbidden, NotFound
from opsplatform.models import Account

# Every page of a signed-in customer asks: compiled once (opsplatform/compiled.py).
_ACCOUNT_OF_USER = CompiledQuery(
    lambda user_id: (
        Account.objects.select_related("persona").filter(user_id=user_id).order_by("pk")[:1]
    ),
    user_id=int,
)


def account_of(user: AbstractBaseUser | None) -> Account | None:
    """The customer account a user belongs to, or None for staff and anonymous users."""
    if user is None or not user.is_authenticated:
        return None
    cached = getattr(user, "_account_cache", False)
    if cached is not False:
        return cached
    account = _ACCOUNT_OF_USER.first(user_id=user.pk)
    user._account_cache = account
    return account


def is_staff(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)


def require_account(user) -> Account:
    """The caller's own account; staff without an account get 403, not someone else's data."""
    account = account_of(user)
    if account is None:
        raise Forbidden("This action needs a customer account.", code="no_account")
    return account


def require_perm(user, perm: str) -> None:
    if not (is_staff(user) and user.has_perm(perm)):
        raise Forbidden("You do not have permission to do this.", code="permission_denied")


def visible_to(user, qs: QuerySet, *, perm: str, account_field: str = "account_id") -> QuerySet:
    """The tenant wall for reads: the rows of `qs` a user may see one by one. A customer sees
    their own account's rows, staff with `perm` see all, anyone else none — so a lookup of
    another tenant's object is simply not found (404), never a 403 that leaks existence."""
    if is_staff(user):
        return qs if user.has_perm(perm) else qs.none()
    own = account_of(user)
    if own is None:
        return qs.none()
    return qs.filter(**{account_field: own.id})


def scope_account_id(user, account_id: int | None, *, perm: str) -> int | None:
    """The account a request acts on: a customer always acts on its own account (any other
    id answers 404), staff act on the given account or, with None, on all accounts."""
    own = account_of(user)
    if own is not None and not is_staff(user):
        if account_id is not None and account_id != own.id:
            raise NotFound("Account not found.")
        return own.id
    require_perm(user, perm)
    if account_id is not None and not Account.objects.filter(id=account_id).exists():
        raise NotFound("Account not found.")
    return account_id
