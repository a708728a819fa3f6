"""Holes found from outside: the client address behind proxies, lockouts, credential guessing,
server errors under /api/, headers (CSP, no-store), offline API docs, the cache table."""

import re

import pytest
from django.contrib import admin
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.client import RequestFactory

from opsplatform.clientip import client_ip
from opsplatform.models import UsageEvent
from opsplatform.throttling import ClientRateThrottle
from tests.factories import PASSWORD, staff_in, token_for

pytestmark = pytest.mark.django_db

LB = "10.0.0.1"  # the load balancer every request reaches us through


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def request_from(remote, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


# --- the client address -------------------------------------------------------------------


@pytest.mark.parametrize(
    "proxies, remote, forwarded, expected",
    [
        (0, "198.51.100.7", "203.0.113.9", "198.51.100.7"),  # header ignored without proxies
        (1, LB, "203.0.113.9", "203.0.113.9"),
        (1, LB, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # forged left part ignored
        (2, "10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1", "203.0.113.9"),
        (2, LB, "203.0.113.9", LB),  # fewer hops than proxies: the nearest address
        (1, LB, "not-an-address", LB),
        (1, LB, "[2001:db8::7]:443", "2001:db8::7"),
        (1, LB, "203.0.113.9:5123", "203.0.113.9"),
        (1, LB, None, LB),
    ],
)
def test_client_address_trusts_only_the_configured_proxies(
    settings, proxies, remote, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    assert client_ip(request_from(remote, forwarded)) == expected


def test_anonymous_api_throttle_keys_on_the_real_client_not_a_forged_header(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    throttle = ClientRateThrottle("10/m")
    forged_a = request_from("198.51.100.7", "1.1.1.1")
    forged_b = request_from("198.51.100.7", "2.2.2.2")
    assert throttle.get_ident(forged_a) == throttle.get_ident(forged_b) == "198.51.100.7"


# --- sign-in lockouts behind the load balancer ----------------------------------------------


def login(username, password, forwarded):
    return Client(REMOTE_ADDR=LB, HTTP_X_FORWARDED_FOR=forwarded).post(
        "/login/", {"username": username, "password": password}
    )


def test_a_guesser_behind_the_load_balancer_locks_only_their_own_address(settings, account):
    settings.TRUSTED_PROXY_COUNT = 1
    admin_user = staff_in(is_superuser=True)
    for attempt in range(settings.AXES_FAILURE_LIMIT + 2):
        # The attacker forges a different left part each time; the LB appends the real one.
        login(admin_user.username, "wrong", f"6.6.6.{attempt}, 203.0.113.9")

    locked = login(admin_user.username, PASSWORD, "203.0.113.9")
    admin_signs_in = login(admin_user.username, PASSWORD, "198.51.100.7")
    customer_signs_in = login(account.user.username, PASSWORD, "192.0.2.44")

    assert locked.status_code == 429
    assert admin_signs_in.status_code == 302 and admin_signs_in["Location"] == "/"
    assert customer_signs_in.status_code == 302


# --- failed credentials ---------------------------------------------------------------------


def bearer(token, remote="198.51.100.7"):
    return Client(REMOTE_ADDR=remote).get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token}"}
    )


def test_guessing_bearer_tokens_is_throttled_per_client_address(settings, account):
    settings.CREDENTIAL_FAILURE_LIMIT = 5
    good = token_for(account.user)
    answers = [bearer(f"guess-{n}").status_code for n in range(5)]

    blocked_bad = bearer("guess-6")
    blocked_good = bearer(good)  # a right guess from the guessing address is refused too
    elsewhere = bearer(good, remote="192.0.2.44")

    assert answers == [401] * 5
    assert blocked_bad.status_code == 429 and blocked_bad.json()["code"] == "rate_limited"
    assert blocked_good.status_code == 429
    assert elsewhere.status_code == 200


def test_a_right_guess_is_refused_also_when_no_rate_limit_is_set(settings, account, monkeypatch):
    # A correct token's failure budget is read with the rate limit; without a rate the
    # throttle still reads it.
    from opsplatform.api import api

    (throttle,) = api.throttle
    monkeypatch.setattr(throttle, "rate", None)
    settings.CREDENTIAL_FAILURE_LIMIT = 2
    good = token_for(account.user)
    assert [bearer(f"guess-{n}").status_code for n in range(2)] == [401, 401]
    assert bearer(good).status_code == 429
    assert bearer(good, remote="192.0.2.44").status_code == 200


def test_good_tokens_do_not_use_up_the_failure_budget(settings, account):
    settings.CREDENTIAL_FAILURE_LIMIT = 2
    good = token_for(account.user)
    assert [bearer(good).status_code for _ in range(6)] == [200] * 6


# --- never a 500 under /api/ ----------------------------------------------------------------


def event(occurred_at):
    return {"events": [{"type": "login", "occurred_at": occurred_at, "idempotency_key": "k"}]}


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-01-05T10:00:00+16:00",  # PostgreSQL accepts offsets up to ±15:59
        "2026-01-05T10:00:00-23:59",
        "0001-01-01T00:00:00+14:00",  # the year 0 in UTC (OverflowError)
        "9999-12-31T23:30:00-01:00",  # the year 10000 in UTC
        "10000-01-01T00:00:00Z",
        "0000-12-31T00:00:00Z",
    ],
)
def test_event_times_the_database_cannot_store_are_422(api, account, occurred_at):
    response = api.post("events", event(occurred_at))

    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["loc"][-1] == "occurred_at"
    assert not UsageEvent.objects.filter(account=account).exists()


