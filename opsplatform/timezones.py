"""The customer's time zone: which names are allowed, the profile's list, and the zone to show
a user's dates in — on their pages (`middleware.UserTimeZoneMiddleware`) and in every email
sent to them (`for_user` around the rendering).

The zone is stored on the customer's account (`Account.time_zone`, one sign-in per account) as
an IANA name. Staff and visitors without an account see `settings.TIME_ZONE`.
"""

import functools
import zoneinfo
from contextlib import AbstractContextManager

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

# Names the tz database ships that are not places: refused like any unknown name.
NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})

# Shown first on the profile page: where most customers are, west to east.
COMMON = (
    "UTC",
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Toronto",
    "America/Mexico_City",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Athens",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


@functools.cache
def names() -> frozenset[str]:
    """Every IANA name this machine's tz database knows (zoneinfo.available_timezones())."""
    return frozenset(zoneinfo.available_timezones()) - NOT_PLACES


def is_valid(name: object) -> bool:
    return isinstance(name, str) and name in names()


def default_name() -> str:
    """The zone of a new account and of users without one: settings.TIME_ZONE (UTC)."""
    return settings.TIME_ZONE if is_valid(settings.TIME_ZONE) else "UTC"


MESSAGE = "Choose a time zone from the list, for example Europe/Paris."


def validate(name: str) -> None:
    """Django validator for the model field and the form."""
    if not is_valid(name):
        raise ValidationError(MESSAGE, code="invalid_time_zone")


def choices() -> list:
    """The profile's select: the common zones first, then every zone from A to Z (grouped)."""
    common = [(name, name.replace("_", " ")) for name in COMMON if is_valid(name)]
    everything = [(name, name.replace("_", " ")) for name in sorted(names())]
    return [("Common time zones", common), ("All time zones", everything)]


def zone(name: str | None) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name if is_valid(name) else default_name())


def zone_of(user) -> zoneinfo.ZoneInfo:
    """The zone a user's dates are shown in: their account's, else the site's."""
    from opsplatform.tenancy import account_of, is_staff

    account = None if is_staff(user) else account_of(user)
    return zone(account.time_zone if account is not None else None)


def for_user(user) -> AbstractContextManager:
    """`with timezone_for(user):` renders dates (templates, `localtime`) in the user's zone."""
    if user is None:
        return timezone.override(zone(None))
    return timezone.override(zone_of(user))


def for_account(account) -> AbstractContextManager:
    """The same for an account already at hand (no query)."""
    return timezone.override(zone(account.time_zone if account is not None else None))
