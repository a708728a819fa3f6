"""Bulk writes of a batch of checks. On PostgreSQL the checks go in with COPY (ids drawn
from the table's sequence first, so each account's current-health row can point at its
check); elsewhere with bulk_create. Both cost a fixed number of statements per batch."""

import json

from django.db import connection

from deployments.health.models import AccountHealth, AccountHealthCheck

CHECK_COLUMNS = [
    "id",
    "account_id",
    "persona_id",
    "checked_at",
    "days",
    "score",
    "status",
    "previous_status",
    "delta",
    "factors",
    "recommendations",
    "top_reason",
    "triggered_by",
]
JSON_COLUMNS = {"factors", "recommendations"}
STATE_UPDATE = [  # the fields bulk_create's upsert updates (every one but the account)
    "persona",
    "last_check",
    "checked_at",
    "score",
    "status",
    "previous_status",
    "delta",
    "status_changed_at",
    "top_reason",
    "top_factor",
    "top_factors",
    "critical_since",
    "critical_ticket_id",
]


def insert_checks(rows: list[dict]) -> list[int]:
    """Insert the checks (dicts of CHECK_COLUMNS but the id; `factors` is JSON text, as
    built by factors.score); returns their ids in order."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        created = AccountHealthCheck.objects.bulk_create(
            AccountHealthCheck(**{**r, "factors": json.loads(r["factors"])}) for r in rows
        )
        return [c.pk for c in created]
    table = AccountHealthCheck._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(rows)],
        )
        ids = [i for (i,) in cursor.fetchall()]
        names = ", ".join(connection.ops.quote_name(c) for c in CHECK_COLUMNS)
        with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                copy.write_row(
                    [
                        pk,
                        *(
                            _json(row[c]) if c in JSON_COLUMNS else row[c]
                            for c in CHECK_COLUMNS[1:]
                        ),
                    ]
                )
    return ids


def _json(value) -> str:
    if isinstance(value, str):
        return value  # already JSON text
    return json.dumps(value, default=str)


STATE_COLUMNS = [
    "account_id",
    "persona_id",
    "last_check_id",
    "checked_at",
    "score",
    "status",
    "previous_status",
    "delta",
    "status_changed_at",
    "top_reason",
    "top_factor",
    "top_factors",
    "critical_since",
    "critical_ticket_id",
]


def upsert_states(states: list[dict]) -> None:
    """Insert or update each account's current health (dicts of STATE_COLUMNS). PostgreSQL:
    COPY into a temporary table (dropped at commit), one INSERT … ON CONFLICT, and a TRUNCATE
    of the temporary table (four statements)."""
    if not states:
        return
    if connection.vendor != "postgresql":
        AccountHealth.objects.bulk_create(
            [AccountHealth(**s) for s in states],
            update_conflicts=True,
            unique_fields=["account"],
            update_fields=STATE_UPDATE,
        )
        return
    table = AccountHealth._meta.db_table
    q = connection.ops.quote_name
    names = ", ".join(q(c) for c in STATE_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS health_batch ON COMMIT DROP AS "  # noqa: S608
            f"SELECT {names} FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy(f"COPY health_batch ({names}) FROM STDIN") as copy:
            for state in states:
                copy.write_row(
                    [_json(state[c]) if c == "top_factors" else state[c] for c in STATE_COLUMNS]
                )
        updates = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in STATE_COLUMNS[1:])
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM health_batch "  # noqa: S608
            f"ON CONFLICT (account_id) DO UPDATE SET {updates}"
        )
        # Batches inside one outer transaction (a test, a caller's atomic) share the table.
        cursor.execute("TRUNCATE health_batch")
