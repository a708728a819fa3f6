"""Demo support data: tickets across channels, priorities, levels and states (some breached),
with threads, escalations and CSAT ratings, for a share of the accounts and every demo login.
Written set-based and deterministic for a seed and `as_of` date."""

import datetime as dt

from support.models import (
    Channel,
    CSATRating,
    Escalation,
    Priority,
    SLAPolicy,
    Ticket,
    TicketMessage,
)
from support.services import DEFAULT_TARGET_MINUTES, initial_level, insert_history_rows

Status = Ticket.Status
ACCOUNT_SHARE = 0.35
CHANNELS = {
    Channel.EMAIL: 38,
    Channel.WEB: 20,
    Channel.IN_APP: 20,
    Channel.CHAT: 14,
    Channel.API: 8,
}
PRIORITIES = {Priority.LOW: 20, Priority.NORMAL: 50, Priority.HIGH: 22, Priority.URGENT: 8}
STATUSES = {
    Status.NEW: 9,
    Status.OPEN: 16,
    Status.PENDING: 9,
    Status.ON_HOLD: 4,
    Status.RESOLVED: 27,
    Status.CLOSED: 35,
}
PROBLEMS = [
    (
        "Campaign not tracking correctly",
        "Impressions stopped updating for my {sponsor} read "
        "yesterday. The dashboard still shows last week's numbers.",
        ["attribution", "bug"],
    ),
    (
        "Invoice shows the wrong amount",
        "My last invoice charged the growth plan but I am on starter. Can you check?",
        ["billing"],
    ),
    (
        "How do I export campaign metrics?",
        "I need a CSV of all my campaign metrics for my accountant.",
        ["export", "how-to"],
    ),
    (
        "Sponsor link returns 404",
        "Listeners report the promo link for {sponsor} is broken.",
        ["links", "bug"],
    ),
    ("Add a teammate to my account", "Can my producer get access to the reports?", ["access"]),
    (
        "Renewal pricing question",
        "{sponsor} wants to renew for another quarter; can we keep the same rate?",
        ["renewal", "sales"],
    ),
    (
        "API token stopped working",
        "Our upload script gets 401 since this morning.",
        ["api", "auth"],
    ),
    (
        "Conversions look too low",
        "Clicks are normal but conversions dropped to almost zero.",
        ["attribution"],
    ),
    ("Delete an old campaign", "Please remove the test campaign I created by mistake.", ["data"]),
    ("Chat: question about reports", "Hi! Where do I find the weekly report?", ["how-to"]),
]
SPONSORS = ["Acme Mattress", "Northwind VPN", "Bluebird Meals", "Orbit Audio", "Fernleaf Tea"]
AGENT_REPLIES = [
    "Thanks for reaching out! I'm looking into this now.",
    "Thanks — could you send a screenshot of what you see?",
    "I've reproduced this and passed it to our engineers; I'll update you shortly.",
    "Here is how to do it: Account → Exports → choose a date range.",
]
NOTES = [
    "Customer is on an annual plan; prioritise.",
    "Possibly related to last night's deploy.",
    "Checked the logs: token was revoked by the account owner.",
]
ESCALATION_REASONS = [
    "Needs engineering investigation",
    "Billing adjustment above L1 limit",
    "Complex technical issue requiring engineering",
    "Customer is a key account",
]


