"""Pages of the shared domain: the customer home, health and metrics endpoints."""

import hmac

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from opsplatform import selectors, services, telemetry
from opsplatform.middleware import server_error_response
from opsplatform.models import Heartbeat
from opsplatform.pages import customer_page
from opsplatform.tenancy import account_of, is_staff

WORKER_STALE_AFTER_SECONDS = 180


class ApiTokenForm(forms.Form):
    # CharField strips the value and refuses NUL characters itself.
    label = forms.CharField(max_length=100, help_text="What uses it, e.g. “Zapier” or “CI”.")


@login_required
def home(request):
    """Customers land on their account page, staff on the admin."""
    if account_of(request.user) is None and is_staff(request.user):
        return redirect("admin:index")
    return redirect("account_home")


@customer_page
def account_home(request, account):
    summary = selectors.account_summary(account=account)
    campaigns = selectors.campaign_list(user=request.user)[:10]
    return render(
        request,
        "account/home.html",
        {"account": account, "summary": summary, "campaigns": campaigns},
    )


@never_cache
@require_GET
def healthz(request):
    """Liveness for load balancers: 200 while the database and the cache answer (the cache
    holds the API's rate limits: without it every API call would fail); the worker's state is
    reported (from its heartbeat schedule) but does not fail the check."""
    body = {
        "status": "ok",
        "database": "ok",
        "cache": "ok",
        "worker": "unknown",
        "worker_last_seen": None,
    }
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        beat = Heartbeat.objects.filter(name="worker").first()
    except Exception as exc:  # any database failure means "not healthy", not a 500 page
        body.update(status="error", database=f"error: {exc.__class__.__name__}")
        return JsonResponse(body, status=503)
    try:
        cache.set("healthz", "ok", 30)
        if cache.get("healthz") != "ok":
            raise RuntimeError("the cache did not keep a value")
    except Exception as exc:  # a missing cache table (migrate not run) or Redis down
        body.update(status="error", cache=f"error: {exc.__class__.__name__}: {exc}"[:300])
        return JsonResponse(body, status=503)
    if beat is not None:
        age = (timezone.now() - beat.beat_at).total_seconds()
        body["worker"] = "ok" if age <= WORKER_STALE_AFTER_SECONDS else "stale"
        body["worker_last_seen"] = beat.beat_at.isoformat()
    return JsonResponse(body)


def server_error(request):
    """handler500: the API's JSON envelope under /api/, the error page elsewhere."""
    if request.path_info.startswith("/api/"):
        return server_error_response()
    return defaults.server_error(request)


@never_cache
@require_GET
def metrics(request):
    """Prometheus text format; in production only for staff or with METRICS_TOKEN."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    allowed = (
        settings.DEBUG
        or is_staff(request.user)
        or (token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()))
    )
    if not allowed:
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    payload, content_type = telemetry.render()
    return HttpResponse(payload, content_type=content_type)


@customer_page
def api_tokens(request, account):
    """A customer's own API tokens: create one (its secret shown once), list, revoke."""
    new_secret = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        _token, new_secret = services.issue_api_token(
            user=request.user, label=form.cleaned_data["label"], actor=request.user
        )
        form = ApiTokenForm()
    tokens = selectors.api_token_list(user=request.user)
    return render(
        request, "account/tokens.html", {"form": form, "tokens": tokens, "new_secret": new_secret}
    )


@require_POST
@customer_page
def api_token_revoke(request, account, token_id: int):
    token = selectors.api_token_get(user=request.user, token_id=token_id)
    services.revoke_api_token(token=token, actor=request.user)
    messages.success(request, f"Token “{token.label}” revoked; clients using it now get 401.")
    return redirect("api_tokens")
