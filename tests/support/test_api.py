"""The support API: tickets, thread, agent actions, chat, metrics; validation and tenant walls."""

import pytest
from django.core import mail

from support import services
from support.models import Escalation, Ticket, TicketMessage
from tests.conftest import ApiClient
from tests.factories import token_for
from tests.support.factories import make_ticket, reply

pytestmark = pytest.mark.django_db
Status = Ticket.Status


def test_customer_opens_an_in_app_ticket(api, account):
    response = api.post(
        "support/tickets",
        {
            "subject": "Campaign not tracking correctly",
            "description": "Impressions are flat.",
            "channel": "in_app",
            "priority": "high",
            "tags": ["attribution", "bug"],
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    ticket = Ticket.objects.get()
    assert body["reference"] == ticket.reference
    assert body["status"] == "new"
    assert body["escalation_level"] == 1
    assert body["tags"] == ["attribution", "bug"]
    assert body["messages"][0]["body"] == "Impressions are flat."
    assert ticket.account == account and ticket.channel == "in_app"


def test_urgent_ticket_answers_level_2(api):
    response = api.post(
        "support/tickets", {"subject": "Down", "description": "All down", "priority": "urgent"}
    )
    assert response.status_code == 201
    assert response.json()["escalation_level"] == 2


@pytest.mark.parametrize(
    "payload",
    [
        '"just a bare json string"',
        ["a", "list"],
        {"subject": "x"},
        {"subject": "", "description": "d"},
        {"subject": "a\x00b", "description": "d"},
        {"subject": "s", "description": "d", "channel": "fax"},
        {"subject": "s", "description": "d", "channel": "email"},
        {"subject": "s", "description": "d", "priority": 3},
        {"subject": "s", "description": "d", "tags": ["Not OK"]},
        {"subject": "s", "description": "d", "tags": "bug"},
        {"subject": "s", "description": "d", "account_id": 1},
        {"subject": "s", "description": "d", "unexpected": True},
        {"subject": "s" * 201, "description": "d"},
    ],
)
def test_malformed_ticket_input_is_422_and_stores_nothing(api, payload):
    response = api.post("support/tickets", payload)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "invalid"
    assert not Ticket.objects.exists()


def test_staff_opens_a_ticket_for_an_email_requester(agent_api):
    response = agent_api.post(
        "support/tickets",
        {
            "subject": "Phone call",
            "description": "Called about invoices",
            "channel": "email",
            "requester_email": "caller@example.com",
        },
    )
    assert response.status_code == 201
    ticket = Ticket.objects.get()
    assert ticket.account is None and ticket.requester_email == "caller@example.com"
    assert ticket.messages.get().author_kind == TicketMessage.Author.AGENT


def test_staff_must_name_the_requester(agent_api):
    response = agent_api.post("support/tickets", {"subject": "s", "description": "d"})
    assert response.status_code == 422
    assert not Ticket.objects.exists()


def test_customer_lists_only_their_tickets(api, account, other_account):
    mine = make_ticket(account=account)
    make_ticket(account=other_account)

    response = api.get("support/tickets")

    assert response.status_code == 200
    assert [t["reference"] for t in response.json()["items"]] == [mine.reference]
    assert api.get("support/tickets", {"account_id": other_account.id}).status_code == 404


def test_staff_filters(agent_api, agent):
    high = make_ticket(priority="high", tags=["billing"])
    low = make_ticket(priority="low")
    services.assign_ticket(ticket=low, assignee=agent, actor=agent)

    def refs(**params):
        response = agent_api.get("support/tickets", params)
        assert response.status_code == 200, response.content
        return {t["reference"] for t in response.json()["items"]}

    assert refs(priority="high") == {high.reference}
    assert refs(assignee="me") == {low.reference}
    assert refs(assignee="none") == {high.reference}
    assert refs(tag="billing") == {high.reference}
    assert refs(q=high.reference) == {high.reference}
    assert refs(breached="true") == set()
    assert refs(level=1) == {high.reference, low.reference}
    assert agent_api.get("support/tickets", {"level": 9}).status_code == 422
    assert agent_api.get("support/tickets", {"assignee": "bob"}).status_code == 422


def test_list_costs_the_same_queries_at_1_and_50(agent_api, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_ticket()
    agent_api.get("support/tickets")  # the token's once-a-minute last_used_at write
    with CaptureQueriesContext(connection) as one:
        assert agent_api.get("support/tickets").status_code == 200
    for _ in range(49):
        make_ticket()
    with CaptureQueriesContext(connection) as fifty:
        response = agent_api.get("support/tickets")
    assert len(response.json()["items"]) == 50
    assert len(one.captured_queries) == len(fifty.captured_queries)
    with django_assert_max_num_queries(len(one.captured_queries)):
        agent_api.get("support/tickets")


def test_customer_never_sees_internal_notes(api, account, agent):
    ticket = make_ticket(account=account)
    reply(ticket, agent, "SECRET-NOTE: customer is difficult", internal=True)
    reply(ticket, agent, "We are on it.")

    body = api.get(f"support/tickets/{ticket.reference}").json()

    assert [m["body"] for m in body["messages"]] == ["It broke.", "We are on it."]
    assert "SECRET-NOTE" not in str(body)
    assert body["messages"][1]["author"] == "Support team"
    listing = api.get("support/tickets").json()
    assert "SECRET-NOTE" not in str(listing)


def test_agents_see_internal_notes(agent_api, agent):
    ticket = make_ticket()
    reply(ticket, agent, "SECRET-NOTE", internal=True)
    messages = agent_api.get(f"support/tickets/{ticket.reference}").json()["messages"]
    assert [(m["body"], m["internal"]) for m in messages] == [
        ("It broke.", False),
        ("SECRET-NOTE", True),
    ]


def test_customer_replies_and_cannot_post_internal(api, account):
    ticket = make_ticket(account=account)
    ok = api.post(f"support/tickets/{ticket.reference}/messages", {"body": "More info"})
    assert ok.status_code == 201
    assert ok.json()["author_kind"] == "requester"
    denied = api.post(
        f"support/tickets/{ticket.reference}/messages", {"body": "x", "internal": True}
    )
    assert denied.status_code == 403
    assert ticket.messages.count() == 2


def test_agent_reply_emails_without_internal_notes(
    agent_api, account, django_capture_on_commit_callbacks
):
    ticket = make_ticket(account=account)
    with django_capture_on_commit_callbacks(execute=True):
        agent_api.post(
            f"support/tickets/{ticket.reference}/messages",
            {"body": "SECRET-NOTE", "internal": True},
        )
        response = agent_api.post(
            f"support/tickets/{ticket.reference}/messages", {"body": "Fixed it"}
        )
    assert response.status_code == 201
    assert len(mail.outbox) == 1
    assert "Fixed it" in mail.outbox[0].body
    assert all("SECRET-NOTE" not in m.body for m in mail.outbox)


def test_escalate_endpoint(agent_api):
    ticket = make_ticket()
    response = agent_api.post(
        f"support/tickets/{ticket.reference}/escalate",
        {"level": 3, "reason": "Complex technical issue"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["to_level"] == 3
    again = agent_api.post(
        f"support/tickets/{ticket.reference}/escalate", {"level": 2, "reason": "down?"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "not_upward"
    missing = agent_api.post(f"support/tickets/{ticket.reference}/escalate", {"level": 4})
    assert missing.status_code == 422
    assert Escalation.objects.count() == 1


def test_customer_cannot_escalate_or_assign(api, account):
    ticket = make_ticket(account=account)
    assert (
        api.post(
            f"support/tickets/{ticket.reference}/escalate", {"level": 3, "reason": "please"}
        ).status_code
        == 403
    )
    assert (
        api.post(f"support/tickets/{ticket.reference}/assign", {"assignee_id": None}).status_code
        == 403
    )
    ticket.refresh_from_db()
    assert ticket.escalation_level == 1


def test_status_endpoint_answers_409_for_a_forbidden_move(agent_api):
    ticket = make_ticket()
    ok = agent_api.post(
        f"support/tickets/{ticket.reference}/status",
        {"status": "resolved", "notes": "Fixed attribution tracking bug"},
    )
    assert ok.status_code == 200
    assert ok.json()["status"] == "resolved"
    bad = agent_api.post(f"support/tickets/{ticket.reference}/status", {"status": "pending"})
    assert bad.status_code == 409
    assert bad.json()["code"] == "invalid_transition"
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    assert "Fixed attribution tracking bug" in ticket.messages.get(internal=True).body


def test_customer_closes_and_reopens_their_own(api, account, agent):
    ticket = make_ticket(account=account)
    assert (
        api.post(f"support/tickets/{ticket.reference}/status", {"status": "resolved"}).status_code
        == 409
    )
    services.update_ticket_status(ticket=ticket, status=Status.RESOLVED, actor=agent)
    assert (
        api.post(f"support/tickets/{ticket.reference}/status", {"status": "open"}).json()["status"]
        == "open"
    )
    assert (
        api.post(f"support/tickets/{ticket.reference}/status", {"status": "closed"}).json()[
            "status"
        ]
        == "closed"
    )


def test_assign_endpoint(agent_api, agent):
    ticket = make_ticket()
    response = agent_api.post(
        f"support/tickets/{ticket.reference}/assign", {"assignee_id": agent.id}
    )
    assert response.status_code == 200
    assert response.json()["assignee"] == agent.username
    customer = ticket.account.user
    bad = agent_api.post(f"support/tickets/{ticket.reference}/assign", {"assignee_id": customer.id})
    assert bad.status_code == 422
    unknown = agent_api.post(f"support/tickets/{ticket.reference}/assign", {"assignee_id": 10**12})
    assert unknown.status_code == 422
    ticket.refresh_from_db()
    assert ticket.assignee == agent


def test_merge_endpoint(agent_api, account):
    first, second = make_ticket(account=account), make_ticket(account=account)
    response = agent_api.post(
        f"support/tickets/{second.reference}/merge", {"into": first.reference}
    )
    assert response.status_code == 200
    second.refresh_from_db()
    assert second.merged_into == first


def test_csat_endpoint(api, account, agent):
    ticket = make_ticket(account=account)
    early = api.post(f"support/tickets/{ticket.reference}/csat", {"rating": 5})
    assert early.status_code == 409
    services.update_ticket_status(ticket=ticket, status=Status.RESOLVED, actor=agent)
    assert api.post(f"support/tickets/{ticket.reference}/csat", {"rating": 9}).status_code == 422
    done = api.post(f"support/tickets/{ticket.reference}/csat", {"rating": 5, "comment": "great"})
    assert done.status_code == 201
    assert done.json() == {"reference": ticket.reference, "rating": 5, "comment": "great"}


def test_chat_messages_form_one_ticket(api, account):
    first = api.post("support/chat/messages", {"session_id": "chat-1", "body": "Hi there"})
    second = api.post("support/chat/messages", {"session_id": "chat-1", "body": "Hello?"})
    assert first.status_code == second.status_code == 200
    assert first.json()["created"] is True and second.json()["created"] is False
    assert first.json()["reference"] == second.json()["reference"]
    ticket = Ticket.objects.get()
    assert ticket.channel == "chat" and ticket.messages.count() == 2
    bad = api.post("support/chat/messages", {"session_id": "has space", "body": "x"})
    assert bad.status_code == 422


def test_metrics_are_staff_only(api, agent_api):
    make_ticket()
    assert api.get("support/metrics").status_code == 403
    response = agent_api.get("support/metrics")
    assert response.status_code == 200
    assert response.json()["open_total"] == 1
    assert agent_api.get("support/metrics", {"date_from": "2025-02-30"}).status_code == 422
    assert (
        agent_api.get(
            "support/metrics", {"date_from": "2020-01-01", "date_to": "2025-01-01"}
        ).status_code
        == 422
    )


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [
        ("get", "", None),
        ("post", "/messages", {"body": "hi"}),
        ("post", "/status", {"status": "closed"}),
        ("post", "/escalate", {"level": 2, "reason": "r"}),
        ("post", "/assign", {"assignee_id": None}),
        ("post", "/csat", {"rating": 5}),
        ("post", "/merge", {"into": "SUP-000001"}),
    ],
)
def test_another_tenants_ticket_answers_404(other_api, account, method, suffix, payload):
    ticket = make_ticket(account=account)
    path = f"support/tickets/{ticket.reference}{suffix}"
    response = other_api.get(path) if method == "get" else other_api.post(path, payload)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    ticket.refresh_from_db()
    assert ticket.status == Status.NEW and ticket.messages.count() == 1


@pytest.mark.parametrize("reference", ["SUP-999999", "nonsense", "SUP-0", "SUP-" + "9" * 30])
def test_unknown_references_are_404(api, reference):
    assert api.get(f"support/tickets/{reference}").status_code == 404


def test_anonymous_is_401(anon_api):
    assert anon_api.get("support/tickets").status_code == 401
    assert anon_api.post("support/tickets", {"subject": "s", "description": "d"}).status_code == 401


def test_staff_without_support_permission_is_403(ops_user):
    from tests.factories import staff_in

    make_ticket()
    operations = ApiClient(token_for(ops_user))
    assert operations.get("support/tickets").status_code == 200  # operations may view
    response = operations.post(
        "support/tickets", {"subject": "s", "description": "d", "requester_email": "a@example.com"}
    )
    assert response.status_code == 403
    nobody = ApiClient(token_for(staff_in()))
    assert nobody.get("support/tickets").status_code == 403
    one = nobody.get(f"support/tickets/{Ticket.objects.get().reference}")
    assert (one.status_code, one.json()["code"]) == (403, "permission_denied")
    assert Ticket.objects.count() == 1
