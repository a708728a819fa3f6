"""The agent's ticket page: macros with placeholders (and their status), replies signed
with the agent's name, the collision notice, the thread as cards with internal notes marked
and quoted text kept aside, and the requester side panel."""

import pytest
from django.urls import reverse

from opsplatform import registry
from support import services
from support.models import Macro, Ticket, TicketMessage
from tests.factories import AccountFactory
from tests.support.factories import make_agent, make_ticket, reply
from tests.support.test_admin import change_data

pytestmark = pytest.mark.django_db
Status = Ticket.Status


@pytest.fixture
def desk(client, agent):
    agent.first_name, agent.last_name = "Ada", "Agent"
    agent.save()
    client.force_login(agent)
    return client


def change_url(ticket):
    return reverse("admin:support_ticket_change", args=[ticket.pk])


@pytest.fixture
def ticket():
    account = AccountFactory(name="Acme Pods")
    return services.create_ticket(
        subject="Chart broken",
        description="The chart is empty.",
        channel="web",
        account=account,
        requester_name="Jane Doe",
        actor=account.user,
    )


@pytest.fixture
def macro():
    return Macro.objects.create(
        name="Waiting for logs",
        body="Hi {{ requester_name }}, about {{reference}}: please send the logs.\n"
        "{{ agent_name }}",
        status=Status.PENDING,
    )


def post_page(client, ticket, **fields):
    data = change_data(client, ticket, **fields)
    page = client.get(change_url(ticket))
    data.setdefault("seen", page.context["adminform"].form.initial["seen"])
    data.setdefault("macro", "")
    return client.post(change_url(ticket), data)


# --- macros -----------------------------------------------------------------------------------


def test_macro_placeholders_are_filled_for_the_ticket_on_the_page(desk, ticket, macro):
    page = desk.get(change_url(ticket))
    texts = page.context["macro_texts"]
    assert texts[str(macro.pk)] == (
        f"Hi Jane Doe, about {ticket.reference}: please send the logs.\nAda Agent"
    )
    html = page.content.decode()
    assert 'id="support-macro-texts"' in html and "support/macros.js" in html


def test_a_macro_sent_from_an_empty_reply_box_replies_and_applies_its_status(
    desk, agent, ticket, macro
):
    response = post_page(desk, ticket, macro=macro.pk)
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING
    sent = ticket.messages.get(author_kind=TicketMessage.Author.AGENT, internal=False)
    assert sent.body == f"Hi Jane Doe, about {ticket.reference}: please send the logs.\nAda Agent"
    assert sent.signature == "Ada Agent"


def test_an_edited_reply_wins_over_the_macro_text_and_a_chosen_move_over_its_status(
    desk, ticket, macro
):
    post_page(desk, ticket, macro=macro.pk, reply="My own words", transition=Status.ON_HOLD)
    ticket.refresh_from_db()
    assert ticket.status == Status.ON_HOLD
    assert ticket.messages.filter(body="My own words").exists()


def test_inactive_macros_are_not_offered(desk, ticket, macro):
    macro.active = False
    macro.save()
    assert desk.get(change_url(ticket)).context["macro_texts"] == {}


def test_a_macro_with_an_unknown_placeholder_is_refused_in_admin(client, agent):
    lead = make_agent(4, email="lead@opsplatform.local")
    client.force_login(lead)
    response = client.post(
        reverse("admin:support_macro_add"),
        {"name": "Bad", "body": "Hello {{ customer_email }}", "status": "", "active": "on"},
    )
    assert response.status_code == 200
    assert "Unknown placeholder(s): customer_email" in response.content.decode()
    assert not Macro.objects.exists()


def test_agents_use_macros_but_only_leads_edit_them(client, agent):
    client.force_login(agent)
    assert client.get(reverse("admin:support_macro_add")).status_code == 403
    lead = make_agent(4, email="lead@opsplatform.local")
    client.force_login(lead)
    response = client.post(
        reverse("admin:support_macro_add"),
        {"name": "Thanks", "body": "Thanks {{ requester_name }}", "status": "resolved"},
    )
    assert response.status_code == 302
    macro = Macro.objects.get(name="Thanks")
    assert macro.history.get().history_user == lead


# --- signature and collision ------------------------------------------------------------------


