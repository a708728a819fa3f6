"""The ticket status machine, escalation rules, SLA clocks, threads and merges."""

import datetime as dt
import itertools

import pytest
from django.core import mail

from opsplatform.errors import Conflict, InvalidInput
from support import services
from support.models import Channel, CSATRating, Escalation, Priority, Ticket, TicketMessage
from tests.factories import AccountFactory
from tests.support.factories import make_agent, make_ticket, reply

pytestmark = pytest.mark.django_db
Status = Ticket.Status
ALL_PAIRS = list(itertools.product(Status.values, Status.values))
# The ticket status machine, spelled out (not read from Ticket.STATUS_MACHINE).
ALLOWED = {
    ("new", "open"),
    ("new", "pending"),
    ("new", "on_hold"),
    ("new", "resolved"),
    ("new", "closed"),
    ("open", "pending"),
    ("open", "on_hold"),
    ("open", "resolved"),
    ("open", "closed"),
    ("pending", "open"),
    ("pending", "on_hold"),
    ("pending", "resolved"),
    ("pending", "closed"),
    ("on_hold", "open"),
    ("on_hold", "pending"),
    ("on_hold", "resolved"),
    ("on_hold", "closed"),
    ("resolved", "open"),
    ("resolved", "closed"),
}
CUSTOMER_ALLOWED = {
    ("new", "closed"),
    ("open", "closed"),
    ("pending", "closed"),
    ("on_hold", "closed"),
    ("resolved", "closed"),
    ("resolved", "open"),
}
LABELS = {
    "new": "new",
    "open": "open",
    "pending": "pending (waiting on customer)",
    "on_hold": "on hold",
    "resolved": "resolved",
    "closed": "closed",
}


def ticket_in(status, **kwargs):
    ticket = make_ticket(**kwargs)
    Ticket.objects.filter(pk=ticket.pk).update(status=status)
    ticket.refresh_from_db()
    return ticket


def test_the_table_is_the_documented_one():
    assert Ticket.STATUS_MACHINE.pairs() == ALLOWED
    assert services.CUSTOMER_MOVES == CUSTOMER_ALLOWED


def snapshot(ticket):
    ticket.refresh_from_db()
    fields = [f.attname for f in Ticket._meta.concrete_fields]
    return {name: getattr(ticket, name) for name in fields}


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED))
def test_allowed_transition_moves_and_records_history(current, new, agent, clock):
    ticket = ticket_in(current)
    before = ticket.history.count()

    moved = services.update_ticket_status(ticket=ticket, status=new, notes="done", actor=agent)

    assert moved.status == new
    ticket.refresh_from_db()
    assert ticket.status == new
    latest = ticket.history.first()
    assert ticket.history.count() == before + 1
    assert latest.status == new
    assert latest.history_user == agent
    assert latest.history_change_reason == f"Status {current} → {new}: done"
    note = ticket.messages.get(internal=True)
    assert note.body == f"Status changed to {LABELS[new]}: done"
    assert note.author == agent
    assert ticket.updated_at == clock.now
    if new == "resolved":
        assert ticket.resolved_at == clock.now
    if new == "closed":
        assert ticket.closed_at == clock.now
    assert (ticket.sla_paused_at == clock.now) is (new == "pending")


@pytest.mark.parametrize(("current", "new"), sorted(set(ALL_PAIRS) - ALLOWED))
def test_forbidden_transition_raises_conflict_and_changes_nothing(current, new, agent):
    ticket = ticket_in(current)
    history = ticket.history.count()
    before = snapshot(ticket)

    with pytest.raises(Conflict) as exc:
        services.update_ticket_status(ticket=ticket, status=new, notes="x", actor=agent)

    assert exc.value.code == "invalid_transition"
    assert exc.value.detail == f"A {LABELS[current]} ticket cannot become {LABELS[new]}."
    assert snapshot(ticket) == before
    assert ticket.history.count() == history
    assert not ticket.messages.filter(internal=True).exists()


@pytest.mark.parametrize(("current", "new"), sorted(ALLOWED))
def test_customer_may_only_close_or_reopen(current, new):
    ticket = ticket_in(current)
    history = ticket.history.count()
    if (current, new) in CUSTOMER_ALLOWED:
        services.update_ticket_status(
            ticket=ticket, status=new, by_customer=True, actor=ticket.account.user
        )
        ticket.refresh_from_db()
        assert ticket.status == new
        assert ticket.history.count() == history + 1
        assert ticket.history.first().history_user == ticket.account.user
    else:
        before = snapshot(ticket)
        with pytest.raises(Conflict) as exc:
            services.update_ticket_status(
                ticket=ticket, status=new, by_customer=True, actor=ticket.account.user
            )
        assert exc.value.code == "invalid_transition"
        assert snapshot(ticket) == before
        assert ticket.history.count() == history


