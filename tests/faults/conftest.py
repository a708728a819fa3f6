"""Fault scripts (`make faults`): each starts the real processes it needs, breaks one thing
and asserts what users would see and what is stored. Not part of `make test`: they kill and
restart processes and take a few minutes. PostgreSQL restarts use a throwaway cluster of
their own and Redis stops a redis-server of its own: the shared servers are never touched."""

import os

import pytest
from django.db import connection

from tests.factories import AccountFactory, token_for

HERE = os.path.dirname(__file__)


def pytest_collection_modifyitems(items):
    for item in items:
        if str(item.path).startswith(HERE):
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("fault scripts run on PostgreSQL (make faults sets DATABASE_URL)")


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    if not url:
        pytest.skip("fault scripts need REDIS_URL (make faults sets it)")
    return url


@pytest.fixture
def customer(transactional_db):
    account = AccountFactory()
    return account, token_for(account.user)
