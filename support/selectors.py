"""Reads of support data, with the tenant wall inside: a customer sees only their account's
tickets and never an internal note; staff need the support permissions."""

import datetime as dt
import math
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Avg, Count, F, Q, QuerySet
from django.utils import timezone

from opsplatform.compiled import CompiledQuery, Listing
from opsplatform.errors import InvalidInput, NotFound
from opsplatform.tenancy import is_staff, require_perm, scope_account_id, visible_to
from support.models import (
    Channel,
    CSATRating,
    Priority,
    Ticket,
    TicketMessage,
    parse_reference,
)

MAX_WINDOW_DAYS = 366
BREACHED_LIST_SIZE = 50


def can_see_internal(user) -> bool:
    return is_staff(user) and user.has_perm("support.view_ticketmessage")


def ticket_list(
    *,
    user,
    account_id: int | None = None,
    status: str | None = None,
    priority: str | None = None,
    channel: str | None = None,
    level: int | None = None,
    assignee: str | int | None = None,
    tag: str | None = None,
    breached: bool | None = None,
    search: str | None = None,
) -> QuerySet[Ticket]:
    """Tickets the user may see, filtered; `assignee` is a user id, "me" or "none"."""
    scoped = scope_account_id(user, account_id, perm="support.view_ticket")
    qs = Ticket.objects.select_related("account", "assignee").order_by("-created_at", "-id")
    if scoped is not None:
        qs = qs.filter(account_id=scoped)
    if status:
        qs = qs.filter(status=status)
    if priority:
        qs = qs.filter(priority=priority)
    if channel:
        qs = qs.filter(channel=channel)
    if level is not None:
        qs = qs.filter(escalation_level=level)
    if assignee == "me":
        qs = qs.filter(assignee_id=user.pk)
    elif assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif assignee is not None:
        qs = qs.filter(assignee_id=int(assignee))
    if tag:
        tag = tag.strip().lower()
        qs = qs.filter(
            Q(tags=tag)
            | Q(tags__startswith=f"{tag},")
            | Q(tags__endswith=f",{tag}")
            | Q(tags__contains=f",{tag},")
        )
    if breached is not None:
        condition = Ticket.breached_q(timezone.now())
        qs = qs.filter(condition) if breached else qs.exclude(condition)
    if search:
        qs = qs.filter(search_q(search))
    return qs


# One account's tickets, newest first, with the assignee the answer names: what every
# customer's GET /support/tickets pages through.
_ACCOUNT_TICKETS = CompiledQuery(
    lambda account_id: (
        Ticket.objects.select_related("assignee")
        .filter(account_id=account_id)
        .order_by("-created_at", "-id")
    ),
    account_id=int,
)


def ticket_listing(*, user, **filters) -> QuerySet[Ticket] | Listing:
    """What the tickets endpoint pages through: the same rows as `ticket_list` (filters by
    the same names); one account's unfiltered list (every customer's call) compiled once
    (opsplatform/compiled.py); otherwise the queryset with the assignee, not the account's
    row (the answer shows its id only)."""
    account_id = filters.pop("account_id", None)
    if not any(value is not None for value in filters.values()):
        scoped = scope_account_id(user, account_id, perm="support.view_ticket")
        if scoped is not None:
            return Listing(_ACCOUNT_TICKETS, account_id=scoped)
    return (
        ticket_list(user=user, account_id=account_id, **filters)
        .select_related(None)
        .select_related("assignee")
    )


def search_q(text: str) -> Q:
    text = text.strip()
    condition = (
        Q(subject__icontains=text)
        | Q(requester_email__icontains=text)
        | Q(account__name__icontains=text)
    )
    ticket_id = parse_reference(text)
    if ticket_id is not None:
        condition |= Q(pk=ticket_id)
    return condition


def ticket_get(*, user, reference: str) -> Ticket:
    """A ticket the user may see, by reference (`SUP-000123`), for the API and the customer
    pages alike; another tenant's ticket is simply not found. Staff without the permission
    get 403, as on the list."""
    ticket_id = parse_reference(reference)
    if ticket_id is None or not reference.strip().upper().startswith("SUP"):
        raise NotFound("Ticket not found.")
    if is_staff(user):
        require_perm(user, "support.view_ticket")
    qs = visible_to(user, Ticket.objects.all(), perm="support.view_ticket")
    try:
        return qs.select_related("account__user", "assignee", "merged_into", "csat").get(
            pk=ticket_id
        )
    except Ticket.DoesNotExist:
        raise NotFound("Ticket not found.") from None