def test_unknown_status_is_invalid_input():
    ticket = make_ticket()
    with pytest.raises(InvalidInput):
        services.update_ticket_status(ticket=ticket, status="bogus")
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW


# --- creation ---------------------------------------------------------------------------------


def test_create_ticket_sets_sla_due_times_from_policy(clock):
    ticket = make_ticket(priority=Priority.HIGH, tags=["Bug", "attribution", "bug"])

    assert ticket.reference == f"SUP-{ticket.pk:06d}"
    assert ticket.first_response_due_at == clock.now + dt.timedelta(hours=2)
    assert ticket.resolution_due_at == clock.now + dt.timedelta(hours=24)
    assert ticket.escalation_level == 1
    assert ticket.tag_list == ["attribution", "bug"]
    assert ticket.requester_email == ticket.account.user.email
    assert ticket.messages.get().author_kind == TicketMessage.Author.REQUESTER
    assert ticket.history.get().history_type == "+"


def test_edited_policy_applies_to_new_tickets(clock):
    from support.models import SLAPolicy

    SLAPolicy.objects.filter(priority=Priority.LOW).update(first_response_minutes=15)
    ticket = make_ticket(priority=Priority.LOW)
    assert ticket.first_response_due_at == clock.now + dt.timedelta(minutes=15)


def test_urgent_tickets_start_at_l2():
    assert make_ticket(priority=Priority.URGENT).escalation_level == 2
    assert make_ticket(priority=Priority.HIGH).escalation_level == 1


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("subject", {"subject": "  "}),
        ("description", {"description": ""}),
        ("subject", {"subject": "x" * 201}),
        ("subject", {"subject": "a\x00b"}),
        ("channel", {"channel": "fax"}),
        ("priority", {"priority": "critical"}),
        ("tags", {"tags": ["not a tag!"]}),
    ],
)
def test_create_ticket_rejects_bad_input_and_writes_nothing(field, kwargs):
    account = AccountFactory()
    with pytest.raises(InvalidInput) as exc:
        make_ticket(account=account, **kwargs)
    assert exc.value.field == field
    assert Ticket.objects.count() == 0
    assert TicketMessage.objects.count() == 0


def test_ticket_without_account_needs_a_valid_email():
    with pytest.raises(InvalidInput):
        services.create_ticket(
            subject="Hi", description="x", channel=Channel.EMAIL, requester_email="not-an-email"
        )
    assert not Ticket.objects.exists()


# --- escalation -------------------------------------------------------------------------------


def test_escalate_moves_up_records_and_notifies_the_level(
    agent, django_capture_on_commit_callbacks
):
    l3 = make_agent(3, email="l3@opsplatform.local")
    make_agent(2, email="l2@opsplatform.local")
    ticket = make_ticket()

    with django_capture_on_commit_callbacks(execute=True):
        escalation = services.escalate_ticket(
            ticket=ticket, level=3, actor=agent, reason="Needs engineering"
        )

    ticket.refresh_from_db()
    assert ticket.escalation_level == 3
    assert (escalation.from_level, escalation.to_level) == (1, 3)
    assert escalation.escalated_by == agent and not escalation.automatic
    assert ticket.history.first().history_change_reason == "Escalated to L3: Needs engineering"
    assert ticket.history.first().history_user == agent
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [l3.email]
    assert ticket.reference in mail.outbox[0].subject
    escalation.refresh_from_db()
    assert escalation.notified_at is not None


def test_notification_task_is_safe_to_run_twice(agent, django_capture_on_commit_callbacks):
    make_agent(2, email="l2@opsplatform.local")
    ticket = make_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        escalation = services.escalate_ticket(ticket=ticket, level=2, reason="r", actor=agent)

    from support import tasks

    assert tasks.notify_escalation(escalation.id) is False
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("level", [1, 2])
def test_escalation_is_upward_only(level, agent):
    ticket = make_ticket(priority=Priority.URGENT)  # starts at L2

    with pytest.raises(Conflict) as exc:
        services.escalate_ticket(ticket=ticket, level=level, reason="why", actor=agent)

    assert exc.value.code == "not_upward"
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2
    assert not Escalation.objects.exists()