def seed_demo(ctx) -> None:
    rng = ctx.rng("support")
    now = ctx.now
    targets = {
        p: (dt.timedelta(minutes=f), dt.timedelta(minutes=r))
        for p, (f, r) in DEFAULT_TARGET_MINUTES.items()
    }
    for policy in SLAPolicy.objects.all():
        targets[policy.priority] = (policy.first_response, policy.resolution)
    agents = [
        ctx.staff[name] for name in ("agent1", "agent2", "agent3", "agent4") if name in ctx.staff
    ]
    demo_ids = {c.id for c in ctx.customers.values()}
    chosen = [a for a in ctx.accounts if a.id in demo_ids or rng.random() < ACCOUNT_SHARE]

    tickets, plans = [], []
    showcase = 0  # the demo logins' tickets walk through every status, channel and level
    for n, acc in enumerate(chosen):
        count = rng.randint(4, 6) if acc.id in demo_ids else rng.randint(1, 3)
        for _ in range(count):
            # Every 12th other ticket is an email from a sender with no account.
            unknown = acc.id not in demo_ids and len(tickets) % 12 == 5
            forced = None
            if acc.id in demo_ids:
                forced, showcase = showcase, showcase + 1
            ticket, plan = _ticket(rng, now, acc, targets, agents, unknown, n, forced)
            tickets.append(ticket)
            plans.append(plan)
    Ticket.objects.bulk_create(tickets, batch_size=2000)
    _baseline_history([t.pk for t in tickets], now)

    messages, escalations, ratings = [], [], []
    for ticket, plan in zip(tickets, plans, strict=True):
        messages.extend(_thread(rng, ticket, plan))
        escalations.extend(_escalations(rng, ticket, plan, now))
        if ticket.status in (Status.RESOLVED, Status.CLOSED) and rng.random() < 0.45:
            ratings.append(
                CSATRating(
                    ticket=ticket,
                    rating=rng.choices([5, 4, 3, 2, 1], weights=[45, 30, 12, 8, 5])[0],
                    comment=rng.choice(["", "", "Quick and helpful, thanks!", "Took a while."]),
                    created_at=min(now, (ticket.resolved_at or now) + dt.timedelta(hours=5)),
                )
            )
    TicketMessage.objects.bulk_create(messages, batch_size=5000)
    Escalation.objects.bulk_create(escalations, batch_size=5000)
    CSATRating.objects.bulk_create(ratings, batch_size=5000)
    ctx.counts["support_tickets"] = len(tickets)
    ctx.counts["support_messages"] = len(messages)
    ctx.counts["support_escalations"] = len(escalations)
    ctx.counts["support_csat"] = len(ratings)


def _baseline_history(ids: list[int], now) -> None:
    """One "+" history row per seeded ticket (bulk writes make none), so the first real
    change to a seeded ticket shows what it changed instead of a bare record."""
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        insert_history_rows(
            where_sql=f"t.id IN ({', '.join(['%s'] * len(chunk))})",
            params=chunk,
            reason="Seeded (demo data)",
            user_id=None,
            now=now,
            history_type="+",
        )


def _ticket(rng, now, acc, targets, agents, unknown, n, forced):
    status = rng.choices(list(STATUSES), weights=STATUSES.values())[0]
    priority = rng.choices(list(PRIORITIES), weights=PRIORITIES.values())[0]
    channel = (
        Channel.EMAIL if unknown else rng.choices(list(CHANNELS), weights=CHANNELS.values())[0]
    )
    bonus = rng.choices([0, 1, 2], weights=[70, 22, 8])[0]
    if forced is not None:
        status = list(STATUSES)[forced % len(STATUSES)]
        channel = list(CHANNELS)[forced % len(CHANNELS)]
        priority = list(PRIORITIES)[forced % len(PRIORITIES)]
        bonus = forced % 3
    first, resolution = targets[priority]
    if status == Status.NEW:
        age = dt.timedelta(minutes=rng.randint(5, 16 * 60))
    elif status in (Status.OPEN, Status.PENDING, Status.ON_HOLD):
        age = dt.timedelta(minutes=rng.randint(60, 6 * 24 * 60))
    else:
        age = dt.timedelta(minutes=rng.randint(2 * 24 * 60, 90 * 24 * 60))
    created = max(now - age, acc.created_at + dt.timedelta(hours=1))
    created = min(created, now - dt.timedelta(minutes=5))
    # A ticket titled as a chat only on the chat channel.
    fitting = [
        i
        for i, (subject, _, _) in enumerate(PROBLEMS)
        if channel == Channel.CHAT or not subject.startswith("Chat:")
    ]
    problem = fitting[rng.randrange(len(fitting))]
    base = initial_level(priority)
    level = min(4, base + bonus)
    ticket = Ticket(
        account_id=None if unknown else acc.id,
        requester_email=f"listener{n}@example.net" if unknown else acc.email,
        channel=channel,
        subject=PROBLEMS[problem][0],
        priority=priority,
        status=status,
        escalation_level=level,
        tags=",".join(sorted(PROBLEMS[problem][2])),
        created_at=created,
        updated_at=created,
        first_response_due_at=created + first,
        resolution_due_at=created + resolution,
        chat_session_id=f"demo-{n}-{rng.randrange(10**9)}" if channel == Channel.CHAT else "",
    )
    if status != Status.NEW:
        # Most first replies land within the target; a share are late (breached).
        answered = created + first * rng.uniform(0.1, 1.5)
        ticket.first_response_at = min(answered, now - dt.timedelta(minutes=1))
        ticket.updated_at = ticket.first_response_at
        if agents and rng.random() < 0.8:
            ticket.assignee = agents[min(level, len(agents)) - 1]
    if status in (Status.RESOLVED, Status.CLOSED):
        resolved = ticket.first_response_at + resolution * rng.uniform(0.05, 1.3)
        ticket.resolved_at = min(resolved, now - dt.timedelta(minutes=1))
        ticket.updated_at = ticket.resolved_at
        if status == Status.CLOSED:
            ticket.closed_at = min(ticket.resolved_at + dt.timedelta(days=3), now)
            ticket.updated_at = ticket.closed_at
    if status == Status.PENDING:
        ticket.sla_paused_at = max(ticket.first_response_at, now - dt.timedelta(hours=20))
    return ticket, {"problem": problem, "base_level": base}


