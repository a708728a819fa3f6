"""Every monitor against hand-built records, passing and failing, with its evidence; the
refresh is stored (with history) and safe to run twice; a broken monitor does not hide the
others."""

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import override_settings

from compliance import monitors, services
from compliance.models import Monitor
from opsplatform.models import ApiToken, UserSession
from opsplatform.services import issue_api_token
from tests.factories import AccountFactory, staff_in
from userflows.models import DeletionRequest, ExportRequest

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def run(key):
    (monitor,) = services.run_monitors(keys=[key], now=NOW)
    return monitor


def export(*, created, status="completed", completed=None, expires=None, file=""):
    return ExportRequest.objects.create(
        account=AccountFactory(),
        format="csv",
        date_from=dt.date(2026, 1, 1),
        date_to=dt.date(2026, 1, 31),
        status=status,
        created_at=created,
        completed_at=completed,
        expires_at=expires,
        file=file,
    )


def deletion(*, requested, scheduled, status="scheduled", completed=None):
    return DeletionRequest.objects.create(
        account=AccountFactory(),
        status=status,
        requested_at=requested,
        scheduled_for=scheduled,
        completed_at=completed,
    )


# --- data-subject requests ----------------------------------------------------------------


def test_exports_answered_within_30_days_pass():
    export(created=NOW - 40 * DAY, completed=NOW - 39 * DAY)
    export(created=NOW - 31 * DAY, completed=NOW - 1 * DAY - dt.timedelta(hours=1))  # 30 days
    export(created=NOW - 5 * DAY, status="pending")  # still within its month
    m = run("dsr-exports-in-time")
    assert m.passed is True
    assert m.evidence["requested"] == 3
    assert m.evidence["completed"] == 2
    assert m.evidence["completed_late"] == 0
    assert m.evidence["open_overdue"] == 0
    assert m.evidence["oldest_offender"] is None
    assert m.requirement_codes == ["GDPR-12", "GDPR-15", "GDPR-20", "CCPA-1798.110"]


def test_a_late_export_and_an_open_one_past_30_days_fail_with_the_oldest_offender():
    export(created=NOW - 40 * DAY, completed=NOW - 39 * DAY)
    late = export(created=NOW - 50 * DAY, completed=NOW - 10 * DAY)
    export(created=NOW - 31 * DAY, status="processing")
    m = run("dsr-exports-in-time")
    assert m.passed is False
    assert (m.evidence["completed_late"], m.evidence["open_overdue"]) == (1, 1)
    assert m.evidence["oldest_offender"]["id"] == late.pk
    assert m.evidence["oldest_offender"]["admin_url"] == (
        f"/admin/userflows/exportrequest/{late.pk}/change/"
    )
    assert m.summary == "2 of 3 export requests completed; 1 late, 1 open past 30 days."
    assert m.remediation.startswith("Complete or fail each export within 30 days")


def test_deletions_executed_within_30_days_pass():
    deletion(requested=NOW - 60 * DAY, scheduled=NOW - 31 * DAY, status="completed",
             completed=NOW - 31 * DAY)  # fmt: skip
    deletion(requested=NOW - 10 * DAY, scheduled=NOW + 20 * DAY)
    deletion(requested=NOW - 90 * DAY, scheduled=NOW - 60 * DAY, status="canceled")
    m = run("dsr-deletions-in-time")
    assert m.passed is True
    assert (m.evidence["requested"], m.evidence["completed"], m.evidence["canceled"]) == (3, 1, 1)


def test_a_deletion_executed_after_30_days_or_pending_past_them_fails():
    late = deletion(
        requested=NOW - 60 * DAY,
        scheduled=NOW - 29 * DAY,
        status="completed",
        completed=NOW - 29 * DAY,
    )  # fmt: skip  (31 days after the request)
    deletion(requested=NOW - 35 * DAY, scheduled=NOW - 5 * DAY, status="failed")
    m = run("dsr-deletions-in-time")
    assert m.passed is False
    assert (m.evidence["completed_late"], m.evidence["open_overdue"]) == (1, 1)
    assert m.evidence["oldest_offender"]["id"] == late.pk


def test_no_deletion_overdue_passes_within_the_sweeps_slack():
    deletion(requested=NOW - 29 * DAY, scheduled=NOW - dt.timedelta(minutes=100))
    m = run("deletions-not-overdue")
    assert m.passed is True
    assert m.evidence["overdue"] == 0


def test_a_deletion_three_hours_past_its_date_is_overdue():
    """The sweep runs every 15 minutes: three hours late means it is not running."""
    deletion(requested=NOW - 29 * DAY, scheduled=NOW - dt.timedelta(hours=3))
    m = run("deletions-not-overdue")
    assert m.passed is False
    assert m.evidence["overdue"] == 1


