"""The admin on django-unfold in a real browser: index, queue, a ticket, the dashboard and a
history page load with no request to another origin and no console error. With
ADMIN_SCREENSHOTS_DIR set, it also saves the screenshots kept in docs/screenshots/."""

import datetime as dt
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import services
from support.models import Channel, Priority, Ticket
from tests.e2e.conftest import admin_sign_in
from tests.factories import PASSWORD, AccountFactory
from tests.support.factories import age_ticket, make_agent, make_ticket, reply

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
S = Ticket.Status


def _queue(agent):
    """A small, varied queue: every status, several channels and priorities, one breach."""
    shows = [AccountFactory(name=n) for n in ("Backyard Science", "Night Owls", "Deep Dive FM")]
    rows = [
        ("Sponsor link gives a 404", Channel.WEB, Priority.URGENT, S.NEW, 0),
        ("Invoice shows the wrong VAT number", Channel.EMAIL, Priority.HIGH, S.OPEN, 1),
        ("Campaign not tracking downloads", Channel.CHAT, Priority.NORMAL, S.PENDING, 2),
        ("Export stuck at 40 %", Channel.WEB, Priority.NORMAL, S.ON_HOLD, 0),
        ("Change the payout account", Channel.EMAIL, Priority.LOW, S.RESOLVED, 1),
        ("Promo code expired early", Channel.IN_APP, Priority.NORMAL, S.CLOSED, 2),
        ("Read-out script needs approval", Channel.WEB, Priority.HIGH, S.OPEN, 0),
    ]
    tickets = []
    for subject, channel, priority, status, show in rows:
        ticket = make_ticket(
            account=shows[show], subject=subject, channel=channel, priority=priority
        )
        if status != S.NEW:
            reply(ticket, agent, "Thanks, we are looking into it.")  # new -> open
            if status != S.OPEN:
                if status == S.CLOSED:
                    services.update_ticket_status(ticket=ticket, status=S.RESOLVED, actor=agent)
                services.update_ticket_status(ticket=ticket, status=status, actor=agent)
        tickets.append(ticket)
    age_ticket(tickets[0], dt.timedelta(hours=3))  # breaches its first-response SLA
    services.assign_ticket(ticket=tickets[1], assignee=agent, actor=agent)
    services.escalate_ticket(ticket=tickets[1], level=2, reason="VAT rules", actor=agent)
    reply(tickets[1], agent, "Checked with finance: the number comes from billing.", True)
    return tickets


def test_admin_pages_load_only_from_this_origin_without_console_errors(page, live_server):
    agent = make_agent(1, username="alice")
    tickets = _queue(agent)
    origin = urlsplit(live_server.url)
    requests, errors = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console", lambda m: errors.append(f"{m.text} {m.location}") if m.type == "error" else None
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.set_viewport_size({"width": 1440, "height": 900})
    shots = os.environ.get("ADMIN_SCREENSHOTS_DIR")

    admin_sign_in(page, agent.username, PASSWORD)
    page.wait_for_url("**/admin/")
    visits = [
        ("/admin/", None, None),
        ("/admin/support/ticket/", "queue", "Sponsor link gives a 404"),
        (f"/admin/support/ticket/{tickets[1].pk}/change/", "ticket", "Checked with finance"),
        ("/admin/support/ticket/dashboard/", "dashboard", "Open tickets by status and level"),
        (f"/admin/support/ticket/{tickets[1].pk}/history/", None, "Escalated to L2"),
    ]
    for path, shot, text in visits:
        response = page.goto(path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        if text:
            assert page.get_by_text(text).first.is_visible(), path
        if shot == "dashboard":  # both charts drawn by Chart.js from unfold's static files
            drawn = "[...document.querySelectorAll('canvas.chart')].filter(Chart.getChart).length"
            assert page.evaluate(drawn) == 2
        if shot and shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            # The whole page in one viewport, so the sticky save bar stays at the bottom.
            height = min(page.evaluate("document.documentElement.scrollHeight"), 2200)
            page.set_viewport_size({"width": 1440, "height": max(height, 900)})
            page.screenshot(path=str(Path(shots) / f"admin-{shot}.png"))
            page.set_viewport_size({"width": 1440, "height": 900})

    others = [
        url
        for url in requests
        if urlsplit(url).scheme in ("http", "https", "ws", "wss")
        and (urlsplit(url).hostname, urlsplit(url).port) != (origin.hostname, origin.port)
    ]
    assert others == []
    assert any(url.endswith("/unfold/js/chart/chart.js") for url in requests)
    assert any("Inter-" in url and url.endswith(".woff2") for url in requests)  # local fonts
    assert errors == []
