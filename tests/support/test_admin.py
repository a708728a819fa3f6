"""The agents' admin: changelist columns, filters, search and query budget; actions including
the escalate page; reply and internal-note forms; read-only status; history."""

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from support import services
from support.models import Escalation, Priority, Ticket, TicketMessage
from tests.factories import AccountFactory
from tests.support.factories import make_agent, make_ticket, reply

pytestmark = pytest.mark.django_db
Status = Ticket.Status
CHANGELIST = "admin:support_ticket_changelist"


@pytest.fixture
def desk(client, agent):
    client.force_login(agent)
    return client


def change_url(ticket):
    return reverse("admin:support_ticket_change", args=[ticket.pk])


def button_url(ticket, name):
    return reverse(f"admin:support_ticket_{name}", args=[ticket.pk])


def change_data(client, ticket, **fields):
    """What the change form posts: its editable fields plus empty inline management forms."""
    response = client.get(change_url(ticket))
    assert response.status_code == 200
    data = {
        "subject": ticket.subject,
        "priority": ticket.priority,
        "tags": ticket.tags,
        "assignee": ticket.assignee_id or "",
        "reply": "",
        "internal_note": "",
        "transition": "",
        "transition_notes": "",
        "_save": "Save",
    }
    for inline in response.context["inline_admin_formsets"]:
        prefix = inline.formset.prefix
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "0",
                f"{prefix}-INITIAL_FORMS": "0",
                f"{prefix}-MIN_NUM_FORMS": "0",
                f"{prefix}-MAX_NUM_FORMS": "1000",
            }
        )
    data.update(fields)
    return data


def add_data(**fields):
    """What the add form posts: a phoned-in request plus empty inline management forms."""
    data = {
        "requester_email": "caller@example.com",
        "channel": "email",
        "tags": "",
        "description": "Caller cannot log in",
    }
    for prefix in ("messages", "escalations", "csat"):
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data.update(fields)
    return data


def test_changelist_shows_the_queue_with_breached_highlighted(desk, clock):
    late = make_ticket(subject="Late one", priority=Priority.URGENT)
    clock.advance(minutes=45)
    fresh = make_ticket(subject="Fresh one")

    page = desk.get(reverse(CHANGELIST)).content.decode()

    for text in (late.reference, fresh.reference, "Late one", "L2", "Urgent", "Web form"):
        assert text in page
    assert page.count("support-sla-breached") == 1
    assert "breached" in page


def _changelist_queries(client, **params):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _bulk_tickets(n, account, agent):
    now = timezone.now()
    Ticket.objects.bulk_create(
        [
            Ticket(
                account=account,
                requester_email="x@example.com",
                channel="web",
                subject=f"Bulk {i}",
                priority="normal",
                assignee=agent if i % 2 else None,
                created_at=now,
                updated_at=now,
                first_response_due_at=now,
                resolution_due_at=now + dt.timedelta(days=1),
            )
            for i in range(n)
        ]
    )


def test_changelist_costs_the_same_at_10_and_500_tickets(desk, agent):
    account = AccountFactory()
    desk.get(reverse(CHANGELIST))  # warm the session and permission caches
    _bulk_tickets(10, account, agent)
    at_10 = _changelist_queries(desk)
    filtered_10 = _changelist_queries(desk, assignee="me", breached="yes", status="new")
    _bulk_tickets(490, account, agent)
    at_500 = _changelist_queries(desk)
    filtered_500 = _changelist_queries(desk, assignee="me", breached="yes", status="new")
    assert at_10 == at_500
    assert filtered_10 == filtered_500


def test_filters_mine_and_breached(desk, agent, clock):
    mine = make_ticket(subject="Assigned to me")
    services.assign_ticket(ticket=mine, assignee=agent, actor=agent)
    late = make_ticket(subject="Overdue", priority=Priority.URGENT)
    clock.advance(hours=1)
    other = make_ticket(subject="Someone else's")

    mine_page = desk.get(reverse(CHANGELIST), {"assignee": "me"}).content.decode()
    breached_page = desk.get(reverse(CHANGELIST), {"breached": "yes"}).content.decode()

    assert "Assigned to me" in mine_page and "Overdue" not in mine_page
    assert "Overdue" in breached_page and other.subject not in breached_page
    assert late.reference in breached_page


