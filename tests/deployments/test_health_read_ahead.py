"""check_all_accounts on PostgreSQL outside a transaction reads the next batch on a second
connection while the current one is scored: the checks must be exactly those of the
one-connection path, and the second connection must be closed afterwards."""

import datetime as dt
import threading

import pytest
from django.db import connection

from deployments.health import services
from deployments.health.models import AccountHealth, AccountHealthCheck
from tests.deployments.health_helpers import event, every_factor_account
from tests.factories import AccountFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("a second connection sees committed rows on PostgreSQL only")


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _checks(run_at: dt.datetime) -> dict[int, tuple]:
    return {
        c.account_id: (c.score, c.status, c.factors)
        for c in AccountHealthCheck.objects.filter(checked_at=run_at)
    }


def test_read_ahead_checks_equal_the_one_connection_checks(
    django_capture_on_commit_callbacks, monkeypatch
):
    threads = []
    read_batch = services._read_batch

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return read_batch(*args, **kwargs)

    monkeypatch.setattr(services, "_read_batch", recording)
    every_factor_account(NOW)
    quiet = AccountFactory()
    busy = AccountFactory()
    for i in range(12):
        event(busy, "login", NOW - dt.timedelta(days=1, hours=i), f"b{i}")
    for _ in range(4):
        AccountFactory()
    before = _backends()

    one = NOW
    ahead = NOW + dt.timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=False):
        plain = services.check_all_accounts(batch_size=2, now=one, read_ahead=False)
        read_ahead = services.check_all_accounts(batch_size=2, now=ahead, read_ahead=True)

    # Five reads (four batches and the empty end), all on the read-ahead thread.
    assert len(threads) == 5
    assert all(name.startswith("health-read-ahead") for name in threads)
    assert plain["checked"] == read_ahead["checked"] == 7
    assert plain["batches"] == read_ahead["batches"] == 4
    assert plain["counts"] == read_ahead["counts"]
    assert _checks(one) == _checks(ahead)
    assert len(_checks(ahead)) == 7
    assert _checks(ahead)[busy.id][1] != _checks(ahead)[quiet.id][1]
    # The second run saw the first one's state: nothing changed, every delta is zero.
    assert read_ahead["changed_total"] == 0
    assert set(AccountHealth.objects.values_list("delta", flat=True)) == {0}
    assert _backends() == before  # the read-ahead connection is closed


def test_an_error_in_a_batch_stops_the_run_and_closes_the_read_ahead(monkeypatch):
    for _ in range(5):
        AccountFactory()
    before = _backends()
    calls = []

    def failing_insert(rows):
        calls.append(len(rows))
        raise RuntimeError("disk full")

    monkeypatch.setattr(services.writes, "insert_checks", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        services.check_all_accounts(batch_size=2, now=NOW, read_ahead=True)
    assert calls == [2]  # the first batch failed; no later batch was written
    assert AccountHealthCheck.objects.count() == 0
    assert _backends() == before
