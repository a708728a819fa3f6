"""An account deletion running while the same customer keeps opening tickets, requesting
exports and pushing events (each on its own connection, PostgreSQL row locks): afterwards
nothing of the customer is left — every ticket erased, no event, no export file, no export
still pending — and every arrival got an answer (stored, or refused once the token was
erased), never a 500."""

import os
import threading
import time
from collections import Counter

from django.db import connections
from django.test import Client
from django.utils import timezone

from opsplatform.models import UsageEvent
from support.models import Ticket
from support.privacy import ERASED
from tests.factories import CampaignFactory
from tests.userflows.factories import DeletionRequestFactory
from userflows.models import DeletionRequest, ExportRequest
from userflows.services import deletion

# Refused: the erased token (401, then 429 past the failed-credential limit), the account
# gone (404), one export at a time (409), and 503 "retry": PostgreSQL may abort an export
# request that deadlocks with the deletion's locks — rolled back whole, nothing stored.
REFUSED = {401, 403, 404, 409, 429, 503}


class Arrivals(threading.Thread):
    """Sends one kind of request in a loop until told to stop; keeps every status."""

    def __init__(self, token, send):
        super().__init__(daemon=True)
        self.client = Client(headers={"Authorization": f"Bearer {token}"})
        self.send, self.statuses, self.stop = send, [], threading.Event()

    def run(self):
        n = 0
        try:
            while not self.stop.is_set():
                self.statuses.append(self.send(self.client, n))
                n += 1
        finally:
            connections.close_all()


def open_ticket(client, n):
    return client.post(
        "/api/v1/support/tickets",
        {"subject": f"Arrival {n}", "description": "Still there?"},
        content_type="application/json",
    ).status_code


def request_export(client, n):
    today = timezone.localdate().isoformat()
    body = {"format": "csv", "data_types": ["campaigns"], "date_from": today, "date_to": today}
    return client.post("/api/v1/exports", body, content_type="application/json").status_code


def push_events(client, n):
    events = [
        {
            "type": "ad.played",
            "occurred_at": timezone.now().isoformat(),
            "idempotency_key": f"arrival-{n}-{i}",
        }
        for i in range(20)
    ]
    return client.post(
        "/api/v1/events", {"events": events}, content_type="application/json"
    ).status_code


def test_deletion_with_arrivals_leaves_nothing_behind(postgres_only, customer, settings):
    account, token = customer
    settings.EXPORT_DAILY_LIMIT = 1000
    today = timezone.localdate()
    CampaignFactory(account=account, name="Autumn read", starts_on=today, ends_on=today)
    request = DeletionRequestFactory(account=account, scheduled_for=timezone.now())
    arrivals = [Arrivals(token, send) for send in (open_ticket, request_export, push_events)]
    for thread in arrivals:
        thread.start()
    deadline = time.monotonic() + 60  # each kind of arrival is stored before the deletion
    while time.monotonic() < deadline and not all(
        any(s < 300 for s in list(t.statuses)) for t in arrivals
    ):
        time.sleep(0.1)

    done = deletion.execute_deletion(deletion_id=request.pk)
    time.sleep(0.5)  # and keep arriving for a while after it
    for thread in arrivals:
        thread.stop.set()
    for thread in arrivals:
        thread.join(timeout=30)

    print(
        "\n[fault] deletion under arrivals: "
        + "; ".join(f"{t.send.__name__} {dict(Counter(t.statuses))}" for t in arrivals)
    )
    assert done.status == DeletionRequest.Status.COMPLETED
    statuses = [s for thread in arrivals for s in thread.statuses]
    assert all(s < 300 or s in REFUSED for s in statuses), [
        (t.send.__name__, t.statuses) for t in arrivals
    ]
    for thread in arrivals:  # each kind was stored before and refused after
        assert any(s < 300 for s in thread.statuses), thread.send.__name__
        # the erased token: 401, then 429 once its failures pass CREDENTIAL_FAILURE_LIMIT
        assert thread.statuses[-1] in {401, 429}, thread.send.__name__
    tickets = Ticket.objects.filter(account=account)
    assert tickets.exists()
    assert set(tickets.values_list("subject", flat=True)) == {ERASED}
    assert UsageEvent.objects.filter(account=account).count() == 0
    assert not ExportRequest.objects.filter(
        account=account, status__in=ExportRequest.ACTIVE_STATUSES
    ).exists()
    assert not ExportRequest.objects.filter(account=account).exclude(file="").exists()
    media = settings.MEDIA_ROOT / "exports" / str(account.id)
    assert not media.exists() or os.listdir(media) == []