def test_search_by_reference_and_requester(desk):
    target = make_ticket(subject="Find me")
    make_ticket(subject="Not me")
    for term in (target.reference, target.reference.lower(), target.requester_email):
        page = desk.get(reverse(CHANGELIST), {"q": term}).content.decode()
        assert "Find me" in page and "Not me" not in page


def _action(client, name, tickets, **extra):
    # Posted from the "All" view: an action acts on the selected rows the view shows.
    return client.post(
        reverse(CHANGELIST) + "?view=all",
        {"action": name, ACTION_CHECKBOX_NAME: [t.pk for t in tickets], **extra},
    )


def test_assign_to_me_resolve_and_close_actions(desk, agent):
    one, two = make_ticket(), make_ticket()

    _action(desk, "assign_to_me", [one, two])
    _action(desk, "resolve", [one])
    _action(desk, "close", [one, two])

    one.refresh_from_db()
    two.refresh_from_db()
    assert one.assignee == agent == two.assignee
    assert one.status == two.status == Status.CLOSED
    assert one.resolved_at is not None and two.resolved_at is None
    assert one.history.filter(history_user=agent).count() == 3


def test_forbidden_transition_action_is_skipped_with_a_message(desk):
    ticket = make_ticket()
    services.update_ticket_status(ticket=ticket, status=Status.CLOSED)
    response = _action(desk, "resolve", [ticket])
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    page = desk.get(reverse(CHANGELIST), {"view": "all"}).content.decode()
    assert "Skipped" in page and "A closed ticket cannot become resolved" in page


def test_escalate_action_asks_for_level_and_reason(desk, agent, django_capture_on_commit_callbacks):
    l3 = make_agent(3, email="l3@opsplatform.local")
    tickets = [make_ticket(), make_ticket()]

    page = _action(desk, "escalate", tickets)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Escalate to level" in html and 'name="reason"' in html
    assert not Escalation.objects.exists()

    missing_reason = _action(desk, "escalate", tickets, apply="1", level="3", reason="")
    assert missing_reason.status_code == 200
    assert "This field is required" in missing_reason.content.decode()
    assert not Escalation.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        done = _action(desk, "escalate", tickets, apply="1", level="3", reason="Needs engineering")
    assert done.status_code == 302
    assert (
        Escalation.objects.filter(
            to_level=3, reason="Needs engineering", escalated_by=agent
        ).count()
        == 2
    )
    assert [m.to for m in mail.outbox] == [[l3.email], [l3.email]]


def test_change_form_reply_note_and_transition(desk, agent, django_capture_on_commit_callbacks):
    ticket = make_ticket(subject="Broken link")

    with django_capture_on_commit_callbacks(execute=True):
        response = desk.post(
            change_url(ticket),
            change_data(
                desk,
                ticket,
                reply="Fixed, please retry.",
                internal_note="Was a CDN issue",
                transition=Status.PENDING,
                transition_notes="waiting for confirmation",
            ),
        )

    assert response.status_code == 302, response.content.decode()[:2000]
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING
    assert ticket.first_response_at is not None
    bodies = list(ticket.messages.values_list("body", "internal"))
    assert ("Fixed, please retry.", False) in bodies
    assert ("Was a CDN issue", True) in bodies
    assert len(mail.outbox) == 1
    assert "Fixed, please retry." in mail.outbox[0].body
    assert "CDN" not in mail.outbox[0].body
    page = desk.get(change_url(ticket)).content.decode()
    assert "Internal note" in page and "Was a CDN issue" in page
    assert page.index("Was a CDN issue") < page.index('name="reply"')  # thread above the form


