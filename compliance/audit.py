"""The audit trail: every history table (django-simple-history) read as one list — who
changed what, when, with old and new values — newest first, filterable by model, user and
date, paged by key (no COUNT(*) and no OFFSET: a page costs the same on a million rows).

Each history table is asked for at most `limit + 1` rows after the cursor through its
`history_date` index; the rows are merged in Python and the first `limit` shown; the extra
row says whether an older page exists. The previous version of each shown row (for the old
values) comes from a correlated sub-query in the same statement, and the previous rows
themselves from one query per table shown. So a page costs at most two queries per history
table, whatever the number of rows.

Order: (history_date, table label, history_id) descending; the cursor is the last row
shown, written `<iso date>|<label>|<history_id>`.
"""

import datetime as dt
from dataclasses import dataclass, field

from django.apps import apps
from django.db.models import OuterRef, Q, Subquery
from simple_history.models import HistoricalChanges

from opsplatform.errors import InvalidInput

MAX_VALUE_CHARS = 200
TYPES = {"+": "created", "~": "changed", "-": "deleted"}
# Values never shown, only that they changed (credentials and their hashes).
REDACTED = ("password", "token_hash", "session_data", "secret")


@dataclass
class AuditEntry:
    label: str  # app_label.ModelName of the tracked model
    model_name: str
    history_id: int
    object_id: object
    object_repr: str
    history_date: dt.datetime
    action: str
    user_id: int | None
    reason: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    prev_id: int | None = None
    username: str = ""

    @property
    def cursor(self) -> str:
        return f"{self.history_date.isoformat()}|{self.label}|{self.history_id}"


@dataclass
class AuditPage:
    entries: list[AuditEntry]
    next_cursor: str | None
    users: dict[int, str]


def history_models() -> dict[str, type]:
    """label of the tracked model → its historical model, for every history table."""
    found = {}
    for model in apps.get_models():
        if not issubclass(model, HistoricalChanges):
            continue
        tracked = getattr(model, "instance_type", None)
        names = {f.name for f in model._meta.get_fields()}
        if tracked is None or not {"history_id", "history_date", "history_type"} <= names:
            continue
        found[f"{tracked._meta.app_label}.{tracked.__name__}"] = model
    return dict(sorted(found.items()))


def parse_cursor(cursor: str | None) -> tuple[dt.datetime, str, int] | None:
    if not cursor:
        return None
    try:
        when, label, history_id = cursor.split("|")
        moment = dt.datetime.fromisoformat(when)
        if moment.tzinfo is None:
            raise ValueError
        return moment, label, int(history_id)
    except (ValueError, OverflowError):
        raise InvalidInput("The page cursor is not valid.", field="cursor") from None


def _after(label: str, cursor) -> Q:
    when, cursor_label, history_id = cursor
    if label < cursor_label:
        return Q(history_date__lte=when)
    if label == cursor_label:
        # One range on history_date (its index serves it), the cursor's ties excluded; an OR
        # of two ranges made PostgreSQL scan half of a million-row table for a deep page.
        return Q(history_date__lte=when) & ~Q(history_date=when, history_id__gte=history_id)
    return Q(history_date__lt=when)


def _tracked_fields(history_model) -> list[str]:
    tracked = history_model.instance_type
    names = {f.attname for f in history_model._meta.concrete_fields}
    return [
        f.attname
        for f in tracked._meta.concrete_fields
        if f.attname in names and f.attname not in ("history_id",)
    ]


def _show(value) -> str:
    if value is None:
        return "—"
    text = value.isoformat() if isinstance(value, dt.datetime | dt.date) else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _redacted(value) -> str:
    return "—" if value in (None, "") else "[redacted]"