@pytest.mark.parametrize("reason", ["", "   "])
def test_escalation_needs_a_reason(reason, agent):
    ticket = make_ticket()
    with pytest.raises(InvalidInput) as exc:
        services.escalate_ticket(ticket=ticket, level=2, reason=reason, actor=agent)
    assert exc.value.field == "reason"
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1
    assert not Escalation.objects.exists()


@pytest.mark.parametrize("level", [0, 5, True])
def test_escalation_level_must_exist(level, agent):
    ticket = make_ticket()
    with pytest.raises(InvalidInput):
        services.escalate_ticket(ticket=ticket, level=level, reason="r", actor=agent)
    assert not Escalation.objects.exists()


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.CLOSED])
def test_finished_tickets_cannot_be_escalated(status, agent):
    ticket = ticket_in(status)
    with pytest.raises(Conflict):
        services.escalate_ticket(ticket=ticket, level=2, reason="r", actor=agent)
    assert not Escalation.objects.exists()


def test_raising_priority_to_urgent_escalates_to_l2(agent, clock):
    ticket = make_ticket(priority=Priority.NORMAL)
    services.update_ticket_details(ticket=ticket, priority=Priority.URGENT, actor=agent)
    ticket.refresh_from_db()
    assert ticket.escalation_level == 2
    assert Escalation.objects.get().to_level == 2
    # normal → urgent: due times shift by the difference of the targets (8h→30min, 3d→8h)
    assert ticket.first_response_due_at == clock.now + dt.timedelta(minutes=30)
    assert ticket.resolution_due_at == clock.now + dt.timedelta(hours=8)


# --- SLA clock --------------------------------------------------------------------------------


def test_pending_pauses_the_sla_clock(clock, agent):
    ticket = make_ticket(priority=Priority.NORMAL)  # first response 8h, resolution 72h
    reply(ticket, agent)  # answered: only the resolution clock runs now
    due = ticket.resolution_due_at

    clock.advance(hours=10)
    services.update_ticket_status(ticket=ticket, status=Status.PENDING, actor=agent)
    clock.advance(hours=100)  # the customer takes 100 hours; due time has long passed
    ticket.refresh_from_db()
    assert not ticket.is_breached(clock.now)
    assert not Ticket.objects.filter(Ticket.breached_q(clock.now)).exists()

    services.add_message(
        ticket=ticket,
        body="Here is the screenshot",
        author=ticket.account.user,
        author_kind=TicketMessage.Author.REQUESTER,
    )

    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.sla_paused_at is None
    assert ticket.resolution_due_at == due + dt.timedelta(hours=100)
    assert not ticket.is_breached(clock.now)
    clock.advance(hours=62, minutes=1)  # 10 + 62h of running clock > 72h
    assert ticket.is_breached(clock.now)
    assert Ticket.objects.filter(Ticket.breached_q(clock.now), pk=ticket.pk).exists()


def test_breach_before_pending_stays_breached(clock, agent):
    ticket = make_ticket(priority=Priority.URGENT)  # first response 30 min
    clock.advance(minutes=31)
    services.update_ticket_status(ticket=ticket, status=Status.PENDING, actor=agent)
    clock.advance(hours=5)
    ticket.refresh_from_db()
    assert ticket.first_response_breached(clock.now)
    assert Ticket.objects.filter(Ticket.breached_q(clock.now), pk=ticket.pk).exists()


def test_reopen_restarts_the_resolution_clock(clock, agent):
    ticket = make_ticket(priority=Priority.HIGH)
    reply(ticket, agent)
    services.update_ticket_status(ticket=ticket, status=Status.RESOLVED, actor=agent)
    clock.advance(days=3)

    services.add_message(
        ticket=ticket,
        body="Still broken",
        author=ticket.account.user,
        author_kind=TicketMessage.Author.REQUESTER,
    )

    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.resolved_at is None
    assert ticket.resolution_due_at == clock.now + dt.timedelta(hours=24)
    assert (
        ticket.history.first().history_change_reason == "Status resolved → open: customer replied"
    )


# --- thread -----------------------------------------------------------------------------------