def ticket_message_list(*, user, ticket: Ticket) -> QuerySet[TicketMessage]:
    """The thread as the user may read it: customers never get internal notes."""
    qs = ticket.messages.select_related("author").order_by("created_at", "id")
    if not can_see_internal(user):
        qs = qs.filter(internal=False)
    return qs


# --- dashboard metrics ------------------------------------------------------------------------


@dataclass
class Percentiles:
    count: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None


@dataclass
class SupportMetrics:
    date_from: dt.date
    date_to: dt.date
    created: int = 0
    open_by_status: dict = field(default_factory=dict)  # status -> {level: n, "total": n}
    open_by_level: dict = field(default_factory=dict)  # level -> n
    open_total: int = 0
    breached_total: int = 0
    breached: list = field(default_factory=list)
    first_response_met: int = 0
    first_response_missed: int = 0
    resolution_met: int = 0
    resolution_missed: int = 0
    csat_count: int = 0
    csat_average: float | None = None
    first_response: dict = field(default_factory=dict)  # "all"/"channel"/"priority" -> ...
    resolution: dict = field(default_factory=dict)

    @staticmethod
    def _rate(met: int, missed: int) -> float | None:
        return round(100 * met / (met + missed), 1) if met + missed else None

    @property
    def first_response_attainment(self) -> float | None:
        return self._rate(self.first_response_met, self.first_response_missed)

    @property
    def resolution_attainment(self) -> float | None:
        return self._rate(self.resolution_met, self.resolution_missed)


def metrics_window(
    date_from: dt.date | None, date_to: dt.date | None, *, default_days: int = 30
) -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    date_to = date_to or today
    date_from = date_from or date_to - dt.timedelta(days=default_days - 1)
    if date_from > date_to:
        raise InvalidInput("date_from must be on or before date_to.", field="date_from")
    if (date_to - date_from).days + 1 > MAX_WINDOW_DAYS:
        raise InvalidInput(f"The window is at most {MAX_WINDOW_DAYS} days.", field="date_from")
    return date_from, date_to


