"""Throttles keyed on the real client address (see clientip.py).

- `ClientRateThrottle`: the API's per-token rate limit, with anonymous callers keyed on the
  client address from `client_ip` instead of ninja's default (which trusts a forged
  `X-Forwarded-For`).
- Failed credentials (bearer tokens, the inbound-email secret): each failure is counted per
  client address in the cache; past `CREDENTIAL_FAILURE_LIMIT` failures within
  `CREDENTIAL_FAILURE_WINDOW` seconds every credential from that address is refused with 429
  until the window passes, a correct one included (otherwise guessing would go on).
"""

import hashlib

from django.conf import settings
from django.core.cache import cache
from ninja.throttling import AuthRateThrottle

from opsplatform import telemetry
from opsplatform.clientip import client_ip
from opsplatform.errors import RateLimited


class ClientRateThrottle(AuthRateThrottle):
    def get_ident(self, request):
        return client_ip(request) or "unknown"


def _failure_key(request, kind: str) -> str:
    return f"credential-failures:{kind}:{client_ip(request) or 'unknown'}"


def refuse_if_guessing(request, kind: str) -> None:
    """Raise RateLimited while this client address is over its failed-credential budget."""
    failures = cache.get(_failure_key(request, kind), 0)
    if failures >= settings.CREDENTIAL_FAILURE_LIMIT:
        raise RateLimited("Too many failed credentials from your address; retry later.")


def note_failed_credential(request, kind: str) -> None:
    key = _failure_key(request, kind)
    window = settings.CREDENTIAL_FAILURE_WINDOW
    if not cache.add(key, 1, timeout=window):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)
    telemetry.CREDENTIAL_FAILURES.labels(kind=kind).inc()


def within_limit(key: str, *, limit: int, window: int) -> bool:
    """Count one attempt under `key` (a fixed window of `window` seconds) and say whether it is
    within `limit`. For pages that must not be hammered: the password-reset form."""
    if not cache.add(key, 1, timeout=window):
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)
            count = 1
    else:
        count = 1
    return count <= limit


def password_reset_allowed(request, email: str) -> tuple[bool, bool]:
    """(address within its limit, email within its limit) for one password-reset request:
    PASSWORD_RESET_LIMIT_PER_ADDRESS requests per client address and
    PASSWORD_RESET_LIMIT_PER_EMAIL mails per email address, each per PASSWORD_RESET_WINDOW
    seconds (defaults 10, 3 and 3600)."""
    window = settings.PASSWORD_RESET_WINDOW
    by_address = within_limit(
        f"password-reset:ip:{client_ip(request) or 'unknown'}",
        limit=settings.PASSWORD_RESET_LIMIT_PER_ADDRESS,
        window=window,
    )
    by_email = by_address and within_limit(
        "password-reset:email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest(),
        limit=settings.PASSWORD_RESET_LIMIT_PER_EMAIL,
        window=window,
    )
    return by_address, by_email
