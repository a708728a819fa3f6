"""Benchmarks print figures; they are not run by `make test` (see `make bench`)."""

import pytest
from django.db import connection


@pytest.fixture
def postgres_only(db):
    if connection.vendor != "postgresql":
        pytest.skip("benchmarks measure PostgreSQL: set DATABASE_URL (make bench does)")


def report(title: str, **figures):
    width = max(len(k) for k in figures)
    print(f"\n[bench] {title}")
    for key, value in figures.items():
        print(f"    {key:<{width}}  {value}")
