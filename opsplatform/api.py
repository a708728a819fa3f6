"""The one NinjaAPI at /api/v1/: auth, throttling, the error envelope, and every app's router."""

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.parser import Parser

from opsplatform.auth import api_auth
from opsplatform.errors import DomainError
from opsplatform.middleware import DATABASE_UNAVAILABLE, is_database_unavailable
from opsplatform.registry import platform_apps
from opsplatform.throttling import ClientRateThrottle

logger = logging.getLogger(__name__)


class UnsupportedMediaType(Exception):
    """A request body that is not JSON; the HttpError handler answers it with 415."""


class JsonOnlyParser(Parser):
    """Request bodies are JSON (`application/json` or a `+json` type). A form-encoded or
    other body answers 415 instead of being guessed at."""

    def parse_body(self, request):
        content_type = request.content_type or ""
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise UnsupportedMediaType(content_type or "none")
        return super().parse_body(request)


api = NinjaAPI(
    title="opsplatform API",
    version="1.0.0",
    description=(
        "The operations API. Authenticate with `Authorization: Bearer <token>` (create one in "
        "admin or with `manage.py issue_api_token`). Errors are JSON "
        '`{"detail": "...", "code": "..."}`, with `errors` for 422.'
    ),
    urls_namespace="api",
    parser=JsonOnlyParser(),
    auth=api_auth,
    throttle=[ClientRateThrottle(settings.API_RATE_LIMIT)],
)


def _error(request, status: int, detail: str, code: str, **extra):
    return api.create_response(request, {"detail": detail, "code": code, **extra}, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    extra = {}
    if hasattr(exc, "errors"):
        extra["errors"] = [
            {
                "loc": ["body", *getattr(exc, "loc_prefix", ()), i, f],
                "msg": m,
                "type": "value_error",
            }
            for i, f, m in exc.errors
        ]
    elif exc.status_code == 422:
        extra["errors"] = [
            {"loc": ["body", exc.field or "__all__"], "msg": exc.detail, "type": "value_error"}
        ]
    return _error(request, exc.status_code, exc.detail, exc.code, **extra)


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    def clean_loc(loc):
        loc = [p if isinstance(p, int) else str(p) for p in loc]
        # ninja nests the body under its parameter name ("payload"): hide that detail.
        if len(loc) > 1 and loc[0] == "body" and loc[1] == "payload":
            del loc[1]
        return loc

    errors = [
        {
            "loc": clean_loc(e.get("loc", ())),
            "msg": str(e.get("msg", "invalid")),
            "type": str(e.get("type", "value_error")),
        }
        for e in exc.errors
    ]
    first = errors[0] if errors else None
    detail = "Invalid input"
    if first:
        where = ".".join(str(p) for p in first["loc"][1:]) or str(first["loc"][0])
        detail = f"Invalid input: {where}: {first['msg']}"
    return _error(request, 422, detail, "invalid", errors=errors)


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    return _error(
        request, 401, "Authentication required: send a valid bearer token.", "unauthenticated"
    )


@api.exception_handler(Throttled)
def on_throttled(request, exc):
    return _error(request, 429, "Too many requests; slow down and retry later.", "rate_limited")


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    if isinstance(exc.__cause__, UnsupportedMediaType):
        return _error(
            request,
            415,
            f"Send the body as JSON with Content-Type: application/json (got {exc.__cause__}).",
            "unsupported_media_type",
        )
    codes = {
        400: "malformed_body",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "too_large",
        415: "unsupported_media_type",
        409: "conflict",
        429: "rate_limited",
    }
    return _error(request, exc.status_code, str(exc), codes.get(exc.status_code, "error"))


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, "Not found.", "not_found")


@api.exception_handler(PermissionDenied)
def on_permission_denied(request, exc):
    return _error(request, 403, "You do not have permission to do this.", "permission_denied")


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
    return _error(request, 413, f"Request body too large (at most {limit} MB).", "too_large")


@api.exception_handler(Exception)
def on_unexpected(request, exc):
    """In production an unexpected error still answers the envelope (and is logged). A lost
    database (restart, failover) answers 503 at once, so clients retry; Django reconnects
    on the next request (CONN_HEALTH_CHECKS)."""
    if is_database_unavailable(exc):
        logger.warning("Database unavailable on %s %s: %s", request.method, request.path, exc)
        response = _error(request, 503, *DATABASE_UNAVAILABLE)
        response["Retry-After"] = "2"
        return response
    if settings.DEBUG:
        raise exc
    logger.error("Unhandled API error on %s %s", request.method, request.path, exc_info=exc)
    return _error(request, 500, "Internal error; it has been logged.", "server_error")


# Every component's router, declared on its AppConfig (registry.PlatformAppConfig).
for config in platform_apps():
    if config.api_router:
        api.add_router(config.api_prefix, config.api_router)
