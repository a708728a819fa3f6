"""Pages of the shared domain: the customer home, profile, password reset and change, email
change, API tokens, health and metrics endpoints."""

import hmac
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from opsplatform import selectors, services, telemetry, throttling
from opsplatform.charts import line_chart
from opsplatform.errors import DomainError
from opsplatform.exports import money, ratio
from opsplatform.forms import EmailChangeForm, PasswordResetForm, ProfileForm
from opsplatform.middleware import server_error_response
from opsplatform.models import Heartbeat
from opsplatform.pages import customer_page, customer_page_view
from opsplatform.tenancy import account_of, is_staff

WORKER_STALE_AFTER_SECONDS = 180
MONEY_KEYS = ("revenue", "spend")


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
    """Liveness for load balancers: 200 while the database answers, 503 when it does not.
    The cache (Redis: rate limits, failed-credential counts) is checked too; while it is
    down the API serves without those limits, so the answer stays 200 with status
    "degraded" and the error. The worker's state is reported (from its heartbeat schedule)
    but does not fail the check."""
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
        # The API still answers without its cache (the rate limit lets requests through),
        # so this process stays in the load balancer: "degraded", for the alert to fire.
        body.update(status="degraded", cache=f"error: {exc.__class__.__name__}: {exc}"[:300])
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


@require_http_methods(["GET", "POST"])
@customer_page
def api_token_revoke(request, account, token_id: int):
    """A GET asks for confirmation; the POST revokes."""
    token = selectors.api_token_get(user=request.user, token_id=token_id)
    if request.method == "GET":
        if token.revoked_at:
            return redirect("api_tokens")
        return render(request, "account/token_revoke.html", {"token": token})
    services.revoke_api_token(token=token, actor=request.user)
    messages.success(request, f"Token “{token.label}” revoked; clients using it now get 401.")
    return redirect("api_tokens")


# --- password reset, password and email change, profile -----------------------------------------


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset by email, with the site's templates and links on SITE_URL. The answer is
    the same whether or not the address has an account; requests are limited per client
    address (429 page) and mails per address (quietly: the answer must not differ)."""

    template_name = "registration/password_reset_form.html"
    form_class = PasswordResetForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("password_reset_done")

    def get_extra_email_context(self):
        return {"site_url": settings.SITE_URL}

    def form_valid(self, form):
        by_address, by_email = throttling.password_reset_allowed(
            self.request, form.cleaned_data["email"]
        )
        if not by_address:
            return render(self.request, "registration/password_reset_limited.html", status=429)
        if not by_email:
            return redirect(self.success_url)
        self.extra_email_context = self.get_extra_email_context()
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Every browser still signed in with the old password is signed out.
        services.sign_out_other_sessions(user=form.user, keep_session_key=None)
        return response


@method_decorator(customer_page_view, name="dispatch")
class PasswordChangeView(auth_views.PasswordChangeView):
    """Change the password: this browser stays signed in, every other session ends, and the
    next page lists the API tokens (which a password change does not revoke) to revoke."""

    template_name = "account/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def form_valid(self, form):
        response = super().form_valid(form)
        ended = services.sign_out_other_sessions(
            user=self.request.user, keep_session_key=self.request.session.session_key
        )
        self.request.session["other_sessions_ended"] = ended
        return response


@customer_page
def password_change_done(request, account):
    ended = request.session.pop("other_sessions_ended", None)
    tokens = [t for t in selectors.api_token_list(user=request.user) if not t.revoked_at]
    return render(request, "account/password_change_done.html", {"ended": ended, "tokens": tokens})


@never_cache
@customer_page
def profile(request, account):
    """Name, email and time zone; links to change the password and the email address."""
    form = ProfileForm(
        request.POST or None,
        initial={
            "first_name": request.user.first_name,
            "last_name": request.user.last_name,
            "time_zone": account.time_zone,
        },
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.update_profile(
                    user=request.user,
                    first_name=form.cleaned_data["first_name"],
                    last_name=form.cleaned_data["last_name"],
                    time_zone=form.cleaned_data["time_zone"] or None,
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.detail)
                status = exc.status_code
            else:
                messages.success(request, "Your profile was saved.")
                return redirect("profile")
        else:
            status = 422
    return render(
        request, "account/profile.html", {"form": form, "account": account}, status=status
    )


@never_cache
@customer_page
def email_change(request, account):
    form = EmailChangeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.request_email_change(
                    user=request.user,
                    new_email=form.cleaned_data["email"],
                    password=form.cleaned_data["password"],
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.detail)
                status = exc.status_code
            else:
                messages.success(
                    request,
                    f"We sent a confirmation link to {form.cleaned_data['email']}. Your email "
                    "address changes when you follow it (within a day).",
                )
                return redirect("profile")
        else:
            status = 422
    return render(request, "account/email_change.html", {"form": form}, status=status)


@never_cache
def email_change_confirm(request, token: str):
    """The link from the confirmation email: a GET shows what changes (mail scanners that
    follow links change nothing), the POST makes the change."""
    try:
        _user, new_email = services.read_email_change(token)
    except DomainError as exc:
        return render(
            request, "account/email_change_confirm.html", {"error": exc.detail}, status=400
        )
    if request.method == "POST":
        try:
            services.confirm_email_change(token=token)
        except DomainError as exc:
            return render(
                request, "account/email_change_confirm.html", {"error": exc.detail}, status=400
            )
        messages.success(request, f"Your email address is now {new_email}.")
        return redirect("profile" if request.user.is_authenticated else "login")
    return render(
        request, "account/email_change_confirm.html", {"new_email": new_email, "token": token}
    )


@customer_page
def campaign_detail(request, account, campaign_id: int):
    """One campaign: its totals, its daily metrics as charts and a table, its renewal chain."""
    try:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
    except DomainError:
        raise Http404("Campaign not found.") from None
    daily = selectors.campaign_daily_metrics(campaign=campaign)
    labels = [f"{row['date']:%b} {row['date'].day}" for row in daily]
    totals = {
        key: sum((row[key] for row in daily), Decimal("0.00") if key in MONEY_KEYS else 0)
        for key in ("impressions", "clicks", "conversions", "revenue", "spend")
    }
    revenue, spend = money(totals["revenue"]), money(totals["spend"])
    context = {
        "campaign": campaign,
        "daily": daily,
        "totals": totals,
        "roi": ratio(revenue - spend, spend),
        "roas": ratio(revenue, spend),
        "chain": selectors.renewal_chain(campaign=campaign),
        "delivery_chart": line_chart(
            {
                "Impressions": [row["impressions"] for row in daily],
                "Clicks": [row["clicks"] for row in daily],
            },
            labels,
            title="Impressions and clicks per day",
        )
        if daily
        else None,
        "money_chart": line_chart(
            {
                "Revenue ($)": [float(row["revenue"]) for row in daily],
                "Spend ($)": [float(row["spend"]) for row in daily],
            },
            labels,
            title="Revenue and spend per day",
        )
        if daily
        else None,
        "days_shown": selectors.CAMPAIGN_PAGE_DAYS,
    }
    return render(request, "account/campaign.html", context)
