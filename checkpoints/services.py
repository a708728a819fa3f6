"""Writes of the scaling checkpoints: `run_checkpoint(checkpoint_name, days=90)` (the seed's
ScalingCheckpointAgent), `list_checkpoints(status=None)`, KPI definitions and backlog moves.

A run reads every metric set-based (checkpoints/metrics.py), judges every active KPI, then in
one transaction — holding every KPI state row's lock, so two runs never open two tickets for a
KPI — stores the checkpoint, escalates each failing high/critical KPI to its one open ticket,
makes or updates each failing KPI's one backlog item (scored through the scoring app), freezes
rollouts on a failing reliability KPI and undoes all of it for KPIs that pass again.
"""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from checkpoints import metrics
from checkpoints.models import (
    FUNCTIONS,
    JOURNEYS,
    MAX_DAYS,
    BacklogItem,
    Checkpoint,
    Comparator,
    KPIDefinition,
    KPIResult,
    KPIState,
    ScopeKind,
    Severity,
)
from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Persona
from opsplatform.queueing import enqueue
from opsplatform.transitions import transition
from opsplatform.validation import clean_text

PASSED, WARNING, FAILED, NO_DATA = "passed", "warning", "failed", "no_data"
ESCALATION_LEVEL = {Severity.HIGH: 3, Severity.CRITICAL: 4}
TICKET_PRIORITY = {Severity.HIGH: "high", Severity.CRITICAL: "urgent"}
# Tickets need a requester: the checkpoint writes as CHECKPOINTS_REQUESTER_EMAIL when set (the
# operations team's address: it then gets the resolution notice), else as this address of the
# reserved .invalid domain (acknowledgements are off and the notes are system messages).
REQUESTER_EMAIL = "checkpoints@opsplatform.invalid"


def requester_email() -> str:
    from django.conf import settings

    return getattr(settings, "CHECKPOINTS_REQUESTER_EMAIL", "") or REQUESTER_EMAIL


SEVERITY_RANK = {Severity.LOW: 4, Severity.MEDIUM: 3, Severity.HIGH: 2, Severity.CRITICAL: 1}
BIG_GAP = Decimal("0.25")
CONFIDENCE = {"low": "0.5", "medium": "0.6", "high": "0.8", "critical": "0.9"}


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


def judge(value: Decimal | None, comparator: str, target: Decimal, band: Decimal) -> str:
    """passed when the value meets the target; warning when it misses by at most the band;
    failed beyond it; no_data without a value (never a pass or a failure)."""
    if value is None:
        return NO_DATA
    gap = target - value if comparator == Comparator.AT_LEAST else value - target
    if gap <= 0:
        return PASSED
    return WARNING if gap <= band else FAILED


def gap_of(value: Decimal, comparator: str, target: Decimal) -> Decimal:
    return target - value if comparator == Comparator.AT_LEAST else value - target


def priority_of(severity: str, gap: Decimal, target: Decimal) -> str:
    """P1 critical … P4 low, one step more urgent when the miss is at least 25% of the target
    (or, for a target of 0, at least 0.25)."""
    rank = SEVERITY_RANK[severity]
    size = gap / abs(target) if target else gap
    if size >= BIG_GAP:
        rank = max(1, rank - 1)
    return f"p{rank}"


