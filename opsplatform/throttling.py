"""Throttles keyed on the real client address (see clientip.py).

- `ClientRateThrottle`: the API's per-user rate limit, with anonymous callers keyed on the
  client address from `client_ip` instead of ninja's default (which trusts a forged
  `X-Forwarded-For`). A fixed-window counter: one cache `add` (or `incr`) per request instead
  of ninja's list of timestamps, read and written whole on every request (up to
  API_RATE_LIMIT entries). A window may let through up to twice the rate at its boundary.
- When the cache does not answer (Redis down), the API keeps serving: the rate limit and the
  failed-credential check let requests through and log it, rather than failing every call.
- Failed credentials (bearer tokens, the inbound-email secret): each failure is counted per
  client address in the cache; past `CREDENTIAL_FAILURE_LIMIT` failures within
  `CREDENTIAL_FAILURE_WINDOW` seconds every credential from that address is refused with 429
  until the window passes, a correct one included (otherwise guessing would go on). For a
  correct bearer token the address's count is read by the rate limit, in the same cache
  round trip (`BearerTokenAuth` marks the request with `credential_kind`); a refused token
  reads it at once.
"""

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from ninja.throttling import AuthRateThrottle

from opsplatform import telemetry
from opsplatform.clientip import client_ip
from opsplatform.errors import RateLimited

logger = logging.getLogger(__name__)


class ClientRateThrottle(AuthRateThrottle):
    def get_ident(self, request):
        return client_ip(request) or "unknown"

    def allow_request(self, request) -> bool:
        kind = getattr(request, "credential_kind", None)
        if self.rate is None:
            if kind is not None:
                refuse_if_guessing(request, kind)
            return True
        key = self.get_cache_key(request)
        window = int(time.time() // self.duration)
        self.window_ends_at = (window + 1) * self.duration
        try:
            if kind is None:
                count = _count(f"{key}:{window}", timeout=self.duration + 1)
            else:
                count, failures = _count(
                    f"{key}:{window}",
                    timeout=self.duration + 1,
                    read=_failure_key(request, kind),
                )
                _refuse_past_budget(failures)
        except RateLimited:
            raise
        except Exception:  # the cache is down: serve without the limit rather than fail
            logger.warning("rate limit not applied: the cache did not answer", exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self.window_ends_at - time.time(), 0.0)


def _count(key: str, *, timeout: int, read: str | None = None):
    """Add one to the counter under `key` (created with `timeout`) and return it; with
    `read`, also the counter under that key: (count, read value or 0)."""
    if hasattr(cache, "count_in_window"):  # opsplatform.cache.RedisCache: one round trip
        return cache.count_in_window(key, timeout, read=read)
    if cache.add(key, 1, timeout=timeout):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=timeout)
            count = 1
    return count if read is None else (count, cache.get(read, 0))


def _failure_key(request, kind: str) -> str:
    return f"credential-failures:{kind}:{client_ip(request) or 'unknown'}"


def refuse_if_guessing(request, kind: str) -> None:
    """Raise RateLimited while this client address is over its failed-credential budget."""
    try:
        failures = cache.get(_failure_key(request, kind), 0)
    except Exception:  # the cache is down: the credential itself is still checked
        logger.warning("failed-credential check skipped: the cache did not answer", exc_info=True)
        return
    _refuse_past_budget(failures)


def _refuse_past_budget(failures: int) -> None:
    if failures >= settings.CREDENTIAL_FAILURE_LIMIT:
        raise RateLimited("Too many failed credentials from your address; retry later.")


def note_failed_credential(request, kind: str) -> None:
    try:
        _count(_failure_key(request, kind), timeout=settings.CREDENTIAL_FAILURE_WINDOW)
    except Exception:  # the cache is down: the failure is still counted in /metrics
        logger.warning("failed credential not counted: the cache did not answer", exc_info=True)
    telemetry.CREDENTIAL_FAILURES.labels(kind=kind).inc()


def within_limit(key: str, *, limit: int, window: int) -> bool:
    """Count one attempt under `key` (a fixed window of `window` seconds) and say whether it is
    within `limit`. For pages that must not be hammered: the password-reset form."""
    return _count(key, timeout=window) <= limit


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
