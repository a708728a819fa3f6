"""Request-wide rules: domain errors on pages, the API's JSON error envelope everywhere under
/api/, no-store caching for personal pages, and the Content-Security-Policy."""

import functools
import logging
from dataclasses import asdict

from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.http import http_date

from opsplatform import timezones
from opsplatform.errors import DomainError, Forbidden, NotFound

logger = logging.getLogger(__name__)


class DomainErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exc):
        if not isinstance(exc, DomainError):
            return None
        if isinstance(exc, NotFound):
            raise Http404(exc.detail)
        if isinstance(exc, Forbidden):
            raise PermissionDenied(exc.detail)
        return render(request, "error.html", {"detail": exc.detail}, status=exc.status_code)


class ApiErrorEnvelopeMiddleware:
    """Everything under /api/ answers the JSON error envelope, also where ninja does not run:
    an unknown path (Django's 404 page), a method the path does not allow (ninja's empty
    405) and, in production, an unexpected exception (Django's 500 page)."""

    MESSAGES = {
        404: ("Not found.", "not_found"),
        405: ("Method not allowed for this path.", "method_not_allowed"),
    }

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            is_api_path(request)
            and response.status_code in self.MESSAGES
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            detail, code = self.MESSAGES[response.status_code]
            replaced = JsonResponse({"detail": detail, "code": code}, status=response.status_code)
            for header, value in response.items():  # Allow, CSP, Cache-Control…
                if header.lower() not in ("content-type", "content-length"):
                    replaced[header] = value
            return replaced
        return response

    def process_exception(self, request, exc):
        if not is_api_path(request) or isinstance(exc, Http404 | PermissionDenied):
            return None
        if is_database_unavailable(exc):
            logger.warning("Database unavailable on %s %s: %s", request.method, request.path, exc)
            detail, code = DATABASE_UNAVAILABLE
            response = JsonResponse({"detail": detail, "code": code}, status=503)
            response["Retry-After"] = "2"
            return response
        logger.error("Unhandled error on %s %s", request.method, request.path, exc_info=exc)
        return server_error_response()


DATABASE_UNAVAILABLE = (
    "The database is briefly unavailable; retry in a few seconds.",
    "unavailable",
)


def is_database_unavailable(exc: BaseException) -> bool:
    """A lost or refused database connection (restart, failover), not a bad query: psycopg
    reports those as OperationalError/InterfaceError, Django as the same classes."""
    return isinstance(exc, OperationalError | InterfaceError)


def is_api_path(request) -> bool:
    return request.path_info.startswith("/api/")


def server_error_response() -> JsonResponse:
    return JsonResponse(
        {"detail": "Internal error; it has been logged.", "code": "server_error"}, status=500
    )


NEVER_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


class NoStoreForPersonalPagesMiddleware:
    """Pages for a signed-in person (account data, token secrets, admin) and every API answer
    must not be kept by a browser or a shared cache: `Cache-Control: no-store, private`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if is_api_path(request):
            if "Cache-Control" in response or "Expires" in response:
                add_never_cache_headers(response)
            else:  # what add_never_cache_headers writes, without parsing and re-sorting
                response["Cache-Control"] = NEVER_CACHE
                response["Expires"] = http_date()
            return response
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        return response


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp with the project's policy (settings.CONTENT_SECURITY_POLICY): same origin
    only. Two paths widen it without adding any origin: the admin, whose Alpine.js
    evaluates its attributes (`'unsafe-eval'`) and sets inline styles, and the API docs,
    whose Swagger UI sets inline styles."""

    def process_response(self, request, response):
        # API answers carry the same policy every time: built once per process instead of
        # on every response (nothing per-response on them: no nonce, no decorator).
        if (
            is_api_path(request)
            and getattr(request, "_csp_nonce", None) is None
            and not any(hasattr(response, name) for name in _PER_RESPONSE_CSP)
            and CSP_HEADER not in response
        ):
            policy = _api_policy(self, request, response)
            if policy is not None:
                response[CSP_HEADER] = policy
                request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
                return response
        return super().process_response(request, response)

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        path = request.path_info
        widen = None
        if path.startswith(_admin_prefix()):
            widen = {"script-src": ["'unsafe-eval'"], "style-src": ["'unsafe-inline'"]}
        elif path.startswith("/api/"):
            widen = {"style-src": ["'unsafe-inline'"]}
        if widen and parts.update is None:
            parts.update = widen
        return parts


_PER_RESPONSE_CSP = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)
_API_POLICY: list[str] = []


def _api_policy(middleware, request, response) -> str | None:
    """The policy of an API answer, built once; None when the settings ask for more than one
    fixed header (a report-only policy, excluded prefixes): the generic path handles those."""
    if not _API_POLICY:
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
        if getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None) or policy.get(
            "EXCLUDE_URL_PREFIXES"
        ):
            _API_POLICY.append(None)
        else:
            _API_POLICY.append(
                build_policy(**asdict(middleware.get_policy_parts(request, response)))
            )
    return _API_POLICY[0]


@functools.cache
def _admin_prefix() -> str:
    return reverse("admin:index")


class UserTimeZoneMiddleware:
    """Pages show dates in the signed-in customer's time zone (their profile's choice; staff
    and visitors see settings.TIME_ZONE). Goes after AuthenticationMiddleware. The account is
    read through `tenancy.account_of`, which caches it on the user, so customer pages (which
    read it anyway) cost no extra query; staff pages cost none either."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not is_api_path(request):
            timezone.activate(timezones.zone_of(user))
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
