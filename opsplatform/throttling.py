"""Throttles keyed on the real client address (see clientip.py).

- `ClientRateThrottle`: the API's per-token rate limit, with anonymous callers keyed on the
  client address from `client_ip` instead of ninja's default (which trusts a forged
  `X-Forwarded-For`).
- Failed credentials (bearer tokens, the inbound-email secret): each failure is counted per
  client address in the cache; past `CREDENTIAL_FAILURE_LIMIT` failures within
  `CREDENTIAL_FAILURE_WINDOW` seconds every credential from that address is refused with 429
  until the window passes, a correct one included (otherwise guessing would go on).
"""

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