class Run:
    """One checkpoint's readings: memoised per window so shared readings run once."""

    def __init__(self, personas: list[str], is_now: bool):
        self.personas = personas
        self.is_now = is_now
        self._memo: dict = {}

    def memo(self, key, compute):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def _d(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _group_status(statuses: list[str]) -> str:
    if FAILED in statuses:
        return FAILED
    if WARNING in statuses:
        return WARNING
    return PASSED


def evaluate(*, days: int, as_of: dt.datetime, kpis: list[KPIDefinition]) -> dict:
    """Every active KPI judged for every scope item it covers (reads only)."""
    personas = list(Persona.objects.order_by("slug").values_list("slug", flat=True))
    run = Run(personas, is_now=abs(timezone.now() - as_of) < dt.timedelta(minutes=5))
    results: list[dict] = []
    for kpi in kpis:
        window = metrics.window_ending(as_of, kpi.window_days or days)
        values = metrics.REGISTRY[kpi.metric].compute(run, window)
        items = personas if kpi.scope_kind == ScopeKind.ALL_PERSONAS else [kpi.scope]
        for item in items:
            value = values.get(item)
            results.append(
                {
                    "kpi": kpi,
                    "scope_kind": ScopeKind.PERSONA
                    if kpi.scope_kind == ScopeKind.ALL_PERSONAS
                    else kpi.scope_kind,
                    "scope": item,
                    "value": value,
                    "status": judge(value, kpi.comparator, kpi.target, kpi.warning_band),
                }
            )
    journeys = metrics.measure_journeys(run, metrics.window_ending(as_of, days))
    return {"personas": personas, "results": results, "journeys": journeys}


def _sections(personas: list[str], results: list[dict], journeys: dict) -> tuple[dict, dict, dict]:
    persona = {slug: {"status": PASSED, "kpis": [], "failures": []} for slug in personas}
    function = {name: {"status": PASSED, "kpis": [], "failures": []} for name in FUNCTIONS}
    journey = {
        key: {
            "label": label,
            "status": PASSED,
            "kpis": [],
            "failures": [],
            **journeys[key].as_dict(),
        }
        for key, label in JOURNEYS.items()
    }
    target = {ScopeKind.PERSONA: persona, ScopeKind.FUNCTION: function, ScopeKind.JOURNEY: journey}
    for r in results:
        kpi = r["kpi"]
        section = target[r["scope_kind"]].setdefault(
            r["scope"], {"status": PASSED, "kpis": [], "failures": []}
        )
        section["kpis"].append(
            {
                "key": kpi.key,
                "name": kpi.name,
                "metric": kpi.metric,
                "value": _d(r["value"]),
                "target": str(kpi.target),
                "comparator": kpi.comparator,
                "status": r["status"],
                "severity": kpi.severity,
            }
        )
        if r["status"] == FAILED:
            section["failures"].append(kpi.key)
    for sections in (persona, function, journey):
        for section in sections.values():
            with_data = [k["status"] for k in section["kpis"] if k["status"] != NO_DATA]
            section["status"] = _group_status(with_data) if with_data else NO_DATA
    return persona, function, journey


def _summary(results: list[dict], status: str) -> str:
    def most_severe_first(r):
        return (SEVERITY_RANK[r["kpi"].severity], r["kpi"].key, r["scope"])

    failed = sorted((r for r in results if r["status"] == FAILED), key=most_severe_first)
    warned = [r for r in results if r["status"] == WARNING]
    no_data = sum(1 for r in results if r["status"] == NO_DATA)
    checked = len(results) - no_data
    tail = f" ({checked} KPI readings checked, {no_data} without data)."

    def name(r):
        return (
            f"{r['kpi'].key} for {r['scope']} ({_d(r['value'])} vs {r['kpi'].comparator} "
            f"{r['kpi'].target})"
        )

    if status == FAILED:
        shown = ", ".join(name(r) for r in failed[:6])
        more = f" and {len(failed) - 6} more" if len(failed) > 6 else ""
        return (
            f"No: {len(failed)} KPI reading{'s' if len(failed) != 1 else ''} missed "
            f"{'their' if len(failed) != 1 else 'its'} target — {shown}{more}{tail}"
        )
    if status == WARNING:
        shown = ", ".join(name(r) for r in warned[:6])
        verb = "is" if len(warned) == 1 else "are"
        return (
            f"Yes, narrowly: every target is met within its warning band, but {shown} {verb} "
            f"close.{tail}"
        )
    return (
        "Yes: every persona, business function and critical journey meets or exceeds its KPI "
        f"targets.{tail}"
    )


def _validate_days(days) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be a whole number from 1 to {MAX_DAYS}.", field="days")
    return days


def run_checkpoint(
    checkpoint_name: str,
    days: int = 90,
    *,
    as_of: dt.datetime | None = None,
    actor=None,
    triggered_by: str = "api",
) -> Checkpoint:
    """Ask "does every persona, business function and critical journey meet or exceed its
    KPI targets?" over the `days` whole UTC days before `as_of` (default now); escalate and
    backlog what fails, at once and never twice."""
    name = clean_text(
        checkpoint_name, field="checkpoint_name", label="Checkpoint name", max_length=200
    )
    days = _validate_days(days)
    as_of = as_of or timezone.now()
    kpis = list(KPIDefinition.objects.filter(active=True).order_by("scope_kind", "scope", "key"))
    evaluation = evaluate(days=days, as_of=as_of, kpis=kpis)
    results = evaluation["results"]
    status = _group_status([r["status"] for r in results])
    persona, function, journey = _sections(evaluation["personas"], results, evaluation["journeys"])
    with transaction.atomic():
        checkpoint = Checkpoint.objects.create(
            name=name,
            days=days,
            as_of=as_of,
            status=status,
            summary=_summary(results, status),
            persona_results=persona,
            function_results=function,
            journey_results=journey,
            created_by=_user(actor),
            triggered_by=triggered_by[:60],
        )
        KPIResult.objects.bulk_create(
            [
                KPIResult(
                    checkpoint=checkpoint,
                    kpi=r["kpi"],
                    scope_kind=r["scope_kind"],
                    scope=r["scope"],
                    value=r["value"],
                    target=r["kpi"].target,
                    comparator=r["kpi"].comparator,
                    status=r["status"],
                )
                for r in results
            ]
        )
        _act(checkpoint, kpis, results, actor=actor)
        if status == FAILED:
            tickets = {e["ticket"] for e in checkpoint.escalations}
            checkpoint.summary += (
                f" Escalated to {len(tickets)} ticket{'s' if len(tickets) != 1 else ''} and "
                f"backlogged as {len(checkpoint.backlog_items)} item"
                f"{'s' if len(checkpoint.backlog_items) != 1 else ''}."
            )
        checkpoint.save(update_fields=["summary", "escalations", "backlog_items", "pages"])
        transaction.on_commit(lambda: _enqueue_notice(checkpoint.id))
    return checkpoint


def _enqueue_notice(checkpoint_id: int) -> None:
    enqueue("checkpoints.tasks.notify_checkpoint", checkpoint_id)


def _per_kpi(results: list[dict]) -> dict[int, dict]:
    """Per KPI: its overall status (failed if any scope item failed; passed/warning when none
    failed and at least one had data; no_data otherwise) and its failing readings."""
    per: dict[int, dict] = {}
    for r in results:
        entry = per.setdefault(r["kpi"].id, {"kpi": r["kpi"], "statuses": [], "failing": []})
        entry["statuses"].append(r["status"])
        if r["status"] == FAILED:
            entry["failing"].append(r)
    for entry in per.values():
        with_data = [s for s in entry["statuses"] if s != NO_DATA]
        entry["status"] = _group_status(with_data) if with_data else NO_DATA
    return per


def _worst(entry: dict) -> dict:
    kpi = entry["kpi"]

    def size(r):
        gap = gap_of(r["value"], kpi.comparator, kpi.target)
        return gap / abs(kpi.target) if kpi.target else gap

    return max(entry["failing"], key=size)


def _evidence(checkpoint: Checkpoint, entry: dict) -> str:
    kpi = entry["kpi"]
    lines = [
        f"KPI {kpi.key} ({kpi.name}) failed at checkpoint '{checkpoint.name}' "
        f"(window {checkpoint.days} days to {checkpoint.as_of:%Y-%m-%d}).",
        f"Target: {kpi.metric} {kpi.comparator} {kpi.target} (warning band {kpi.warning_band}).",
    ]
    for r in entry["failing"]:
        gap = gap_of(r["value"], kpi.comparator, kpi.target)
        lines.append(f"- {r['scope']}: {r['value']} (gap {gap})")
    return "\n".join(lines)


def _act(checkpoint: Checkpoint, kpis: list[KPIDefinition], results: list[dict], *, actor) -> None:
    per = _per_kpi(results)
    if not per:
        return
    KPIState.objects.bulk_create([KPIState(kpi_id=kpi_id) for kpi_id in per], ignore_conflicts=True)
    # Every state row locked and re-read: a concurrent run waits here, then sees our ticket.
    states = {
        s.kpi_id: s
        for s in KPIState.objects.select_for_update()
        .filter(kpi_id__in=list(per))
        .order_by("kpi_id")
    }
    escalations, backlog, triggers, resolves = [], [], [], []
    for kpi_id, entry in per.items():
        kpi, state = entry["kpi"], states[kpi_id]
        was_failing = state.failing
        if entry["status"] == FAILED:
            state.failing = True
            state.failing_since = state.failing_since or checkpoint.as_of
            if kpi.severity in ESCALATION_LEVEL:
                escalations.append(_escalate(checkpoint, entry, state, actor=actor))
            backlog.append(_backlog(checkpoint, entry, actor=actor))
            if kpi.reliability:
                _freeze(checkpoint, entry, actor=actor)
            triggers.append(
                {
                    "kpi": kpi.key,
                    "severity": kpi.severity,
                    "summary": f"KPI {kpi.key} failing at checkpoint {checkpoint.name}: "
                    + ", ".join(f"{r['scope']} {r['value']}" for r in entry["failing"][:5]),
                }
            )
            state.paged = True
        elif entry["status"] in (PASSED, WARNING):
            if state.ticket_id is not None:
                _resolve_ticket(checkpoint, entry, state, actor=actor)
            if kpi.reliability:
                _unfreeze(checkpoint, kpi, actor=actor)
            if state.paged:
                resolves.append(kpi.key)
                state.paged = False
            state.failing = False
            state.failing_since = None
        else:  # no data: nothing is decided, nothing changes
            continue
        state.last_checkpoint = checkpoint
        state._history_user = _user(actor)
        state._change_reason = (
            f"{'failing' if state.failing else 'passing'} at {checkpoint.name}"
            + (" (changed)" if state.failing != was_failing else "")
        )[:100]
        state.save()
    checkpoint.escalations = escalations
    checkpoint.backlog_items = backlog
    checkpoint.pages = {"trigger": triggers, "resolve": resolves}


def _escalate(checkpoint: Checkpoint, entry: dict, state: KPIState, *, actor) -> dict:
    from support.selectors import active_ticket
    from support.services import tickets as ticket_services

    kpi = entry["kpi"]
    level = ESCALATION_LEVEL[kpi.severity]
    title = f"KPI {kpi.key} misses its target at checkpoint {checkpoint.name}"[:200]
    ticket = None
    if state.ticket_id is not None:
        ticket = active_ticket(ticket_id=state.ticket_id)
    created = ticket is None
    if ticket is None:
        ticket = ticket_services.create_ticket(
            subject=title,
            description=_evidence(checkpoint, entry),
            channel="api",
            priority=TICKET_PRIORITY[kpi.severity],
            tags=["checkpoint", kpi.key],
            requester_email=requester_email(),
            requester_name="Scaling checkpoints",
            actor=actor,
            author_kind="system",
            acknowledge=False,
        )
        state.ticket = ticket
    else:
        ticket_services.add_message(
            ticket=ticket,
            body=f"Still failing at checkpoint '{checkpoint.name}'.\n"
            + _evidence(checkpoint, entry),
            author_kind="system",
            internal=True,
        )
    if ticket.escalation_level < level:
        ticket_services.escalate_ticket(
            ticket=ticket,
            level=level,
            reason=f"{kpi.severity} KPI {kpi.key} failing at checkpoint {checkpoint.name}",
            actor=actor,
        )
    return {
        "title": title,
        "level": f"L{level}",
        "kpi": kpi.key,
        "ticket": ticket.reference,
        "ticket_id": ticket.id,
        "new": created,
    }


def _resolve_ticket(checkpoint: Checkpoint, entry: dict, state: KPIState, *, actor) -> None:
    from support.selectors import active_ticket
    from support.services import tickets as ticket_services

    kpi = entry["kpi"]
    ticket = active_ticket(ticket_id=state.ticket_id)
    state.ticket = None
    if ticket is None:
        return
    ticket_services.add_message(
        ticket=ticket,
        body=(
            f"KPI {kpi.key} meets its target again at checkpoint '{checkpoint.name}' "
            f"({kpi.metric} {kpi.comparator} {kpi.target}). Resolving."
        ),
        author_kind="system",
        internal=False,
    )
    ticket_services.update_ticket_status(ticket=ticket, status="resolved", actor=actor)


def _backlog(checkpoint: Checkpoint, entry: dict, *, actor) -> dict:
    from scoring import services as scoring

    kpi = entry["kpi"]
    worst = _worst(entry)
    gap = gap_of(worst["value"], kpi.comparator, kpi.target)
    priority = priority_of(kpi.severity, gap, kpi.target)
    title = f"Bring {kpi.name} back to target ({kpi.key})"[:200]
    description = _evidence(checkpoint, entry)
    item = BacklogItem.objects.select_for_update().filter(kpi=kpi).first()
    created = item is None
    if created:
        item = BacklogItem(kpi=kpi, first_checkpoint=checkpoint, times_failed=0)
    elif item.status in (BacklogItem.Status.DONE,):
        item = transition(
            item,
            BacklogItem.Status.OPEN,
            actor=actor,
            reason=f"failing again at {checkpoint.name}"[:100],
        )
    item.title = title
    item.description = description
    item.priority = priority
    item.gap = gap
    item.last_checkpoint = checkpoint
    item.times_failed += 1
    item.updated_at = timezone.now()
    personas = sorted(
        {r["scope"] for r in entry["failing"] if r["scope_kind"] == ScopeKind.PERSONA}
    )
    feature_key = f"kpi-{kpi.key}"
    metadata = {
        "confidence": CONFIDENCE[kpi.severity],
        "support_tags": ["checkpoint", kpi.key[:40]],
    }
    if personas:
        metadata["target_personas"] = personas
    score = scoring.score_feature(feature_key, title, metadata, actor=actor)
    item.feature_key = feature_key
    item.score = score.overall_score
    item._history_user = _user(actor)
    item._change_reason = f"checkpoint {checkpoint.name}"[:100]
    item.save()
    return {
        "id": item.id,
        "title": item.title,
        "kpi": kpi.key,
        "priority": item.priority,
        "status": item.status,
        "score": _d(item.score),
        "feature_key": feature_key,
        "new": created,
    }


def _freeze(checkpoint: Checkpoint, entry: dict, *, actor) -> None:
    from deployments import services as deployments

    kpi = entry["kpi"]
    deployments.freeze_rollouts(
        source="checkpoint",
        reason=f"Reliability KPI {kpi.key} failed at checkpoint {checkpoint.name}.",
        checkpoint_name=checkpoint.name,
        checkpoint_id=checkpoint.id,
        kpi_key=kpi.key,
        actor=actor,
    )


def _unfreeze(checkpoint: Checkpoint, kpi: KPIDefinition, *, actor) -> None:
    from deployments import selectors as deployment_selectors
    from deployments import services as deployments

    if (
        deployment_selectors.freeze_list(active=True)
        .filter(source="checkpoint", kpi_key=kpi.key)
        .exists()
    ):
        deployments.lift_rollout_freeze(
            reason=f"KPI {kpi.key} passes at checkpoint {checkpoint.name}.",
            actor=actor,
            kpi_key=kpi.key,
            source="checkpoint",
        )


def list_checkpoints(status: str | None = None):
    """Checkpoints, newest first, optionally with one status."""
    if status is not None and status not in Checkpoint.Status.values:
        raise InvalidInput(f"Unknown status {status!r}.", field="status")
    qs = Checkpoint.objects.order_by("-created_at", "-id")
    return qs.filter(status=status) if status else qs


def lift_freeze(*, reason: str, actor) -> list:
    """An operator lifts every rollout freeze in force (kept in deployments' history)."""
    from deployments import services as deployments

    return deployments.lift_rollout_freeze(reason=reason, actor=actor)


# --- KPI definitions --------------------------------------------------------------------------


KPI_FIELDS = (
    "name",
    "description",
    "scope_kind",
    "scope",
    "metric",
    "comparator",
    "target",
    "warning_band",
    "window_days",
    "severity",
    "reliability",
    "active",
)


def _check_kpi(kpi: KPIDefinition) -> None:
    if kpi.comparator not in Comparator.values:
        raise InvalidInput("comparator must be >= or <=.", field="comparator")
    if kpi.severity not in Severity.values:
        raise InvalidInput(
            f"severity must be one of {', '.join(Severity.values)}.", field="severity"
        )
    if kpi.warning_band is None or kpi.warning_band < 0:
        raise InvalidInput("warning_band must be 0 or more.", field="warning_band")
    if kpi.window_days is not None:
        _validate_window(kpi.window_days)
    problem = metrics.scope_problem(kpi.scope_kind, kpi.scope, kpi.metric)
    if problem:
        raise InvalidInput(problem[1], field=problem[0])
    kpi.name = clean_text(kpi.name, field="name", label="Name", max_length=200)
    kpi.description = clean_text(
        kpi.description, field="description", label="Description", max_length=2000, required=False
    )


def _validate_window(days) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"window_days must be from 1 to {MAX_DAYS}.", field="window_days")