def test_replies_are_signed_with_the_agents_display_name_in_the_email(
    desk, ticket, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_page(desk, ticket, reply="Try again now.")
    sent = ticket.messages.get(body="Try again now.")
    assert sent.signature == "Ada Agent"
    assert "Try again now.\n\n— Ada Agent" in mailoutbox[-1].body


def test_collision_notice_when_another_agent_replied_since_the_page_opened(desk, ticket):
    page = desk.get(change_url(ticket))
    seen = page.context["adminform"].form.initial["seen"]
    other = make_agent(2, email="agent.two@opsplatform.local")
    reply(ticket, other, body="I already answered")

    data = change_data(desk, ticket, reply="My answer", seen=seen, macro="")
    response = desk.post(change_url(ticket), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Since you opened this ticket" in html
    assert "replied at" in html and "Nothing was sent" in html
    assert not ticket.messages.filter(body="My answer").exists()

    # Having read it, the agent saves the same form again and the reply goes out.
    data["seen"] = response.context["adminform"].form.data["seen"]
    assert desk.post(change_url(ticket), data).status_code == 302
    assert ticket.messages.filter(body="My answer").exists()


def test_collision_notice_for_a_status_change_by_someone_else(desk, ticket):
    seen = desk.get(change_url(ticket)).context["adminform"].form.initial["seen"]
    other = make_agent(2, email="agent.two@opsplatform.local")
    services.update_ticket_status(ticket=ticket, status=Status.ON_HOLD, actor=other)
    data = change_data(desk, ticket, reply="Hello", seen=seen, macro="")
    html = desk.post(change_url(ticket), data).content.decode()
    assert "staff" in html and "Status new → on_hold" in html


def test_my_own_changes_are_no_collision(desk, agent, ticket):
    seen = desk.get(change_url(ticket)).context["adminform"].form.initial["seen"]
    services.assign_ticket(ticket=ticket, assignee=agent, actor=agent)
    data = change_data(desk, ticket, reply="Hello", seen=seen, macro="", assignee=agent.pk)
    assert desk.post(change_url(ticket), data).status_code == 302


# --- thread and side panel --------------------------------------------------------------------


def test_thread_shows_cards_with_internal_notes_marked_and_quoted_text_aside(desk, agent, ticket):
    reply(ticket, agent, body="Internal: check the CDN", internal=True)
    services.add_message(
        ticket=ticket,
        body="Thanks, works.",
        full_body="Thanks, works.\n\nOn Mon, Support wrote:\n> old text",
        author_kind=TicketMessage.Author.REQUESTER,
    )
    html = desk.get(change_url(ticket)).content.decode()
    assert html.count('class="support-msg ') == 3
    assert "support-msg-note" in html and "Internal note" in html
    assert "Show quoted text" in html and "&gt; old text" in html
    # No table of one heading per row, as the stock inline drew it.
    assert (
        "Thread</h2>" in html
        and "<th" not in html.split("support-thread")[1].split("</section>")[0]
    )


def test_side_panel_shows_the_account_and_other_tickets_open_first(desk, ticket):
    account = ticket.account
    done = make_ticket(account=account, subject="Old solved one")
    services.update_ticket_status(ticket=done, status=Status.RESOLVED)
    open_one = make_ticket(account=account, subject="Another open one")
    make_ticket(subject="Someone else's")
    page = desk.get(change_url(ticket))
    others = [t.subject for t in page.context["other_tickets"]]
    assert others == ["Another open one", "Old solved one"]
    html = page.content.decode()
    assert (
        "Acme Pods" in html
        and reverse("admin:opsplatform_account_change", args=[account.pk]) in html
    )
    assert open_one.reference in html


def test_side_panel_shows_panels_other_apps_contribute(desk, ticket, monkeypatch):
    """Account health (another app, built separately) appears through the registry hook."""

    def panels(account, *, user, compact=False):
        return [registry.AccountPanel(key="health", title="Health", facts=(("Score", "72"),))]

    monkeypatch.setattr(registry, "account_panels", panels)
    html = desk.get(change_url(ticket)).content.decode()
    assert 'data-panel="health"' in html and "<dd>72</dd>" in html


def test_ticket_page_query_count_does_not_grow_with_the_thread(
    desk, agent, ticket, django_assert_max_num_queries
):
    desk.get(change_url(ticket))
    with django_assert_max_num_queries(60) as small:
        desk.get(change_url(ticket))
    for n in range(25):
        reply(ticket, agent, body=f"reply {n}", internal=bool(n % 2))
    with django_assert_max_num_queries(len(small.captured_queries)):
        desk.get(change_url(ticket))


# --- history as a story ------------------------------------------------------------------------


def test_history_page_tells_what_changed_in_words(desk, agent, ticket):
    other = make_agent(2, username="agent2", email="agent.two@opsplatform.local")
    services.assign_ticket(ticket=ticket, assignee=other, actor=agent)
    services.assign_ticket(ticket=ticket, assignee=None, actor=agent)
    page = desk.get(reverse("admin:support_ticket_history", args=[ticket.pk]))
    html = page.content.decode()
    assert "assignee: unassigned → agent2" in html
    assert "assignee: agent2 → unassigned" in html
    assert "Deleted user" not in html


def test_seeded_tickets_have_a_baseline_so_the_first_change_shows_its_diff(agent):
    from support.services import insert_history_rows

    seeded = make_ticket(subject="Seeded")
    Ticket.history.filter(id=seeded.pk).delete()  # as bulk-created demo rows are
    insert_history_rows(
        where_sql="t.id = %s",
        params=[seeded.pk],
        reason="Seeded (demo data)",
        user_id=None,
        now=seeded.created_at,
        history_type="+",
    )
    services.update_ticket_status(ticket=seeded, status=Status.ON_HOLD, actor=agent)
    from opsplatform.history import change_story

    latest = seeded.history.order_by("-history_id").first()
    story = change_story(latest, latest.prev_record)
    assert "status: New → On hold" in story
