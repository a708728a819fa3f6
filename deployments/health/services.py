"""Writes of account health: the seed's `check_account_health` and `check_all_accounts`, the
default scorecards, and scorecard edits. See docs/health.md.

A run reads each batch of accounts with a fixed number of aggregate queries
(deployments.health.factors.measure), scores them in Python, bulk-inserts the checks and
upserts each account's current health (AccountHealth) — about ten queries per batch whatever
it holds. Accounts that enter a critical episode without a ticket are handed, after commit,
to the `open_critical_tickets` task (deployments.health.proactive), one task per batch.
"""

import datetime as dt
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import NamedTuple

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from deployments.health import writes
from deployments.health.factors import AccountRow, Card, measure, q2, score
from deployments.health.models import (
    AccountHealth,
    AccountHealthCheck,
    Factor,
    HealthStatus,
    Scorecard,
    ScorecardFactor,
)
from opsplatform.errors import InvalidInput, NotFound
from opsplatform.models import Account, Persona
from opsplatform.queueing import enqueue, on_commit_enqueue

logger = logging.getLogger(__name__)
H = HealthStatus
MAX_DAYS = 365
MAX_BATCH = 5000
MAX_CHANGES = 1000
SCHEDULE_ACTOR = "schedule:deployments.check_all_accounts"
TICKET_TASK = "deployments.health.tasks.open_critical_tickets"

# name: (weight, thresholds). Numbers: [value, points] pairs, interpolated in between.
DEFAULT_FACTORS = {
    Factor.DAYS_SINCE_LOGIN: ("3", [["7", 100], ["21", 50], ["45", 0]]),
    Factor.LOGINS: ("2", [["0", 0], ["4", 60], ["12", 100]]),
    Factor.ACTIVE_CAMPAIGNS: ("2", [["0", 20], ["1", 70], ["3", 100]]),
    Factor.METRICS_STALENESS: ("1", [["1", 100], ["3", 70], ["7", 20], ["14", 0]]),
    Factor.ROAS_TREND: ("2", [["-0.5", 0], ["-0.2", 40], ["0", 80], ["0.1", 100]]),
    Factor.OPEN_TICKETS: ("1", [["0", 100], ["2", 80], ["5", 30], ["10", 0]]),
    Factor.ESCALATED_TICKETS: ("2", [["0", 100], ["1", 50], ["3", 0]]),
    Factor.SLA_BREACHES: ("1.5", [["0", 100], ["1", 60], ["3", 0]]),
    Factor.BILLING_STATUS: (
        "3",
        {"active": 100, "trialing": 80, "cancel_scheduled": 10, "past_due": 0, "canceled": 0},
    ),
    Factor.DELETION_REQUESTED: ("4", {"no": 100, "yes": 0}),
    Factor.ONBOARDING_COMPLETED: ("1", {"no": 40, "yes": 100}),
    Factor.USAGE_TREND: ("2", [["-0.6", 0], ["-0.3", 40], ["0", 85], ["0.2", 100]]),
}
# Where a persona weighs a factor differently (Vitally-style per-segment equations): brands
# buy few, long campaigns; networks and agencies live on their support relationship.
PERSONA_WEIGHTS = {
    Persona.BRAND: {Factor.ACTIVE_CAMPAIGNS: "1", Factor.ROAS_TREND: "3"},
    Persona.PODCAST_NETWORK: {Factor.ESCALATED_TICKETS: "3", Factor.METRICS_STALENESS: "2"},
    Persona.AGENCY: {Factor.ESCALATED_TICKETS: "3", Factor.LOGINS: "3"},
}


def _full_clean(obj) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidInput(
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages),
            field=None if field == "__all__" else field,
        ) from None