def test_an_offset_within_range_is_stored_in_utc(api, account):
    response = api.post("events", event("2026-01-05T10:00:00+15:59"))

    assert response.status_code in (200, 201), response.content
    stored = UsageEvent.objects.get(account=account)
    assert stored.occurred_at.isoformat() == "2026-01-04T18:01:00+00:00"


def test_unknown_api_paths_answer_json_404(api):
    response = api.get("/api/v1/no-such-thing")
    nested = api.get("/api/nope")

    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert nested.status_code == 404 and nested.json()["code"] == "not_found"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert "no-store" in response["Cache-Control"]


def test_a_wrong_method_answers_json_405_with_allow(api):
    response = api.delete("/api/v1/me")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_form_encoded_bodies_answer_415(api, account):
    response = api.post(
        "events",
        raw="type=login&occurred_at=2026-01-05T10:00:00Z&idempotency_key=k",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert not UsageEvent.objects.filter(account=account).exists()


def test_an_unexpected_error_in_production_still_answers_the_envelope(
    settings, account, monkeypatch
):
    settings.DEBUG = False

    def explode(user):
        raise RuntimeError("boom")

    monkeypatch.setattr("opsplatform.api_core.account_of", explode)
    client = Client(raise_request_exception=False)
    response = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {token_for(account.user)}"}
    )

    assert response.status_code == 500
    assert response.json() == {
        "detail": "Internal error; it has been logged.",
        "code": "server_error",
    }


def date_hierarchy_admins():
    return [
        model_admin for model_admin in admin.site._registry.values() if model_admin.date_hierarchy
    ]


@pytest.mark.parametrize(
    "query",
    [
        "{field}__year=99999999999999999999999",
        "{field}__year=9999",
        "{field}__year=9999&{field}__month=12",
        "{field}__year=9999&{field}__month=12&{field}__day=31",
        "{field}__year=2026&{field}__month=99999999999999999999",
    ],
)
def test_admin_date_filters_out_of_range_redirect_instead_of_500(client, query):
    client.force_login(staff_in(is_superuser=True))
    admins = date_hierarchy_admins()
    assert admins, "at least one changelist has a date hierarchy"
    for model_admin in admins:
        meta = model_admin.model._meta
        url = f"/admin/{meta.app_label}/{meta.model_name}/?" + query.format(
            field=model_admin.date_hierarchy
        )
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].endswith("?e=1"), url