@transaction.atomic
def create_kpi(*, key: str, actor=None, **fields) -> KPIDefinition:
    if not metrics_key_ok(key):
        raise InvalidInput("key: lowercase letters, digits, _ and -, at most 40.", field="key")
    if KPIDefinition.objects.filter(key=key).exists():
        raise Conflict(f"A KPI with the key {key} exists.", code="duplicate_key")
    kpi = KPIDefinition(key=key, **{k: v for k, v in fields.items() if k in KPI_FIELDS})
    _check_kpi(kpi)
    kpi._history_user = _user(actor)
    kpi._change_reason = "created"
    kpi.save()
    return kpi


def metrics_key_ok(key) -> bool:
    from checkpoints.models import KEY_RE

    return isinstance(key, str) and bool(KEY_RE.fullmatch(key))


@transaction.atomic
def update_kpi(*, key: str, actor=None, **changes) -> KPIDefinition:
    kpi = KPIDefinition.objects.select_for_update().filter(key=key).first()
    if kpi is None:
        raise NotFound("KPI not found.")
    for field, value in changes.items():
        if field in KPI_FIELDS:
            setattr(kpi, field, value)
    _check_kpi(kpi)
    kpi.updated_at = timezone.now()
    kpi._history_user = _user(actor)
    kpi._change_reason = "edited: " + ", ".join(sorted(changes))[:90]
    kpi.save()
    return kpi


def move_backlog_item(*, item_id: int, status: str, actor=None, reason: str = "") -> BacklogItem:
    if status not in BacklogItem.Status.values:
        raise InvalidInput(f"Unknown status {status!r}.", field="status")
    item = BacklogItem.objects.filter(pk=item_id).first()
    if item is None:
        raise NotFound("Backlog item not found.")
    return transition(
        item, status, actor=actor, reason=reason or f"moved to {status}", updated_at=timezone.now()
    )
