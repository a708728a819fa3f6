"""Continuous monitors: each reads the platform's own records (other apps' rows by model
label, never by import, and never writing them) and says pass or fail with its evidence —
counts, the oldest offender with its admin link — and the requirement codes it supports.

Every monitor is a set-based query or two (aggregates in SQL), so a refresh costs the same
whatever the number of rows.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import checks
from django.db.models import Count, F, Min, Q
from django.urls import NoReverseMatch, reverse

DSR_DEADLINE_DAYS = 30
STALE_DAYS = 90
# The deletion sweep runs daily and the export sweep hourly: a row is overdue only once the
# sweep has had its chance.
DELETION_SWEEP_SLACK = dt.timedelta(hours=2)
EXPORT_SWEEP_SLACK = dt.timedelta(hours=2)
SESSION_SLACK = dt.timedelta(days=1)
LOCKOUT_WINDOW = dt.timedelta(hours=24)
LOCKOUT_BASELINE_DAYS = 7
LOCKOUT_FLOOR = 10  # fewer lockouts than this in a day is never a spike
LOCKOUT_FACTOR = 3  # a spike: more than 3 x the daily mean of the previous 7 days


@dataclass
class Outcome:
    passed: bool
    summary: str
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MonitorDef:
    key: str
    title: str
    requirement_codes: tuple[str, ...]
    remediation: str
    run: Callable[[dt.datetime], Outcome]


def admin_link(label: str, pk) -> str | None:
    app_label, model = label.lower().split(".")
    try:
        return reverse(f"admin:{app_label}_{model}_change", args=[pk])
    except NoReverseMatch:
        return None


def _offender(label: str, row: dict | None, when_field: str) -> dict | None:
    if row is None:
        return None
    return {
        "model": label,
        "id": row["pk"],
        when_field: row[when_field].isoformat() if row.get(when_field) else None,
        "admin_url": admin_link(label, row["pk"]),
    }


def _oldest(qs, when_field: str) -> dict | None:
    return qs.order_by(when_field, "pk").values("pk", when_field).first()


# --- data-subject requests ----------------------------------------------------------------


def exports_answered_in_time(now: dt.datetime) -> Outcome:
    export = apps.get_model("userflows", "ExportRequest")
    deadline = dt.timedelta(days=DSR_DEADLINE_DAYS)
    open_statuses = ("pending", "processing")
    counts = export.objects.aggregate(
        requested=Count("pk"),
        completed=Count("pk", filter=Q(completed_at__isnull=False)),
        completed_late=Count("pk", filter=Q(completed_at__gt=F("created_at") + deadline)),
        open_overdue=Count("pk", filter=Q(status__in=open_statuses, created_at__lt=now - deadline)),
        failed=Count("pk", filter=Q(status="failed")),
    )
    offenders = export.objects.filter(
        Q(completed_at__gt=F("created_at") + deadline)
        | Q(status__in=open_statuses, created_at__lt=now - deadline)
    )
    bad = counts["completed_late"] + counts["open_overdue"]
    return Outcome(
        bad == 0,
        f"{counts['completed']} of {counts['requested']} export requests completed; "
        f"{counts['completed_late']} late, {counts['open_overdue']} open past "
        f"{DSR_DEADLINE_DAYS} days.",
        {
            **counts,
            "deadline_days": DSR_DEADLINE_DAYS,
            "oldest_offender": _offender(
                "userflows.ExportRequest", _oldest(offenders, "created_at"), "created_at"
            ),
        },
    )


def deletions_executed_in_time(now: dt.datetime) -> Outcome:
    deletion = apps.get_model("userflows", "DeletionRequest")
    deadline = dt.timedelta(days=DSR_DEADLINE_DAYS)
    pending = ("scheduled", "failed")
    counts = deletion.objects.aggregate(
        requested=Count("pk"),
        completed=Count("pk", filter=Q(status="completed")),
        completed_late=Count("pk", filter=Q(completed_at__gt=F("requested_at") + deadline)),
        open_overdue=Count("pk", filter=Q(status__in=pending, requested_at__lt=now - deadline)),
        canceled=Count("pk", filter=Q(status="canceled")),
    )
    offenders = deletion.objects.filter(
        Q(completed_at__gt=F("requested_at") + deadline)
        | Q(status__in=pending, requested_at__lt=now - deadline)
    )
    bad = counts["completed_late"] + counts["open_overdue"]
    return Outcome(
        bad == 0,
        f"{counts['completed']} of {counts['requested']} deletion requests executed; "
        f"{counts['completed_late']} late, {counts['open_overdue']} pending past "
        f"{DSR_DEADLINE_DAYS} days.",
        {
            **counts,
            "deadline_days": DSR_DEADLINE_DAYS,
            "grace_days": settings.DELETION_GRACE_DAYS,
            "oldest_offender": _offender(
                "userflows.DeletionRequest", _oldest(offenders, "requested_at"), "requested_at"
            ),
        },
    )


def deletions_not_overdue(now: dt.datetime) -> Outcome:
    deletion = apps.get_model("userflows", "DeletionRequest")
    overdue = deletion.objects.filter(
        status__in=("scheduled", "failed"), scheduled_for__lt=now - DELETION_SWEEP_SLACK
    )
    stats = overdue.aggregate(count=Count("pk"), failed=Count("pk", filter=Q(status="failed")))
    return Outcome(
        stats["count"] == 0,
        f"{stats['count']} deletion(s) past their date ({stats['failed']} failed).",
        {
            "overdue": stats["count"],
            "failed": stats["failed"],
            "slack_hours": DELETION_SWEEP_SLACK.total_seconds() / 3600,
            "oldest_offender": _offender(
                "userflows.DeletionRequest", _oldest(overdue, "scheduled_for"), "scheduled_for"
            ),
        },
    )


def export_files_removed(now: dt.datetime) -> Outcome:
    export = apps.get_model("userflows", "ExportRequest")
    kept_past_expiry = export.objects.filter(
        status="completed", expires_at__lt=now - EXPORT_SWEEP_SLACK
    )
    finished_with_file = export.objects.filter(
        status__in=("expired", "failed", "canceled")
    ).exclude(file="")
    offenders = kept_past_expiry | finished_with_file
    stats = {
        "past_expiry": kept_past_expiry.count(),
        "file_left_after_end": finished_with_file.count(),
    }
    bad = stats["past_expiry"] + stats["file_left_after_end"]
    return Outcome(
        bad == 0,
        f"{stats['past_expiry']} export file(s) kept past retention, "
        f"{stats['file_left_after_end']} left on ended requests.",
        {
            **stats,
            "retention_days": settings.EXPORT_RETENTION_DAYS,
            "oldest_offender": _offender(
                "userflows.ExportRequest", _oldest(offenders, "created_at"), "created_at"
            ),
        },
    )


def expired_sessions_cleared(now: dt.datetime) -> Outcome:
    session = apps.get_model("opsplatform", "UserSession")
    stale = session.objects.filter(expire_date__lt=now - SESSION_SLACK)
    stats = stale.aggregate(count=Count("pk"), oldest=Min("expire_date"))
    return Outcome(
        stats["count"] == 0,
        f"{stats['count']} expired session(s) still stored.",
        {
            "expired_sessions": stats["count"],
            "oldest_expiry": stats["oldest"].isoformat() if stats["oldest"] else None,
        },
    )


# --- history and access -------------------------------------------------------------------


def personal_data_history(now: dt.datetime) -> Outcome:
    from compliance import processing

    rows = processing.personal_data_models()
    missing = [r for r in rows if not r["has_history"] and not r["history_exempt"]]
    exempt = [r for r in rows if not r["has_history"] and r["history_exempt"]]
    return Outcome(
        not missing,
        f"{len(rows) - len(missing) - len(exempt)} of {len(rows)} personal-data models keep "
        f"history; {len(exempt)} exempt with a reason, {len(missing)} without history.",
        {
            "models": len(rows),
            "without_history": [r["model"] for r in missing],
            "exempt": {r["model"]: r["history_exempt"] for r in exempt},
            "undeclared_errors": processing.declaration_errors(),
        },
    )


def stale_staff_accounts(now: dt.datetime) -> Outcome:
    user = get_user_model()
    cutoff = now - dt.timedelta(days=STALE_DAYS)
    stale = user.objects.filter(is_active=True, is_staff=True).filter(
        Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff)
    )
    stats = user.objects.filter(is_active=True, is_staff=True).aggregate(staff=Count("pk"))
    stale_count = stale.count()
    oldest = stale.order_by(F("last_login").asc(nulls_first=True), "date_joined", "pk").first()
    return Outcome(
        stale_count == 0,
        f"{stale_count} of {stats['staff']} active staff accounts unused for {STALE_DAYS} days.",
        {
            "active_staff": stats["staff"],
            "unused": stale_count,
            "days": STALE_DAYS,
            "oldest_offender": None
            if oldest is None
            else {
                "model": "auth.User",
                "id": oldest.pk,
                "username": oldest.get_username(),
                "last_login": oldest.last_login.isoformat() if oldest.last_login else None,
                "admin_url": admin_link(
                    f"{user._meta.app_label}.{user._meta.model_name}", oldest.pk
                ),
            },
        },
    )


def stale_api_tokens(now: dt.datetime) -> Outcome:
    token = apps.get_model("opsplatform", "ApiToken")
    cutoff = now - dt.timedelta(days=STALE_DAYS)
    live = token.objects.filter(revoked_at__isnull=True)
    stale = live.filter(
        Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    )
    stats = live.aggregate(live=Count("pk"))
    stale_count = stale.count()
    oldest = (
        stale.order_by(F("last_used_at").asc(nulls_first=True), "created_at", "pk")
        .values("pk", "token_prefix", "last_used_at", "created_at")
        .first()
    )
    return Outcome(
        stale_count == 0,
        f"{stale_count} of {stats['live']} live API tokens unused for {STALE_DAYS} days.",
        {
            "live_tokens": stats["live"],
            "unused": stale_count,
            "days": STALE_DAYS,
            "oldest_offender": None
            if oldest is None
            else {
                "model": "opsplatform.ApiToken",
                "id": oldest["pk"],
                "token_prefix": oldest["token_prefix"],
                "last_used_at": oldest["last_used_at"].isoformat()
                if oldest["last_used_at"]
                else None,
                "admin_url": admin_link("opsplatform.ApiToken", oldest["pk"]),
            },
        },
    )


def superusers(now: dt.datetime) -> Outcome:
    user = get_user_model()
    limit = settings.COMPLIANCE_MAX_SUPERUSERS
    names = list(
        user.objects.filter(is_active=True, is_superuser=True)
        .order_by("pk")
        .values_list(user.USERNAME_FIELD, flat=True)[: limit + 10]
    )
    count = user.objects.filter(is_active=True, is_superuser=True).count()
    return Outcome(
        count <= limit,
        f"{count} active superuser(s) (at most {limit}).",
        {"superusers": count, "limit": limit, "usernames": names},
    )


def deploy_checks(now: dt.datetime) -> Outcome:
    """`manage.py check --deploy`, in process: the security checks, deployment ones included,
    against the running settings."""
    found = [
        m
        for m in checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
        if not m.is_silenced()
    ]
    serious = [m for m in found if m.level >= checks.WARNING]
    return Outcome(
        not serious,
        f"{len(serious)} deploy check(s) raised." if serious else "The deploy checks pass.",
        {
            "findings": [
                {"id": m.id, "level": _level_name(m.level), "message": str(m.msg)} for m in serious
            ]
        },
    )


def _level_name(level: int) -> str:
    for name in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        if level >= getattr(checks, name):
            return name.lower()
    return "debug"


def lockout_spike(now: dt.datetime) -> Outcome:
    attempt = apps.get_model("axes", "AccessAttempt")
    limit = settings.AXES_FAILURE_LIMIT
    since = now - LOCKOUT_WINDOW
    base_from = since - dt.timedelta(days=LOCKOUT_BASELINE_DAYS)
    counts = attempt.objects.filter(failures_since_start__gte=limit).aggregate(
        last_24h=Count("pk", filter=Q(attempt_time__gte=since, attempt_time__lte=now)),
        baseline=Count("pk", filter=Q(attempt_time__gte=base_from, attempt_time__lt=since)),
    )
    daily_mean = counts["baseline"] / LOCKOUT_BASELINE_DAYS
    threshold = max(LOCKOUT_FLOOR, int(LOCKOUT_FACTOR * daily_mean))
    spike = counts["last_24h"] > threshold
    return Outcome(
        not spike,
        f"{counts['last_24h']} lockout(s) in 24 hours (spike above {threshold}).",
        {
            "lockouts_24h": counts["last_24h"],
            "lockouts_previous_7_days": counts["baseline"],
            "threshold": threshold,
            "failure_limit": limit,
            "admin_url": _changelist("axes.AccessAttempt"),
        },
    )


def _changelist(label: str) -> str | None:
    app_label, model = label.lower().split(".")
    try:
        return reverse(f"admin:{app_label}_{model}_changelist")
    except NoReverseMatch:
        return None


MONITORS = [
    MonitorDef(
        "dsr-exports-in-time",
        "Access requests answered within 30 days",
        ("GDPR-12", "GDPR-15", "GDPR-20", "CCPA-1798.110"),
        "Complete or fail each export within 30 days of the request: check the worker and "
        "the export queue, and answer the requester of the oldest offender.",
        exports_answered_in_time,
    ),
    MonitorDef(
        "dsr-deletions-in-time",
        "Deletion requests executed within 30 days",
        ("GDPR-12", "GDPR-17", "CCPA-1798.105"),
        "Execute each deletion within 30 days of the request: keep DELETION_GRACE_DAYS under "
        "30 (the daily sweep adds up to a day) and retry failed deletions.",
        deletions_executed_in_time,
    ),
    MonitorDef(
        "deletions-not-overdue",
        "No deletion overdue past its date",
        ("GDPR-17", "CCPA-1798.105"),
        "Run the deletion sweep (userflows.run_due_deletions) and fix the error of each failed "
        "deletion.",
        deletions_not_overdue,
    ),
    MonitorDef(
        "export-files-removed",
        "Export files gone after the retention period",
        ("GDPR-5.1.e",),
        "Run the export sweep (userflows.expire_exports) and delete the leftover files.",
        export_files_removed,
    ),
    MonitorDef(
        "expired-sessions-cleared",
        "Expired sessions removed",
        ("GDPR-5.1.e",),
        "Schedule `manage.py clearsessions` daily.",
        expired_sessions_cleared,
    ),
    MonitorDef(
        "personal-data-history",
        "Every personal-data model keeps history",
        ("SOC2-CC8.1", "GDPR-30"),
        "Add HistoricalRecords() to each model listed, or declare in its app's privacy.py why "
        "it needs none (history_exempt).",
        personal_data_history,
    ),
    MonitorDef(
        "stale-staff-accounts",
        "No staff account unused for 90 days",
        ("SOC2-CC6.1",),
        "Deactivate staff accounts unused for 90 days (the oldest first).",
        stale_staff_accounts,
    ),
    MonitorDef(
        "stale-api-tokens",
        "No API token unused for 90 days",
        ("SOC2-CC6.1",),
        "Revoke API tokens unused for 90 days.",
        stale_api_tokens,
    ),
    MonitorDef(
        "superusers",
        "Superusers kept to a few",
        ("SOC2-CC6.1",),
        "Remove superuser status from accounts that do not need it; use groups instead.",
        superusers,
    ),
    MonitorDef(
        "deploy-checks",
        "Running settings pass Django's deploy checks",
        ("SOC2-CC6.7", "GDPR-32"),
        "Fix each finding of `manage.py check --deploy` (HTTPS redirect, HSTS, secure cookies, "
        "DEBUG off, a strong SECRET_KEY).",
        deploy_checks,
    ),
    MonitorDef(
        "lockout-spike",
        "No spike in sign-in lockouts",
        ("SOC2-CC7.2",),
        "Investigate the locked-out usernames and addresses (axes access attempts): block the "
        "source or reset the affected accounts.",
        lockout_spike,
    ),
]
BY_KEY = {m.key: m for m in MONITORS}


def standards_of(codes) -> list[str]:
    return sorted({code.split("-", 1)[0].lower() for code in codes})