def test_first_public_reply_sets_first_response_and_emails_requester(
    clock, agent, django_capture_on_commit_callbacks
):
    ticket = make_ticket(subject="Broken link")
    clock.advance(minutes=42)

    with django_capture_on_commit_callbacks(execute=True):
        reply(ticket, agent, "Fixed the link.")

    ticket.refresh_from_db()
    assert ticket.first_response_at == clock.now
    assert ticket.status == Status.OPEN
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [ticket.requester_email]
    assert sent.subject == f"[{ticket.reference}] Re: Broken link"
    assert "Fixed the link." in sent.body
    message = ticket.messages.get(author_kind=TicketMessage.Author.AGENT)
    assert message.emailed_at is not None
    assert sent.extra_headers["Message-ID"] == message.message_id

    clock.advance(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        reply(ticket, agent, "One more thing.")
    ticket.refresh_from_db()
    assert ticket.first_response_at == clock.now - dt.timedelta(minutes=5)
    assert len(mail.outbox) == 2


def test_internal_note_is_never_emailed_nor_a_first_response(
    agent, django_capture_on_commit_callbacks
):
    ticket = make_ticket()
    with django_capture_on_commit_callbacks(execute=True):
        note = reply(ticket, agent, "Customer is grumpy", internal=True)
    ticket.refresh_from_db()
    assert ticket.first_response_at is None
    assert ticket.status == Status.NEW
    assert mail.outbox == []
    from support import notifications

    assert notifications.send_public_reply(message_id=note.id) is False
    assert mail.outbox == []


def test_requester_cannot_write_internal_notes():
    ticket = make_ticket()
    with pytest.raises(InvalidInput):
        services.add_message(
            ticket=ticket,
            body="x",
            internal=True,
            author=ticket.account.user,
            author_kind=TicketMessage.Author.REQUESTER,
        )
    assert ticket.messages.count() == 1


def test_closed_ticket_takes_no_messages(agent):
    ticket = ticket_in(Status.CLOSED)
    with pytest.raises(Conflict):
        reply(ticket, agent)
    assert ticket.messages.count() == 1


def test_assign_only_to_agents(agent):
    ticket = make_ticket()
    services.assign_ticket(ticket=ticket, assignee=agent, actor=agent)
    ticket.refresh_from_db()
    assert ticket.assignee == agent
    assert ticket.history.first().history_change_reason == f"Assigned to {agent.username}"

    with pytest.raises(InvalidInput):
        services.assign_ticket(ticket=ticket, assignee=ticket.account.user, actor=agent)
    ticket.refresh_from_db()
    assert ticket.assignee == agent


def test_merge_moves_the_thread_and_closes_the_duplicate(agent):
    account = AccountFactory()
    original = make_ticket(account=account, description="first")
    duplicate = make_ticket(account=account, description="second")

    services.merge_tickets(source=duplicate, target=original, actor=agent)

    duplicate.refresh_from_db()
    assert duplicate.status == Status.CLOSED
    assert duplicate.merged_into == original
    bodies = list(original.messages.values_list("body", flat=True))
    assert bodies[:2] == ["first", "second"]
    assert "Merged" in bodies[2]
    assert not duplicate.messages.exists()


def test_merge_refuses_other_requesters(agent):
    one, two = make_ticket(), make_ticket()
    with pytest.raises(Conflict):
        services.merge_tickets(source=one, target=two, actor=agent)
    one.refresh_from_db()
    assert one.status == Status.NEW and one.merged_into is None
    assert one.messages.count() == 1


def test_csat_once_after_resolution(agent):
    ticket = make_ticket()
    with pytest.raises(Conflict):
        services.rate_ticket(ticket=ticket, rating=5)
    services.update_ticket_status(ticket=ticket, status=Status.RESOLVED, actor=agent)

    services.rate_ticket(ticket=ticket, rating=4, comment="quick")

    assert CSATRating.objects.get(ticket=ticket).rating == 4
    with pytest.raises(Conflict):
        services.rate_ticket(ticket=ticket, rating=1)
    with pytest.raises(InvalidInput):
        services.rate_ticket(ticket=make_ticket(), rating=6)
    assert CSATRating.objects.count() == 1


def test_chat_session_messages_form_one_thread():
    account = AccountFactory()
    first = services.post_chat_message(
        account=account, session_id="s-1", body="Hello?", author=account.user
    )
    second = services.post_chat_message(
        account=account, session_id="s-1", body="Anyone?", author=account.user
    )
    other = services.post_chat_message(
        account=account, session_id="s-2", body="New chat", author=account.user
    )

    assert first.created and not second.created and other.created
    assert first.ticket.pk == second.ticket.pk != other.ticket.pk
    assert first.ticket.channel == Channel.CHAT
    assert list(first.ticket.messages.values_list("body", flat=True)) == ["Hello?", "Anyone?"]


# --- the agent's ticket page save -------------------------------------------------------------


def test_update_ticket_applies_every_change_in_one_save(agent, clock):
    ticket = make_ticket(subject="Old subject")

    saved = services.update_ticket(
        ticket=ticket,
        changes={
            "subject": "New subject",
            "priority": "high",
            "tags": "Billing, bug",
            "assignee": agent,
            "internal_note": "Looked at the logs",
            "reply": "Fixed, please retry.",
            "status": "pending",
            "status_notes": "waiting for confirmation",
        },
        actor=agent,
    )

    assert saved.pk == ticket.pk
    ticket.refresh_from_db()
    assert ticket.subject == "New subject"
    assert ticket.priority == "high"
    assert ticket.tags == "billing,bug"
    assert ticket.assignee == agent
    assert ticket.status == "pending"
    assert ticket.first_response_at == clock.now
    assert list(ticket.messages.order_by("id").values_list("body", "internal")) == [
        ("It broke.", False),
        ("Looked at the logs", True),
        ("Fixed, please retry.", False),
        ("Status changed to pending (waiting on customer): waiting for confirmation", True),
    ]
    reasons = list(
        ticket.history.filter(history_user=agent)
        .order_by("history_id")
        .values_list("history_change_reason", flat=True)
    )
    assert reasons == [
        "Changed subject, tags, priority → high",
        "Assigned to " + agent.get_username(),
        "First response; Status new → open",
        "Status open → pending: waiting for confirmation",
    ]


def test_update_ticket_status_already_reached_by_the_reply_is_no_move(agent):
    ticket = make_ticket()

    services.update_ticket(
        ticket=ticket, changes={"reply": "On it.", "status": "open"}, actor=agent
    )

    ticket.refresh_from_db()
    assert ticket.status == "open"
    reasons = ticket.history.order_by("history_id").values_list("history_change_reason", flat=True)
    assert list(reasons) == ["Opened via Web form", "First response; Status new → open"]


def test_update_ticket_refused_step_rolls_back_the_earlier_ones(agent):
    ticket = make_ticket(subject="Kept")
    services.update_ticket_status(ticket=ticket, status="resolved", actor=agent)
    history = ticket.history.count()
    messages = ticket.messages.count()

    with pytest.raises(Conflict) as exc:
        services.update_ticket(
            ticket=ticket,
            changes={"subject": "Lost", "assignee": agent, "status": "pending"},
            actor=agent,
        )

    assert exc.value.code == "invalid_transition"
    ticket.refresh_from_db()
    assert (ticket.subject, ticket.assignee, ticket.status) == ("Kept", None, "resolved")
    assert ticket.history.count() == history
    assert ticket.messages.count() == messages


def test_update_ticket_refuses_an_unknown_change(agent):
    ticket = make_ticket(subject="Kept")
    with pytest.raises(ValueError, match="status_"):
        services.update_ticket(ticket=ticket, changes={"status_": "open"}, actor=agent)
    ticket.refresh_from_db()
    assert ticket.status == "new"


@pytest.mark.parametrize(
    ("call", "field", "detail"),
    [
        (
            lambda t, a: services.update_ticket_status(
                ticket=t, status="resolved", notes="a\x00b", actor=a
            ),
            "notes",
            "Notes must not contain NUL characters.",
        ),
        (
            lambda t, a: services.update_ticket_status(
                ticket=t, status="resolved", notes="n" * 10_001, actor=a
            ),
            "notes",
            "Notes is longer than 10,000 characters.",
        ),
        (
            lambda t, a: services.rate_ticket(ticket=t, rating=5, comment="a\x00b"),
            "comment",
            "The comment must not contain NUL characters.",
        ),
    ],
)
def test_nul_and_overlong_free_text_is_refused_and_changes_nothing(call, field, detail, agent):
    ticket = make_ticket()
    services.update_ticket_status(ticket=ticket, status="resolved", actor=agent)
    if field == "notes":
        services.update_ticket_status(ticket=ticket, status="open", actor=agent)
    history = ticket.history.count()

    with pytest.raises(InvalidInput) as exc:
        call(ticket, agent)

    assert (exc.value.field, exc.value.detail) == (field, detail)
    assert ticket.history.count() == history
    assert not CSATRating.objects.filter(ticket=ticket).exists()