def audit_page(
    *,
    model: str | None = None,
    user_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> AuditPage:
    tables = history_models()
    if model:
        if model not in tables:
            raise InvalidInput(f"Unknown model {model!r}.", field="model")
        tables = {model: tables[model]}
    position = parse_cursor(cursor)
    fetched: list[AuditEntry] = []
    per_table_rows: dict[str, dict[int, dict]] = {}
    for label, history_model in tables.items():
        fields = _tracked_fields(history_model)
        pk_name = history_model.instance_type._meta.pk.attname
        qs = history_model.objects.all()
        if user_id is not None:
            qs = qs.filter(history_user_id=user_id)
        if date_from is not None:
            qs = qs.filter(history_date__gte=dt.datetime.combine(date_from, dt.time.min, dt.UTC))
        if date_to is not None:
            end = dt.datetime.combine(date_to, dt.time.min, dt.UTC) + dt.timedelta(days=1)
            qs = qs.filter(history_date__lt=end)
        if position is not None:
            qs = qs.filter(_after(label, position))
        previous = history_model.objects.filter(
            **{pk_name: OuterRef(pk_name)}, history_date__lt=OuterRef("history_date")
        ).order_by("-history_date", "-history_id")
        rows = list(
            qs.annotate(prev_id=Subquery(previous.values("history_id")[:1]))
            .order_by("-history_date", "-history_id")
            .values(
                "history_id",
                "history_date",
                "history_type",
                "history_user_id",
                "history_change_reason",
                "prev_id",
                *fields,
            )[: limit + 1]
        )
        per_table_rows[label] = {row["history_id"]: row for row in rows}
        for row in rows:
            fetched.append(
                AuditEntry(
                    label=label,
                    model_name=str(history_model.instance_type._meta.verbose_name),
                    history_id=row["history_id"],
                    object_id=row[pk_name],
                    object_repr="",
                    history_date=row["history_date"],
                    action=TYPES.get(row["history_type"], row["history_type"]),
                    user_id=row["history_user_id"],
                    reason=row["history_change_reason"] or "",
                    prev_id=row["prev_id"],
                )
            )
    fetched.sort(key=lambda e: (e.history_date, e.label, e.history_id), reverse=True)
    entries = fetched[:limit]
    next_cursor = entries[-1].cursor if len(fetched) > limit and entries else None
    _fill_changes(entries, tables, per_table_rows)
    users = _usernames(entries)
    for entry in entries:
        entry.username = users.get(entry.user_id, "") if entry.user_id is not None else ""
    return AuditPage(entries=entries, next_cursor=next_cursor, users=users)


def _fill_changes(entries, tables, per_table_rows) -> None:
    """Old → new values per shown row: one query per table for the previous versions."""
    by_label: dict[str, list[AuditEntry]] = {}
    for entry in entries:
        by_label.setdefault(entry.label, []).append(entry)
    for label, shown in by_label.items():
        history_model = tables[label]
        fields = _tracked_fields(history_model)
        prev_ids = [e.prev_id for e in shown if e.prev_id is not None]
        # One query per table shown (none when no shown row has a previous version): the
        # cost of a page depends on which tables it shows, never on how many rows they hold.
        previous = {
            row["history_id"]: row
            for row in history_model.objects.filter(history_id__in=prev_ids).values(
                "history_id", *fields
            )
        }
        for entry in shown:
            row = per_table_rows[label][entry.history_id]
            entry.object_repr = f"{entry.model_name} #{entry.object_id}"
            before = previous.get(entry.prev_id)
            if entry.action == "deleted":
                continue
            for name in fields:
                new = row.get(name)
                old = before.get(name) if before else None
                show = _redacted if any(word in name for word in REDACTED) else _show
                if before is None:
                    if new not in (None, ""):
                        entry.changes.append((name, "", show(new)))
                elif old != new:
                    entry.changes.append((name, show(old), show(new)))


def _usernames(entries) -> dict[int, str]:
    from django.contrib.auth import get_user_model

    ids = {e.user_id for e in entries if e.user_id is not None}
    if not ids:
        return {}
    user = get_user_model()
    return dict(user.objects.filter(pk__in=ids).values_list("pk", user.USERNAME_FIELD))