# --- headers and the API docs -----------------------------------------------------------------


def csp(response):
    return response["Content-Security-Policy"]


def test_every_page_sends_a_same_origin_content_security_policy(client, account):
    client.force_login(account.user)
    pages = ["/login/", "/account/", "/account/tokens/", "/api/v1/docs"]
    for path in pages:
        policy = csp(client.get(path))
        assert "default-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert not re.search(r"https?:|\*", policy), (path, policy)
    customer_policy = csp(client.get("/account/"))
    assert "unsafe-inline" not in customer_policy and "unsafe-eval" not in customer_policy


def test_api_answers_carry_the_api_policy_every_time(api, client):
    def directives(response):
        return sorted(part.strip() for part in csp(response).split(";"))

    expected = [
        "base-uri 'self'",
        "connect-src 'self'",
        "default-src 'self'",
        "font-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "img-src 'self' data:",
        "object-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
    ]
    assert directives(api.get("me")) == expected
    assert directives(api.get("me")) == expected  # the second answer: the policy built once
    assert directives(client.get("/api/v1/no-such-path")) == expected  # 404s under /api/ too
    assert "unsafe-inline" not in csp(client.get("/login/"))


def test_admin_policy_adds_no_origin(client):
    client.force_login(staff_in(is_superuser=True))
    policy = csp(client.get("/admin/"))
    assert "default-src 'self'" in policy
    assert not re.search(r"https?:|\*", policy)


def test_customer_pages_are_not_cached(client, account):
    client.force_login(account.user)
    for path in ["/account/", "/account/tokens/", "/account/billing/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response["Cache-Control"], path


def test_api_answers_are_not_cached(api, client, account):
    from django.http import HttpResponse
    from django.utils.cache import add_never_cache_headers

    expected = HttpResponse()
    add_never_cache_headers(expected)  # Django's own words for "never cache"
    for response in (api.get("me"), client.get("/api/v1/no-such-path")):
        assert (
            response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"
        )
        assert response["Cache-Control"] == expected["Cache-Control"]
        assert response["Expires"]  # an HTTP date: now
    client.force_login(account.user)
    assert "no-store" in client.get("/account/")["Cache-Control"]


def test_api_docs_load_swagger_from_our_own_static_files(client):
    response = client.get("/api/v1/docs")
    html = response.content.decode()

    assert response.status_code == 200
    assert "/static/ninja/swagger-ui-bundle.js" in html
    # Nothing from another origin (a CSP nonce may contain the letters "cdn" by chance).
    assert re.findall(r"(?:src|href)=[\"'](?:https?:)?//", html) == []


# --- the cache table --------------------------------------------------------------------------


DB_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "opsplatform_cache_probe",
    }
}


def test_the_migration_creates_the_cache_table(transactional_db):
    from importlib import import_module

    migration = import_module("opsplatform.migrations.0003_create_cache_table")
    with override_settings(CACHES=DB_CACHE):
        try:
            with connection.schema_editor() as editor:
                migration.create_cache_table(None, editor)
            assert "opsplatform_cache_probe" in connection.introspection.table_names()
            with connection.schema_editor() as editor:  # a second run is harmless
                migration.create_cache_table(None, editor)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS opsplatform_cache_probe")


def test_healthz_reports_a_broken_cache_as_degraded(client, monkeypatch):
    """The API serves without its cache (rate limits let requests through), so the process
    stays in the load balancer, and the body says what is wrong."""
    from django.core.cache.backends.db import DatabaseCache

    missing = DatabaseCache("no_such_cache_table", {})
    monkeypatch.setattr("opsplatform.views.cache", missing)

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["cache"].startswith("error:")
    assert body["database"] == "ok"


def test_healthz_reports_the_cache(client):
    body = client.get("/healthz").json()
    assert body["cache"] == "ok" and body["status"] == "ok"