def _acting(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _actor_name(actor, default: str) -> str:
    user = _acting(actor)
    return user.get_username()[:40] if user else default[:40]


# --- scorecards ---------------------------------------------------------------------------------


@transaction.atomic
def ensure_scorecards() -> int:
    """A scorecard with the default factors for every persona that has none (idempotent;
    run after every migrate). Existing scorecards are never touched. Returns how many it made."""
    made = 0
    for persona in Persona.objects.filter(health_scorecard__isnull=True):
        card = Scorecard.objects.create(persona=persona)
        weights = PERSONA_WEIGHTS.get(persona.slug, {})
        for name, (weight, thresholds) in DEFAULT_FACTORS.items():
            # One save each (a dozen rows, once per persona): their history starts here.
            ScorecardFactor.objects.create(
                scorecard=card,
                name=name,
                weight=Decimal(weights.get(name, weight)),
                thresholds=thresholds,
            )
        made += 1
    return made


@transaction.atomic
def update_scorecard_factor(
    *, factor_id: int, weight=None, thresholds=None, actor=None, reason: str = ""
) -> ScorecardFactor:
    """Change one factor's weight or thresholds (validated), recorded in its history."""
    factor = ScorecardFactor.objects.select_for_update().filter(pk=factor_id).first()
    if factor is None:
        raise NotFound("Scorecard factor not found.")
    if weight is not None:
        factor.weight = weight
    if thresholds is not None:
        factor.thresholds = thresholds
    _full_clean(factor)
    factor._history_user = _acting(actor)
    factor._change_reason = reason[:100] or None
    factor.save()
    return factor


def _cards() -> dict[int, Card]:
    if Persona.objects.filter(health_scorecard__isnull=True).exists():
        ensure_scorecards()
    return {
        card.persona_id: Card.of(card)
        for card in Scorecard.objects.prefetch_related("factors").order_by("id")
    }


# --- checks -------------------------------------------------------------------------------------


def _days(days) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be a whole number from 1 to {MAX_DAYS}.", field="days")
    return days


class Previous(NamedTuple):
    account_id: int
    score: Decimal | None
    status: str
    status_changed_at: dt.datetime
    critical_since: dt.datetime | None
    critical_ticket_id: int | None


def _check_batch(
    rows: list[AccountRow],
    *,
    cards: dict[int, Card],
    now: dt.datetime,
    days: int,
    triggered_by: str,
    id_range: tuple[int, int] | None = None,
    raw: dict[int, dict] | None = None,
) -> tuple[list[dict], list[tuple[int, str, str]], list[int]]:
    """Check one batch in one transaction: (the checks as dicts of their columns, status
    changes, accounts needing a critical-episode ticket). `raw` is the batch's measured
    factors when they were read ahead (check_all_accounts); otherwise they are read here."""
    ids = [r.id for r in rows]
    with transaction.atomic():
        # Locks the batch's rows: a second run of the same batch waits and sees this one's.
        previous = {
            h[0]: Previous(*h)
            for h in AccountHealth.objects.select_for_update()
            .filter(
                Q(account_id__gte=id_range[0], account_id__lte=id_range[1])
                if id_range
                else Q(account_id__in=ids)
            )
            .values_list(
                "account_id",
                "score",
                "status",
                "status_changed_at",
                "critical_since",
                "critical_ticket_id",
            )
        }
        if raw is None:
            raw = measure(rows, now=now, days=days, id_range=id_range)
        checks, results = [], []
        for row in rows:
            result = score(cards[row.persona_id], raw[row.id], days=days)
            prev = previous.get(row.id)
            delta = None
            if prev is not None and prev.score is not None and result.score is not None:
                delta = q2(result.score - prev.score)
            checks.append(
                {
                    "account_id": row.id,
                    "persona_id": row.persona_id,
                    "checked_at": now,
                    "days": days,
                    "score": result.score,
                    "status": result.status,
                    "previous_status": prev.status if prev else "",
                    "delta": delta,
                    "factors": result.factors_json,
                    "recommendations": result.recommendations,
                    "top_reason": result.recommendations[0]["text"][:300]
                    if result.recommendations
                    else "",
                    "triggered_by": triggered_by,
                }
            )
            results.append(result)
        for check, pk in zip(checks, writes.insert_checks(checks), strict=True):
            check["id"] = pk
        states, changes, needs_ticket = [], [], []
        for row, check, result in zip(rows, checks, results, strict=True):
            prev = previous.get(row.id)
            status = check["status"]
            changed = prev is None or prev.status != status
            if changed:
                changes.append((row.id, prev.status if prev else "", status))
            critical_since = prev.critical_since if prev else None
            ticket_id = prev.critical_ticket_id if prev else None
            if status in (H.HEALTHY, H.AT_RISK):
                critical_since = ticket_id = None  # the episode is over
            elif status == H.CRITICAL:
                critical_since = critical_since or now
                if ticket_id is None:
                    needs_ticket.append(row.id)
            states.append(
                {
                    "account_id": row.id,
                    "persona_id": row.persona_id,
                    "last_check_id": check["id"],
                    "checked_at": now,
                    "score": check["score"],
                    "status": status,
                    "previous_status": check["previous_status"],
                    "delta": check["delta"],
                    "status_changed_at": now if changed else prev.status_changed_at,
                    "top_reason": check["top_reason"],
                    "top_factor": top[0] if (top := result.top_factors) else "",
                    "top_factors": top,
                    "critical_since": critical_since,
                    "critical_ticket_id": ticket_id,
                }
            )
        writes.upsert_states(states)
        if needs_ticket and apps.is_installed("support"):
            on_commit_enqueue(TICKET_TASK, list(needs_ticket))
    return checks, changes, needs_ticket


def _row(account: Account) -> AccountRow:
    return AccountRow(account.id, account.persona_id, account.user.last_login)


def check_account_health(
    *,
    user_id: int | None = None,
    account: Account | None = None,
    days: int = 30,
    actor=None,
    now: dt.datetime | None = None,
) -> AccountHealthCheck:
    """Check one account now (`user_id` is the account's id, as in the seed) and return the
    check: score, status, the breakdown, the delta and the recommendations."""
    days = _days(days)
    account_id = account.pk if account is not None else user_id
    if account_id is None:
        raise InvalidInput("Give the account to check.", field="account_id")
    found = Account.objects.select_related("user").filter(pk=account_id).first()
    if found is None:
        raise NotFound("Account not found.")
    checks, _, _ = _check_batch(
        [_row(found)],
        cards=_cards(),
        now=now or timezone.now(),
        days=days,
        triggered_by=_actor_name(actor, "check_account_health"),
    )
    return AccountHealthCheck.objects.select_related("persona").get(pk=checks[0]["id"])


def check_accounts(
    *, account_ids: list[int], days: int = 30, actor=None, now: dt.datetime | None = None
) -> list[AccountHealthCheck]:
    """Check the given accounts now (at most MAX_BATCH, one batch): admin's "check now" on
    a selection."""
    days = _days(days)
    if len(account_ids) > MAX_BATCH:
        raise InvalidInput(f"Check at most {MAX_BATCH} accounts at once.", field="account_ids")
    rows = [
        AccountRow(*values)
        for values in Account.objects.filter(id__in=account_ids)
        .order_by("id")
        .values_list("id", "persona_id", "user__last_login")
    ]
    checks, _, _ = _check_batch(
        rows,
        cards=_cards(),
        now=now or timezone.now(),
        days=days,
        triggered_by=_actor_name(actor, "check_accounts"),
    )
    return [AccountHealthCheck(**check) for check in checks]


def check_all_accounts(
    *,
    batch_size: int = 100,
    days: int = 30,
    now: dt.datetime | None = None,
    actor=None,
    triggered_by: str | None = None,
    max_changes: int = MAX_CHANGES,
    read_ahead: bool = True,
) -> dict:
    """Check every account in batches of `batch_size` (each batch one transaction with a
    fixed number of queries; memory holds one batch). Returns the counts by status, the
    accounts that changed status (the first `max_changes`, and how many in all) and the time
    taken. Safe to run twice: a second run adds a check per account and changes nothing else
    unless the data did.

    On PostgreSQL outside a transaction, the next batch's accounts and factors are read on a
    second connection while this batch is scored and written (`read_ahead`): the database
    and Python work at the same time. Only the reads of other apps' data move; each batch's
    previous health is still read under its row lock before anything is decided."""
    days = _days(days)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise InvalidInput("batch_size must be a whole number.", field="batch_size")
    if not 1 <= batch_size <= MAX_BATCH:
        raise InvalidInput(f"batch_size must be from 1 to {MAX_BATCH}.", field="batch_size")
    now = now or timezone.now()
    started = time.perf_counter()
    cards = _cards()
    by = (triggered_by or "")[:40] or _actor_name(actor, SCHEDULE_ACTOR)
    counts: Counter = Counter(dict.fromkeys(H.values, 0))
    changed: list[dict] = []
    changed_total = checked = batches = tickets_queued = 0
    for rows, raw in _measured_batches(batch_size, now=now, days=days, read_ahead=read_ahead):
        checks, changes, needs_ticket = _check_batch(
            rows,
            cards=cards,
            now=now,
            days=days,
            triggered_by=by,
            # Every account with an id in the range is in this batch (ordered by id).
            id_range=(rows[0].id, rows[-1].id),
            raw=raw,
        )
        batches += 1
        checked += len(checks)
        tickets_queued += len(needs_ticket)
        counts.update(c["status"] for c in checks)
        changed_total += len(changes)
        for account_id, before, after in changes[: max(0, max_changes - len(changed))]:
            changed.append({"account_id": account_id, "from": before or None, "to": after})
    seconds = time.perf_counter() - started
    return {
        "checked": checked,
        "batches": batches,
        "counts": dict(counts),
        "changed": changed,
        "changed_total": changed_total,
        "critical_tickets_queued": tickets_queued,
        "seconds": round(seconds, 3),
        "accounts_per_second": round(checked / seconds, 1) if seconds > 0 else None,
        "days": days,
        "checked_at": now,
    }


def _batch_rows(after_id: int, batch_size: int) -> list[AccountRow]:
    return [
        AccountRow(*values)
        for values in Account.objects.filter(id__gt=after_id)
        .order_by("id")
        .values_list("id", "persona_id", "user__last_login")[:batch_size]
    ]


def _read_batch(after_id: int, batch_size: int, *, now: dt.datetime, days: int):
    """The accounts after `after_id` (one batch, by id) and their measured factors."""
    rows = _batch_rows(after_id, batch_size)
    if not rows:
        return rows, {}
    return rows, measure(rows, now=now, days=days, id_range=(rows[0].id, rows[-1].id))


def _measured_batches(batch_size: int, *, now: dt.datetime, days: int, read_ahead: bool):
    """Yield (rows, raw factors) per batch of accounts in id order. With read-ahead the next
    batch is read by a worker thread (its own database connection, closed at the end) while
    the caller works on the current one. A second connection only sees committed data, so
    read-ahead is used on PostgreSQL outside any transaction (not inside a test's)."""
    ahead = read_ahead and connection.vendor == "postgresql" and not connection.in_atomic_block
    if not ahead:
        last_id = 0
        while rows := _batch_rows(last_id, batch_size):
            last_id = rows[-1].id
            yield rows, None  # measured inside the batch's transaction
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="health-read-ahead") as pool:
        try:
            future = pool.submit(_read_batch, 0, batch_size, now=now, days=days)
            while True:
                rows, raw = future.result()
                if not rows:
                    break
                future = pool.submit(_read_batch, rows[-1].id, batch_size, now=now, days=days)
                yield rows, raw
            future = None
        finally:
            if future is not None:
                future.cancel()
                try:
                    future.result()
                except Exception:  # the error being raised in the caller is the one to report
                    logger.debug("read-ahead batch abandoned", exc_info=True)
            pool.submit(connections.close_all).result()


def queue_check_all(*, days: int = 30, batch_size: int = 500, actor=None) -> str:
    """Queue `check_all_accounts` on the worker; returns the django-q2 task id."""
    days = _days(days)
    return enqueue(
        "deployments.health.tasks.check_all_accounts",
        days=days,
        batch_size=batch_size,
        triggered_by=_actor_name(actor, SCHEDULE_ACTOR),
        task_name="deployments.check_all_accounts",
    )