def _bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(date_from, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def _seconds_sql(end_column: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM (t.{end_column} - t.created_at))"
    return f"((julianday(t.{end_column}) - julianday(t.created_at)) * 86400.0)"


def duration_percentiles(
    *, end_field: str, group_field: str | None, start: dt.datetime, end: dt.datetime
) -> dict[str, Percentiles]:
    """Median and p90 (linear interpolation, like percentile_cont) of `end_field - created_at`
    per group, for tickets created in [start, end). The database ranks the durations with
    window functions and returns only the rows around each percentile (≤ 4 per group)."""
    if end_field not in ("first_response_at", "resolved_at"):
        raise ValueError(end_field)
    if group_field not in (None, "channel", "priority"):
        raise ValueError(group_field)
    qn = connection.ops.quote_name
    seconds = _seconds_sql(qn(end_field))
    group = f"t.{qn(group_field)}" if group_field else "'all'"
    wanted = " OR ".join(
        f"rn = FLOOR({p} * (n - 1)) + 1 OR rn = CEILING({p} * (n - 1)) + 1" for p in (0.5, 0.9)
    )
    sql = (
        f"SELECT grp, n, rn, secs FROM ("  # noqa: S608 (identifiers are whitelisted above)
        f"SELECT {group} AS grp, {seconds} AS secs, "
        f"ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY {seconds}, t.id) AS rn, "
        f"COUNT(*) OVER (PARTITION BY {group}) AS n "
        f"FROM {qn(Ticket._meta.db_table)} t "
        f"WHERE t.created_at >= %s AND t.created_at < %s AND t.{qn(end_field)} IS NOT NULL"
        f") ranked WHERE {wanted}"
    )
    ops = connection.ops
    rows: dict[str, tuple[int, dict[int, float]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            sql, [ops.adapt_datetimefield_value(start), ops.adapt_datetimefield_value(end)]
        )
        for grp, n, rn, secs in cursor.fetchall():
            _count, values = rows.setdefault(str(grp), (int(n), {}))
            values[int(rn)] = float(secs)
    result = {}
    for grp, (n, values) in rows.items():
        result[grp] = Percentiles(
            count=n,
            median_seconds=_interpolate(values, n, 0.5),
            p90_seconds=_interpolate(values, n, 0.9),
        )
    return result


def _interpolate(values: dict[int, float], n: int, p: float) -> float:
    position = p * (n - 1)
    lo, hi = math.floor(position), math.ceil(position)
    low, high = values[lo + 1], values[hi + 1]
    return round(low + (high - low) * (position - lo), 1)


def support_metrics_get(
    *, user, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> SupportMetrics:
    """The support dashboard: open tickets by status and level, SLA attainment, breached
    tickets, and median/p90 first-response and resolution times by channel and priority for
    tickets created in the window. A fixed number of aggregate queries."""
    require_perm(user, "support.view_ticket")
    date_from, date_to = metrics_window(date_from, date_to)
    start, end = _bounds(date_from, date_to)
    now = timezone.now()
    m = SupportMetrics(date_from=date_from, date_to=date_to)

    levels = (1, 2, 3, 4)
    m.open_by_status = {s: {**dict.fromkeys(levels, 0), "total": 0} for s in Ticket.ACTIVE_STATUSES}
    m.open_by_level = dict.fromkeys(levels, 0)
    grouped = (
        Ticket.objects.filter(status__in=Ticket.ACTIVE_STATUSES)
        .values_list("status", "escalation_level")
        .annotate(n=Count("id"))
        .order_by()
    )
    for status, level, n in grouped:
        m.open_by_status[status][level] = n
        m.open_by_status[status]["total"] += n
        m.open_by_level[level] += n
        m.open_total += n

    breached = Ticket.objects.filter(Ticket.breached_q(now))
    m.breached_total = breached.count()
    m.breached = list(
        breached.select_related("account", "assignee").order_by("first_response_due_at", "id")[
            :BREACHED_LIST_SIZE
        ]
    )

    window = Ticket.objects.filter(created_at__gte=start, created_at__lt=end)
    first_due = F("first_response_due_at")
    resolution_due = F("resolution_due_at")
    totals = window.aggregate(
        created=Count("id"),
        first_met=Count("id", filter=Q(first_response_at__lte=first_due)),
        first_missed=Count(
            "id", filter=Q(first_response_at__gt=first_due) | Ticket.first_response_breached_q(now)
        ),
        resolution_met=Count("id", filter=Q(resolved_at__lte=resolution_due)),
        resolution_missed=Count(
            "id", filter=Q(resolved_at__gt=resolution_due) | Ticket.resolution_breached_q(now)
        ),
    )
    m.created = totals["created"]
    m.first_response_met = totals["first_met"]
    m.first_response_missed = totals["first_missed"]
    m.resolution_met = totals["resolution_met"]
    m.resolution_missed = totals["resolution_missed"]
    csat = CSATRating.objects.filter(
        ticket__created_at__gte=start, ticket__created_at__lt=end
    ).aggregate(n=Count("id"), avg=Avg("rating"))
    m.csat_count = csat["n"]
    m.csat_average = round(float(csat["avg"]), 2) if csat["avg"] is not None else None

    for end_field, target in (
        ("first_response_at", m.first_response),
        ("resolved_at", m.resolution),
    ):
        overall = duration_percentiles(end_field=end_field, group_field=None, start=start, end=end)
        target["all"] = overall.get("all", Percentiles())
        for group_field, choices in (("channel", Channel), ("priority", Priority)):
            found = duration_percentiles(
                end_field=end_field, group_field=group_field, start=start, end=end
            )
            target[group_field] = {
                value: found.get(value, Percentiles()) for value in choices.values
            }
    return m


# --- the agents' queue ------------------------------------------------------------------------

# The saved views of the queue: (key, label). The queue opens on "open" (open work).
QUEUE_VIEWS = [
    ("open", "Open work"),
    ("mine", "My open"),
    ("unassigned", "Unassigned"),
    ("breached", "Breached"),
    ("waiting", "Waiting on customer"),
    ("solved", "Recently solved"),
    ("all", "All"),
]
DEFAULT_QUEUE_VIEW = "open"
RECENTLY_SOLVED_DAYS = 7


def queue_view_key(value: str | None) -> str:
    """The saved view a request asks for; anything unknown is the default (open work)."""
    keys = {key for key, _ in QUEUE_VIEWS}
    return value if value in keys else DEFAULT_QUEUE_VIEW


def queue_annotate(qs: QuerySet[Ticket], now: dt.datetime) -> QuerySet[Ticket]:
    """`queue_breached` (0 breached, 1 not) and `queue_due` (the next SLA deadline: first
    response until answered, then resolution; empty once resolved or closed), computed in
    SQL so the queue sorts by them."""
    from django.db.models import Case, IntegerField, Value, When

    return qs.annotate(
        queue_breached=Case(
            When(Ticket.breached_q(now), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        queue_due=Case(
            When(~Q(status__in=Ticket.ACTIVE_STATUSES), then=Value(None)),
            When(first_response_at__isnull=True, then=F("first_response_due_at")),
            default=F("resolution_due_at"),
        ),
    )


def queue_filter(qs: QuerySet[Ticket], *, view: str, user, now: dt.datetime) -> QuerySet[Ticket]:
    """One saved view of the queue applied to `qs` (already scoped to what `user` may see)."""
    active = Q(status__in=Ticket.ACTIVE_STATUSES)
    if view == "open":
        return qs.filter(active)
    if view == "mine":
        return qs.filter(active, assignee_id=user.pk)
    if view == "unassigned":
        return qs.filter(active, assignee__isnull=True)
    if view == "breached":
        return qs.filter(Ticket.breached_q(now))
    if view == "waiting":
        return qs.filter(status=Ticket.Status.PENDING)
    if view == "solved":
        since = now - dt.timedelta(days=RECENTLY_SOLVED_DAYS)
        return qs.filter(
            status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED], resolved_at__gte=since
        )
    return qs


def queue_ordering(view: str) -> list[str]:
    """Open work sorts by SLA: breached first, then the nearest deadline; recently solved
    tickets newest first; "All" follows the same SLA order (finished tickets last)."""
    if view == "solved":
        return ["-resolved_at", "-id"]
    return ["queue_breached", F("queue_due").asc(nulls_last=True), "-created_at", "-id"]


@dataclass(frozen=True)
class MergeSide:
    ticket: Ticket
    message_count: int
    first_message: str
    last_message: str


@dataclass(frozen=True)
class MergePreview:
    source: MergeSide
    target: MergeSide
    same_requester: bool


def _merge_side(ticket: Ticket) -> MergeSide:
    messages = list(
        ticket.messages.filter(internal=False).order_by("created_at", "id").values_list("body")
    )
    bodies = [body for (body,) in messages]
    return MergeSide(
        ticket=ticket,
        message_count=len(bodies),
        first_message=bodies[0][:400] if bodies else "",
        last_message=bodies[-1][:400] if len(bodies) > 1 else "",
    )


def merge_preview(*, source: Ticket, target: Ticket) -> MergePreview:
    """Both tickets of a merge, side by side, for the agent to confirm; `same_requester`
    says whether the merge service will accept them."""
    same = (source.account_id is not None and source.account_id == target.account_id) or (
        source.account_id is None
        and target.account_id is None
        and source.requester_email.lower() == target.requester_email.lower()
    )
    return MergePreview(source=_merge_side(source), target=_merge_side(target), same_requester=same)


MAX_MERGE_HOPS = 5


def merged_survivor(*, user, ticket: Ticket) -> Ticket | None:
    """The ticket a merged ticket's conversation continues on (following merges of merges),
    when the user may see it; None for a ticket that was not merged."""
    seen = {ticket.pk}
    survivor = None
    current = ticket
    for _ in range(MAX_MERGE_HOPS):
        if current.merged_into_id is None or current.merged_into_id in seen:
            break
        seen.add(current.merged_into_id)
        nxt = (
            visible_to(user, Ticket.objects.all(), perm="support.view_ticket")
            .filter(pk=current.merged_into_id)
            .first()
        )
        if nxt is None:
            break
        survivor = current = nxt
    return survivor


# --- attachments ------------------------------------------------------------------------------


def attachment_list(*, user, ticket: Ticket) -> QuerySet:
    """A ticket's files the user may see: customers never see files on internal notes."""
    from support.models import Attachment

    qs = Attachment.objects.filter(ticket=ticket).order_by("created_at", "id")
    if not can_see_internal(user):
        qs = qs.exclude(message__internal=True)
    return qs


def attachments_by_message(*, user, ticket: Ticket) -> dict[int | None, list]:
    """The ticket's visible files grouped by message id (one query), each with its link."""
    from support.attachments import download_url

    grouped: dict[int | None, list] = {}
    for attachment in attachment_list(user=user, ticket=ticket):
        attachment.url = download_url(attachment)
        grouped.setdefault(attachment.message_id, []).append(attachment)
    return grouped


def attachment_get(*, user, attachment_id: int):
    """One file the user may see (behind the ticket's tenant wall), else NotFound."""
    from support.models import Attachment

    tickets = visible_to(user, Ticket.objects.all(), perm="support.view_ticket")
    qs = Attachment.objects.select_related("ticket", "message").filter(ticket__in=tickets)
    if not can_see_internal(user):
        qs = qs.exclude(message__internal=True)
    attachment = qs.filter(pk=attachment_id).first()
    if attachment is None:
        raise NotFound("Attachment not found.")
    return attachment


# --- the ticket page ------------------------------------------------------------------------


def activity_mark(ticket: Ticket) -> str:
    """What the agent's page was opened on: the last history row and message ids."""
    last_history = ticket.history.order_by("-history_id").values_list("history_id", flat=True)
    last_message = ticket.messages.order_by("-id").values_list("id", flat=True)
    return f"{last_history.first() or 0}:{last_message.first() or 0}"


def activity_since(*, ticket: Ticket, mark: str, user) -> list[str]:
    """What others did to the ticket after `mark` (activity_mark): replies, notes and
    changes by another agent or the requester, as sentences for the collision notice."""
    try:
        history_id, message_id = (int(part) for part in mark.split(":"))
    except ValueError:
        return []
    notices = []
    messages = (
        ticket.messages.filter(id__gt=message_id)
        .exclude(author_id=user.pk)
        .select_related("author")
        .order_by("id")
    )
    for message in messages:
        who = (
            message.author.get_username()
            if message.author
            else (message.author_email or "the system")
        )
        kind = "added an internal note" if message.internal else "replied"
        notices.append(f"{who} {kind} at {timezone.localtime(message.created_at):%H:%M}.")
    changes = (
        ticket.history.filter(history_id__gt=history_id)
        .exclude(history_user_id=user.pk)
        .select_related("history_user")
        .order_by("history_id")
    )
    for row in changes:
        who = row.history_user.get_username() if row.history_user else "the system"
        what = row.history_change_reason or "changed the ticket"
        notices.append(f"{who}: {what} at {timezone.localtime(row.history_date):%H:%M}.")
    return notices


def other_tickets(*, ticket: Ticket, limit: int = 8) -> list[Ticket]:
    """The requester's other tickets for the side panel: open ones first, then newest."""
    from django.db.models import Case, IntegerField, Value, When

    if ticket.account_id:
        qs = Ticket.objects.filter(account_id=ticket.account_id)
    else:
        qs = Ticket.objects.filter(requester_email__iexact=ticket.requester_email)
    return list(
        qs.exclude(pk=ticket.pk)
        .annotate(
            finished=Case(
                When(status__in=Ticket.ACTIVE_STATUSES, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("finished", "-created_at", "-id")[:limit]
    )


def account_ticket_list(*, account_id: int, limit: int = 10) -> list[Ticket]:
    """An account's tickets for the account page: open first, then newest."""
    from django.db.models import Case, IntegerField, Value, When

    return list(
        Ticket.objects.filter(account_id=account_id)
        .select_related("assignee")
        .annotate(
            finished=Case(
                When(status__in=Ticket.ACTIVE_STATUSES, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("finished", "-created_at", "-id")[:limit]
    )


# --- figures for the scaling checkpoints (set-based: one query each) -----------------------------


def tickets_by_persona(*, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
    """persona slug → tickets of its accounts opened in [since, until)."""
    return dict(
        Ticket.objects.filter(account__isnull=False, created_at__gte=since, created_at__lt=until)
        .values("account__persona__slug")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("account__persona__slug", "n")
    )


def first_response_journeys(*, since: dt.datetime, until: dt.datetime) -> list[tuple]:
    """(created_at, first_response_at or None, first_response_due_at) per ticket opened in
    [since, until) that was answered or due before `until` (merged tickets left out): the
    journey "ticket opened → first response within SLA". A response after `until` counts
    as none yet."""
    rows = (
        Ticket.objects.filter(created_at__gte=since, created_at__lt=until, merged_into__isnull=True)
        .filter(Q(first_response_at__lt=until) | Q(first_response_due_at__lt=until))
        .order_by()
        .values_list("created_at", "first_response_at", "first_response_due_at")
    )
    return [(c, r if r is not None and r < until else None, d) for c, r, d in rows]


def active_ticket(*, ticket_id: int) -> Ticket | None:
    """The ticket if it is still being worked on (new, open, pending, on hold), else None:
    for services that keep one open ticket per problem (the scaling checkpoints)."""
    return Ticket.objects.filter(pk=ticket_id, status__in=Ticket.ACTIVE_STATUSES).first()