def test_a_deletion_past_its_date_fails():
    overdue = deletion(requested=NOW - 40 * DAY, scheduled=NOW - 3 * DAY, status="failed")
    deletion(requested=NOW - 40 * DAY, scheduled=NOW - 2 * DAY)
    m = run("deletions-not-overdue")
    assert m.passed is False
    assert (m.evidence["overdue"], m.evidence["failed"]) == (2, 1)
    assert m.evidence["oldest_offender"]["id"] == overdue.pk


def test_export_files_gone_after_retention_pass():
    export(created=NOW - 20 * DAY, completed=NOW - 20 * DAY, expires=NOW - 13 * DAY,
           status="expired")  # fmt: skip
    export(created=NOW - 2 * DAY, completed=NOW - 2 * DAY, expires=NOW + 5 * DAY,
           file="exports/a.zip")  # fmt: skip
    export(
        created=NOW - 8 * DAY,
        completed=NOW - 8 * DAY,
        expires=NOW - dt.timedelta(hours=1),
        file="exports/b.zip",
    )  # fmt: skip  within the hourly sweep's slack
    m = run("export-files-removed")
    assert m.passed is True
    assert (m.evidence["past_expiry"], m.evidence["file_left_after_end"]) == (0, 0)


def test_a_file_kept_past_retention_or_left_on_an_ended_request_fails():
    kept = export(created=NOW - 20 * DAY, completed=NOW - 20 * DAY, expires=NOW - 13 * DAY,
                  file="exports/old.zip")  # fmt: skip
    export(created=NOW - 3 * DAY, status="failed", file="exports/partial.zip")
    m = run("export-files-removed")
    assert m.passed is False
    assert (m.evidence["past_expiry"], m.evidence["file_left_after_end"]) == (1, 1)
    assert m.evidence["oldest_offender"]["id"] == kept.pk


def test_expired_sessions_cleared():
    UserSession.objects.create(session_key="a" * 32, session_data="x", expire_date=NOW + DAY)
    assert run("expired-sessions-cleared").passed is True
    UserSession.objects.create(session_key="b" * 32, session_data="x", expire_date=NOW - 2 * DAY)
    m = run("expired-sessions-cleared")
    assert m.passed is False
    assert m.evidence["expired_sessions"] == 1


# --- history and access -------------------------------------------------------------------


def test_personal_data_history_names_the_models_without_it():
    m = run("personal-data-history")
    # auth.User and userflows.Invoice hold personal data and keep no history, undeclared.
    assert m.passed is False
    assert sorted(m.evidence["without_history"]) == ["auth.User", "userflows.Invoice"]
    assert m.evidence["exempt"]["support.TicketMessage"] == (
        "Append-only thread: messages are never edited"
    )
    assert m.evidence["undeclared_errors"] == []
    assert m.requirement_codes == ["SOC2-CC8.1", "GDPR-30"]


def test_personal_data_history_passes_when_every_model_keeps_history_or_is_exempt(monkeypatch):
    from compliance import processing

    monkeypatch.setattr(
        processing,
        "_declarations",
        lambda: [
            ("opsplatform", {"model": "opsplatform.Account", "fields": ["name"], "purpose": "p",
                             "legal_basis": "b", "retention": "r"}),
            ("support", {"model": "support.TicketMessage", "fields": ["body"], "purpose": "p",
                         "legal_basis": "b", "retention": "r", "history_exempt": "append-only"}),
        ],
    )  # fmt: skip
    m = run("personal-data-history")
    assert m.passed is True
    assert m.evidence["without_history"] == []
    assert m.summary == (
        "1 of 2 personal-data models keep history; 1 exempt with a reason, 0 without history."
    )


def test_staff_accounts_unused_for_90_days_fail():
    user_model = get_user_model()
    active = staff_in()
    user_model.objects.filter(pk=active.pk).update(last_login=NOW - 10 * DAY)
    assert run("stale-staff-accounts").passed is True
    stale = staff_in()
    user_model.objects.filter(pk=stale.pk).update(last_login=NOW - 91 * DAY)
    never = staff_in()
    user_model.objects.filter(pk=never.pk).update(last_login=None, date_joined=NOW - 100 * DAY)
    m = run("stale-staff-accounts")
    assert m.passed is False
    assert (m.evidence["active_staff"], m.evidence["unused"]) == (3, 2)
    assert m.evidence["oldest_offender"]["id"] == never.pk  # never signed in comes first


def test_api_tokens_unused_for_90_days_fail():
    user = staff_in()
    fresh, _ = issue_api_token(user=user, label="fresh")
    ApiToken.objects.filter(pk=fresh.pk).update(last_used_at=NOW - 5 * DAY)
    revoked, _ = issue_api_token(user=user, label="revoked")
    ApiToken.objects.filter(pk=revoked.pk).update(created_at=NOW - 200 * DAY, revoked_at=NOW)
    assert run("stale-api-tokens").passed is True
    old, _ = issue_api_token(user=user, label="old")
    ApiToken.objects.filter(pk=old.pk).update(
        created_at=NOW - 120 * DAY, last_used_at=NOW - 95 * DAY
    )
    m = run("stale-api-tokens")
    assert m.passed is False
    assert (m.evidence["live_tokens"], m.evidence["unused"]) == (2, 1)
    assert m.evidence["oldest_offender"]["id"] == old.pk
    assert m.evidence["oldest_offender"]["token_prefix"] == old.token_prefix