def test_change_form_edits_priority_and_assignee_through_services(desk, agent):
    ticket = make_ticket(priority=Priority.NORMAL)
    response = desk.post(
        change_url(ticket),
        change_data(desk, ticket, priority=Priority.URGENT, assignee=agent.pk, tags="vip, billing"),
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.priority == Priority.URGENT and ticket.escalation_level == 2
    assert ticket.assignee == agent
    assert ticket.tags == "billing,vip"


def test_status_is_read_only_on_the_form(desk):
    ticket = make_ticket()
    desk.post(
        change_url(ticket), change_data(desk, ticket, status=Status.CLOSED, escalation_level="4")
    )
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and ticket.escalation_level == 1


def test_a_move_the_table_forbids_is_a_form_error(desk):
    ticket = make_ticket()
    services.update_ticket_status(ticket=ticket, status=Status.RESOLVED)
    response = desk.post(
        change_url(ticket),
        change_data(desk, ticket, reply="Reply that must not be stored", transition=Status.PENDING),
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    assert not ticket.messages.filter(author_kind=TicketMessage.Author.AGENT).exists()


def test_a_service_refusal_saves_nothing_of_the_form(desk):
    ticket = make_ticket()
    services.update_ticket_status(ticket=ticket, status=Status.CLOSED)
    response = desk.post(
        change_url(ticket),
        change_data(
            desk,
            ticket,
            subject="New subject",
            internal_note="note",
            reply="Reply that must not be stored",
        ),
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.subject != "New subject"
    assert not ticket.messages.filter(author_kind=TicketMessage.Author.AGENT).exists()
    page = desk.get(change_url(ticket)).content.decode()
    assert "Nothing was saved: This ticket is closed; open a new ticket instead." in page
    assert not LogEntry.objects.filter(object_id=str(ticket.pk)).exists()


def test_add_form_refused_by_the_service_says_why_and_opens_nothing(desk):
    # 21 tags pass the form's pattern but not the service's limit of 20.
    tags = ",".join(f"tag{n}" for n in range(21))
    response = desk.post(
        reverse("admin:support_ticket_add"),
        add_data(subject="Too many tags", priority="normal", tags=tags),
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:support_ticket_add")
    assert not Ticket.objects.filter(subject="Too many tags").exists()
    page = desk.get(reverse("admin:support_ticket_add")).content.decode()
    assert "Nothing was saved: At most 20 tags." in page


def test_add_form_opens_a_ticket_through_the_service(desk, agent):
    response = desk.post(
        reverse("admin:support_ticket_add"), add_data(subject="Phoned in", priority="high")
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    ticket = Ticket.objects.get()
    assert ticket.subject == "Phoned in"
    assert ticket.first_response_due_at == ticket.created_at + dt.timedelta(hours=2)
    assert ticket.messages.get().body == "Caller cannot log in"
    assert ticket.history.get().history_user == agent


def test_history_page(desk, agent):
    ticket = make_ticket()
    services.escalate_ticket(ticket=ticket, level=2, reason="tricky", actor=agent)
    page = desk.get(reverse("admin:support_ticket_history", args=[ticket.pk]))
    assert page.status_code == 200
    assert "Escalated to L2: tricky" in page.content.decode()


def test_tickets_cannot_be_deleted(desk):
    ticket = make_ticket()
    response = desk.post(reverse("admin:support_ticket_delete", args=[ticket.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_staff_without_support_group_cannot_open_the_queue(client):
    from tests.factories import staff_in

    client.force_login(staff_in())
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse("admin:support_ticket_dashboard")).status_code == 403


def test_reply_in_admin_is_seen_in_api_thread(desk, agent, api, account):
    ticket = make_ticket(account=account)
    reply(ticket, agent, "Visible", internal=False)
    messages = api.get(f"support/tickets/{ticket.reference}").json()["messages"]
    assert messages[-1]["body"] == "Visible"


def test_thread_bodies_are_escaped(desk):
    ticket = make_ticket(description="<script>alert('x')</script>\nsecond line")
    page = desk.get(change_url(ticket)).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;<br>second line" in page


# --- Unfold: confirmation pages, buttons on the ticket page, tabs, badges ---------------------


def test_merge_asks_first_and_merges_only_on_confirm(desk, agent):
    account = AccountFactory()
    oldest = make_ticket(account=account, subject="Original")
    duplicate = make_ticket(account=account, subject="Duplicate")

    page = _action(desk, "merge_duplicates", [oldest, duplicate])

    assert page.status_code == 200
    html = page.content.decode()
    assert f"Merge 1 ticket(s) into {oldest.reference}?" in html
    assert f"{duplicate.reference}: Duplicate" in html and 'name="confirm"' in html
    duplicate.refresh_from_db()
    assert duplicate.merged_into is None and duplicate.status == Status.NEW

    done = _action(desk, "merge_duplicates", [oldest, duplicate], confirm="yes")

    assert done.status_code == 302
    duplicate.refresh_from_db()
    assert duplicate.merged_into == oldest and duplicate.status == Status.CLOSED
    assert duplicate.history.first().history_user == agent


def test_ticket_page_buttons_ask_then_act_through_the_services(desk, agent):
    ticket = make_ticket(subject="Button pressed")

    page = desk.get(change_url(ticket)).content.decode()
    for name in ("assign_this_to_me", "resolve_this", "escalate_this"):
        assert f'href="{button_url(ticket, name)}"' in page

    asked = desk.get(button_url(ticket, "resolve_this"))
    assert asked.status_code == 200
    assert f"Resolve {ticket.reference}?" in asked.content.decode()
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW  # a GET never changes anything

    assigned = desk.post(button_url(ticket, "assign_this_to_me"), {"confirm": "yes"})
    resolved = desk.post(button_url(ticket, "resolve_this"), {"confirm": "yes"})

    assert assigned.status_code == resolved.status_code == 302
    assert resolved["Location"] == change_url(ticket)
    ticket.refresh_from_db()
    assert ticket.assignee == agent and ticket.status == Status.RESOLVED
    assert ticket.history.filter(history_user=agent).count() == 2


def test_a_refused_button_says_why_and_changes_nothing(desk):
    ticket = make_ticket()
    services.update_ticket_status(ticket=ticket, status=Status.CLOSED)

    desk.post(button_url(ticket, "resolve_this"), {"confirm": "yes"})

    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    page = desk.get(change_url(ticket)).content.decode()
    assert "A closed ticket cannot become resolved" in page


def test_escalate_button_opens_the_escalate_form_for_this_ticket(desk, agent):
    ticket = make_ticket()

    page = desk.get(button_url(ticket, "escalate_this")).content.decode()

    assert "Escalate to level" in page and ticket.reference in page
    assert f'action="{reverse(CHANGELIST)}"' in page
    assert f'name="{ACTION_CHECKBOX_NAME}" value="{ticket.pk}"' in page
    assert not Escalation.objects.exists()
    _action(desk, "escalate", [ticket], apply="1", level="2", reason="From the button")
    assert Escalation.objects.get().reason == "From the button"


def test_staff_outside_support_cannot_use_the_buttons(client):
    from tests.factories import staff_in

    ticket = make_ticket()
    client.force_login(staff_in())

    response = client.post(button_url(ticket, "resolve_this"), {"confirm": "yes"})

    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW


def test_ticket_page_has_tabs_and_a_coloured_status(desk):
    ticket = make_ticket()

    page = desk.get(change_url(ticket)).content.decode()

    for fieldset_tab in ("requester", "dates"):
        assert f"activeFieldsetTab = '{fieldset_tab}'" in page
    for page_tab in ("general", "escalations", "csat"):
        assert f"activeTab = '{page_tab}'" in page
    assert "support-status-new" in page and "bg-primary-100" in page
    assert "&lt;span" not in page


def test_queue_shows_status_badges(desk):
    resolved = make_ticket(subject="Done one")
    services.update_ticket_status(ticket=resolved, status=Status.RESOLVED)

    page = desk.get(reverse(CHANGELIST), {"view": "all"}).content.decode()

    at = page.index("support-status-resolved")
    assert "bg-green-100" in page[at - 300 : at]
    assert '<span class="inline-block' in page and "&lt;span" not in page  # HTML, not text


def test_sidebar_lists_only_what_the_agent_may_see(desk):
    page = desk.get(reverse("admin:index")).content.decode()

    assert reverse(CHANGELIST) in page
    assert reverse("admin:support_ticket_dashboard") in page
    assert reverse("admin:userflows_deletioncertificate_changelist") not in page
    assert reverse("admin:auth_user_changelist") not in page


def test_add_without_a_requester_is_refused_in_words(desk):
    response = desk.post(
        reverse("admin:support_ticket_add"),
        add_data(subject="Phoned in", priority="normal", requester_email="", account=""),
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert (
        "A ticket needs a requester: choose an account or enter the requester&#x27;s email." in page
    )
    assert "ticket_has_requester" not in page
    assert "is violated" not in page
    assert not Ticket.objects.filter(subject="Phoned in").exists()
