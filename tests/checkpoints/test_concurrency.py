"""Two checkpoints run at the same moment still open one ticket, one backlog item and one
freeze per failing KPI: the KPI state rows are locked and re-read (PostgreSQL only; SQLite
serialises writers anyway)."""

import threading

import pytest
from django.db import connection, connections

from checkpoints import services
from checkpoints.models import BacklogItem
from deployments.models import RolloutFreeze
from support.models import Ticket
from tests.checkpoints.conftest import kpi, open_ticket, solo_accounts, tomorrow


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_open_one_of_everything():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; set DATABASE_URL")
    kpi(severity="critical", reliability=True)
    (account,) = solo_accounts(1)
    open_ticket(account)
    barrier = threading.Barrier(2)
    errors = []

    def work(name):
        try:
            barrier.wait()
            services.run_checkpoint(name, 30, as_of=tomorrow())
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Ticket.objects.filter(tags__contains="checkpoint").count() == 1
    assert BacklogItem.objects.count() == 1
    assert RolloutFreeze.objects.filter(lifted_at__isnull=True).count() == 1