@override_settings(COMPLIANCE_MAX_SUPERUSERS=2)
def test_superusers_counted_against_the_limit():
    staff_in(is_superuser=True)
    staff_in(is_superuser=True)
    staff_in(is_superuser=True, is_active=False)
    m = run("superusers")
    assert m.passed is True
    assert m.evidence["superusers"] == 2
    staff_in(is_superuser=True)
    m = run("superusers")
    assert m.passed is False
    assert m.summary == "3 active superuser(s) (at most 2)."


@override_settings(
    DEBUG=False,
    SECURE_SSL_REDIRECT=True,
    SESSION_COOKIE_SECURE=True,
    CSRF_COOKIE_SECURE=True,
    SECURE_HSTS_SECONDS=31536000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    SECURE_HSTS_PRELOAD=True,
    SECRET_KEY="k" * 20 + "Zq9!xW2@pL7#vB4$nM6%tR8^yU1&iO3*aS5(dF0)",
    ALLOWED_HOSTS=["ops.example.com"],
)
def test_deploy_checks_pass_on_production_settings():
    m = run("deploy-checks")
    assert m.evidence["findings"] == []
    assert m.passed is True


@override_settings(SESSION_COOKIE_SECURE=False, SECURE_HSTS_SECONDS=0)
def test_deploy_checks_fail_with_the_findings():
    m = run("deploy-checks")
    assert m.passed is False
    ids = {f["id"] for f in m.evidence["findings"]}
    assert {"security.W012", "security.W004"} <= ids
    assert m.requirement_codes == ["SOC2-CC6.7", "GDPR-32"]


def lockouts(count, when):
    for i in range(count):
        attempt = AccessAttempt.objects.create(
            username=f"user{when.timestamp()}-{i}", ip_address="198.51.100.7", user_agent="ua",
            http_accept="*/*", path_info="/login/", get_data="", post_data="",
            failures_since_start=5,
        )  # fmt: skip
        AccessAttempt.objects.filter(pk=attempt.pk).update(attempt_time=when)


def test_lockouts_at_the_usual_rate_pass():
    lockouts(10, NOW - dt.timedelta(hours=2))
    lockouts(14, NOW - 3 * DAY)  # 2 a day over the previous week
    m = run("lockout-spike")
    assert m.passed is True
    assert (m.evidence["lockouts_24h"], m.evidence["threshold"]) == (10, 10)


def test_a_spike_of_lockouts_fails():
    lockouts(70, NOW - 3 * DAY)  # 10 a day → threshold 30
    lockouts(31, NOW - dt.timedelta(hours=1))
    AccessAttempt.objects.create(
        username="below-limit",
        ip_address="198.51.100.8",
        user_agent="ua",
        http_accept="*/*",
        path_info="/login/",
        get_data="",
        post_data="",
        failures_since_start=2,
    )  # fmt: skip  not a lockout
    m = run("lockout-spike")
    assert m.passed is False
    assert m.evidence["lockouts_24h"] == 31
    assert m.evidence["lockouts_previous_7_days"] == 70
    assert m.evidence["threshold"] == 30
    assert m.requirement_codes == ["SOC2-CC7.2"]


# --- the refresh --------------------------------------------------------------------------


def test_run_all_stores_every_monitor_and_twice_is_safe():
    first = services.run_monitors(now=NOW)
    second = services.run_monitors(now=NOW)
    assert [m.key for m in first] == [m.key for m in second] == [d.key for d in monitors.MONITORS]
    assert Monitor.objects.count() == len(monitors.MONITORS) == 11
    m = Monitor.objects.get(key="superusers")
    assert m.checked_at == NOW
    assert m.history.count() == 3  # created, then one row per refresh


def test_a_broken_monitor_is_stored_as_failing_and_the_others_run(monkeypatch):
    def broken(now):
        raise RuntimeError("table missing")

    definition = monitors.BY_KEY["superusers"]
    patched = monitors.MonitorDef(
        definition.key,
        definition.title,
        definition.requirement_codes,
        definition.remediation,
        broken,
    )
    monkeypatch.setattr(
        monitors, "MONITORS", [patched if d.key == "superusers" else d for d in monitors.MONITORS]
    )
    monkeypatch.setitem(monitors.BY_KEY, "superusers", patched)
    found = {m.key: m for m in services.run_monitors(now=NOW)}
    assert found["superusers"].passed is False
    assert found["superusers"].error == "RuntimeError: table missing"
    assert found["stale-api-tokens"].passed is True


def test_unknown_monitor_keys_are_refused():
    from opsplatform.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        services.run_monitors(keys=["nope"])
    assert caught.value.field == "keys"