def _thread(rng, ticket, plan):
    text = PROBLEMS[plan["problem"]][1].format(sponsor=rng.choice(SPONSORS))
    rows = [
        TicketMessage(
            ticket=ticket,
            author_kind=TicketMessage.Author.REQUESTER,
            author_email=ticket.requester_email,
            body=text,
            channel=ticket.channel,
            created_at=ticket.created_at,
        )
    ]
    if ticket.first_response_at is not None:
        if rng.random() < 0.3:
            rows.append(
                TicketMessage(
                    ticket=ticket,
                    author_kind=TicketMessage.Author.AGENT,
                    internal=True,
                    author=ticket.assignee,
                    body=rng.choice(NOTES),
                    channel=ticket.channel,
                    created_at=ticket.created_at
                    + (ticket.first_response_at - ticket.created_at) / 2,
                )
            )
        rows.append(
            TicketMessage(
                ticket=ticket,
                author_kind=TicketMessage.Author.AGENT,
                author=ticket.assignee,
                body=rng.choice(AGENT_REPLIES),
                channel=ticket.channel,
                created_at=ticket.first_response_at,
                emailed_at=ticket.first_response_at,
            )
        )
    if ticket.resolved_at is not None:
        rows.append(
            TicketMessage(
                ticket=ticket,
                author_kind=TicketMessage.Author.AGENT,
                author=ticket.assignee,
                body="This is fixed now. Reply to this message if anything is still off.",
                channel=ticket.channel,
                created_at=ticket.resolved_at,
                emailed_at=ticket.resolved_at,
            )
        )
    return rows


def _escalations(rng, ticket, plan, now):
    rows = []
    start = ticket.first_response_at or ticket.created_at
    for i, level in enumerate(range(plan["base_level"], ticket.escalation_level)):
        automatic = rng.random() < 0.3
        # Half-hour steps after the first reply, never later than now (a ticket from minutes
        # ago was escalated in the minutes since).
        at = min(start + dt.timedelta(minutes=30 * (i + 1)), now - dt.timedelta(seconds=i + 1))
        rows.append(
            Escalation(
                ticket=ticket,
                from_level=level,
                to_level=level + 1,
                reason="Resolution SLA breached" if automatic else rng.choice(ESCALATION_REASONS),
                escalated_by=None if automatic else ticket.assignee,
                automatic=automatic,
                created_at=max(at, ticket.created_at),
                notified_at=max(at, ticket.created_at),
            )
        )
    return rows
