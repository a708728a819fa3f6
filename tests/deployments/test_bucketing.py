"""The published sticky hash: test vectors (checked with `printf %s 'salt:id' | sha256sum`),
stickiness as the percentage rises, uniformity, and the SQL function agreeing with Python."""

from decimal import Decimal

import pytest
from django.db.models import F

from deployments.bucketing import Hash32, bucket, hash32, is_exposed, threshold
from opsplatform.models import Account

VECTORS = [
    # salt, account id, first 4 bytes of SHA-256("salt:id") as hex, bucket
    ("a1b2c3d4e5f60718", 1, 0x44D74FD2, Decimal("26.89103973098099231719970703")),
    ("a1b2c3d4e5f60718", 42, 0x8C757292, Decimal("54.86671072430908679962158203")),
    ("rollout-2.4.0", 7, 0xE24D7DB9, Decimal("88.39949204120784997940063477")),
]


@pytest.mark.parametrize(("salt", "account_id", "expected", "expected_bucket"), VECTORS)
def test_hash_vectors(salt, account_id, expected, expected_bucket):
    assert hash32(salt, account_id) == expected
    assert bucket(salt, account_id) == expected_bucket


def test_threshold_is_the_exact_integer_edge():
    # 5% of 2**32 = 214748364.8 → hashes 0..214748364 are exposed.
    assert threshold(5) == 214748365
    assert threshold(25) == 1073741824
    assert threshold(0) == 0
    assert threshold(100) == 2**32
    assert threshold("26.89") == 1154916706  # ceil(Fraction("26.89") * 2**32 / 100)
    # The vector with bucket 26.891… is out at 26.89% and in at 26.90%.
    assert not is_exposed("a1b2c3d4e5f60718", 1, "26.89")
    assert is_exposed("a1b2c3d4e5f60718", 1, "26.90")


def test_raising_the_percentage_keeps_everyone_exposed():
    salt = "sticky-salt"
    exposed_before: set[int] = set()
    for percentage in (1, 5, 25, 50, 75, 100):
        exposed = {i for i in range(1, 20_001) if is_exposed(salt, i, percentage)}
        assert exposed_before <= exposed
        exposed_before = exposed
    assert len(exposed_before) == 20_000
    assert not any(is_exposed(salt, i, 0) for i in range(1, 20_001))


def test_buckets_are_uniform_within_1_5_points_over_100k_ids():
    salt = "uniformity"
    counts = [0] * 10
    for account_id in range(1, 100_001):
        counts[hash32(salt, account_id) * 10 // 2**32] += 1
    for count in counts:
        share = count / 100_000 * 100
        assert abs(share - 10) <= 1.5, counts
    # And at the percentages a rollout uses.
    for percentage in (5, 25, 50):
        limit = threshold(percentage)
        exposed = sum(1 for i in range(1, 100_001) if hash32(salt, i) < limit)
        assert abs(exposed / 1000 - percentage) <= 1.5


@pytest.mark.django_db
def test_the_sql_function_equals_the_python_hash(account, other_account):
    rows = Account.objects.annotate(h=Hash32("a1b2c3d4e5f60718", F("id"))).values_list("id", "h")
    for account_id, value in rows:
        assert value == hash32("a1b2c3d4e5f60718", account_id)
