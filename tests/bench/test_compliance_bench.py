"""The audit trail on PostgreSQL over a million history rows: the first page, a page deep in
the trail (by cursor), filtered by user, by a date range and by model; each in seconds and
queries, and the same page at 10 rows for comparison. Then one refresh of every monitor
over 100k export and deletion requests.

COMPLIANCE_BENCH_ROWS (default 1000000) sets the history rows."""

import datetime as dt
import os
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from compliance import audit, services
from compliance.models import Requirement
from tests.bench.conftest import report
from tests.factories import staff_in

ROWS = int(os.environ.get("COMPLIANCE_BENCH_ROWS", "1000000"))
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


OBJECTS = int(os.environ.get("COMPLIANCE_BENCH_OBJECTS", "100000"))


def _fill_history(rows: int, user_id: int, objects: int = OBJECTS) -> None:
    """`rows` history rows, one a second from T0, over `objects` tracked rows (history keeps
    no foreign key to them: ids past the 30 real requirements stand for edited rows), so
    each object has rows / objects versions; every 10th row by `user_id`. Set-based
    INSERT ... SELECT."""
    table = Requirement.history.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")  # TRUNCATE waits on deferred FK checks
        cursor.execute(
            f"""
            INSERT INTO {table} (id, code, standard, title, text, severity, rule, remediation,
                catalogue_version, sort_order, history_date, history_change_reason,
                history_type, history_user_id)
            SELECT g %% %s + 1, r.code, r.standard, r.title || ' v' || g, r.text, r.severity,
                r.rule, r.remediation, r.catalogue_version, r.sort_order,
                %s::timestamptz + g * interval '1 second', NULL, '~',
                CASE WHEN g %% 10 = 0 THEN %s END
            FROM generate_series(1, %s) g
            JOIN compliance_requirement r ON r.sort_order = g %% 30
            """,
            [objects, T0, user_id, rows],
        )
        cursor.execute(f"ANALYZE {table}")


def _measure(**kwargs):
    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        page = audit.audit_page(**kwargs)
        seconds = time.perf_counter() - start
    return page, seconds, len(ctx.captured_queries)


@pytest.mark.django_db
def test_audit_trail_on_a_million_history_rows(postgres_only):
    officer = staff_in("compliance")
    _fill_history(10, officer.pk)
    _, small_s, small_q = _measure()
    build = time.perf_counter()
    _fill_history(ROWS, officer.pk)
    build = time.perf_counter() - build

    first, first_s, first_q = _measure()
    assert len(first.entries) == 50 and first.next_cursor
    middle = (T0 + dt.timedelta(seconds=ROWS // 2)).isoformat()
    deep, deep_s, deep_q = _measure(cursor=f"{middle}|compliance.Requirement|{10**12}")
    assert len(deep.entries) == 50
    by_user, user_s, user_q = _measure(user_id=officer.pk)
    assert {e.user_id for e in by_user.entries} == {officer.pk}
    day = (T0 + dt.timedelta(seconds=ROWS // 3)).date()
    by_day, day_s, day_q = _measure(date_from=day, date_to=day)
    assert by_day.entries and all(e.history_date.date() == day for e in by_day.entries)
    by_model, model_s, model_q = _measure(model="compliance.Requirement")
    assert all(e.changes for e in by_model.entries)

    report(
        f"audit trail, {ROWS:,} history rows over {OBJECTS:,} objects "
        f"({len(audit.history_models())} history tables)",
        build_seconds=f"{build:.1f}",
        page_at_10_rows=f"{small_s * 1000:.0f} ms, {small_q} queries",
        first_page=f"{first_s * 1000:.0f} ms, {first_q} queries",
        page_in_the_middle=f"{deep_s * 1000:.0f} ms, {deep_q} queries",
        one_user=f"{user_s * 1000:.0f} ms, {user_q} queries",
        one_day=f"{day_s * 1000:.0f} ms, {day_q} queries",
        one_model=f"{model_s * 1000:.0f} ms, {model_q} queries",
    )
    assert max(first_q, deep_q, user_q, day_q) <= 2 * len(audit.history_models()) + 1
    assert first_s < 2.0 and deep_s < 2.0


@pytest.mark.django_db
def test_monitors_over_100k_requests(postgres_only):
    from opsplatform.models import Account, Persona

    requests = int(os.environ.get("COMPLIANCE_BENCH_REQUESTS", "100000"))
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    persona = Persona.objects.first()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth_user (password, is_superuser, username, first_name, last_name,
                email, is_staff, is_active, date_joined)
            SELECT '!', false, 'bench' || g, '', '', 'bench' || g || '@x.test', false, true, %s
            FROM generate_series(1, %s) g""",
            [now, requests],
        )
        cursor.execute(
            f"""
            INSERT INTO {Account._meta.db_table}
                (user_id, name, persona_id, plan, country, created_at)
            SELECT u.id, u.username, %s, 'starter', 'DE', %s FROM auth_user u
            WHERE u.username LIKE 'bench%%'""",
            [persona.pk, now],
        )
        cursor.execute(
            """
            INSERT INTO userflows_exportrequest (account_id, format, data_types, date_from,
                date_to, status, rows_done, file, sha256, row_counts, error, created_at,
                completed_at, expires_at)
            SELECT a.id, 'csv', '[]', '2026-01-01', '2026-01-31',
                CASE WHEN a.id %% 50 = 0 THEN 'completed' ELSE 'expired' END, 0, '', '', '{}', '',
                %s - (a.id %% 300) * interval '1 day',
                %s - (a.id %% 300) * interval '1 day' + (a.id %% 40) * interval '1 day',
                %s - (a.id %% 300) * interval '1 day' + interval '7 days'
            FROM opsplatform_account a""",
            [now, now, now],
        )
        cursor.execute(
            """
            INSERT INTO userflows_deletionrequest (account_id, reason, immediate, status,
                requested_at, scheduled_for, completed_at, attempts, error)
            SELECT a.id, '', false, CASE WHEN a.id %% 3 = 0 THEN 'completed' ELSE 'canceled' END,
                %s - (a.id %% 300) * interval '1 day',
                %s - (a.id %% 300) * interval '1 day' + interval '30 days',
                CASE WHEN a.id %% 3 = 0 THEN %s - (a.id %% 300) * interval '1 day'
                    + interval '30 days 3 hours' END, 1, ''
            FROM opsplatform_account a""",
            [now, now, now],
        )
        cursor.execute("ANALYZE userflows_exportrequest; ANALYZE userflows_deletionrequest")
    reverse("admin:index")  # load the URLconf first: evidence links reverse admin URLs
    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        found = services.run_monitors(now=now)
        seconds = time.perf_counter() - start
    by_key = {m.key: m for m in found}
    report(
        f"monitors, {requests:,} export and deletion requests",
        all_eleven=f"{seconds:.2f} s, {len(ctx.captured_queries)} queries",
        **{m.key: f"{m.duration_ms} ms, {'pass' if m.passed else 'fail'}" for m in found},
    )
    assert by_key["dsr-exports-in-time"].passed is False  # a tenth complete after 30+ days
    assert by_key["dsr-deletions-in-time"].evidence["completed_late"] > 0
