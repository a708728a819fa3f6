"""The sticky bucket every rollout and onboarding experiment uses, published in
docs/deployments.md so another service computes the same answer without calling us.

    hash32 = the first 4 bytes of SHA-256(UTF-8 "<salt>:<account id>") as a big-endian
             unsigned integer (0 … 2**32 - 1)
    bucket = hash32 * 100 / 2**32                      in [0, 100)
    exposed at percentage p  ⇔  bucket < p  ⇔  hash32 * 100 < p * 2**32

The comparison is done on integers (no float rounding at the edges). The database computes
the same hash32 with the SQL function `deployments_hash32(salt, id)` (an SQL function made
by migration 0002 on PostgreSQL, a Python function registered on every SQLite connection), so gate
aggregates split accounts into arms inside one query.
"""

import hashlib
from decimal import Decimal

from django.db.models import BigIntegerField, Func, Value

SPACE = 2**32


def hash32(salt: str, account_id: int) -> int:
    digest = hashlib.sha256(f"{salt}:{account_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def bucket(salt: str, account_id: int) -> Decimal:
    """The account's bucket in [0, 100), exact (a Decimal with enough places)."""
    return Decimal(hash32(salt, account_id)) * 100 / SPACE


def threshold(percentage: Decimal | int | str) -> int:
    """The smallest hash32 that is *not* exposed at `percentage`: exposed ⇔ hash32 < threshold.

    hash32 * 100 < p * 2**32 ⇔ hash32 < p * 2**32 / 100 ⇔ hash32 < ceil(p * 2**32 / 100)."""
    p = Decimal(str(percentage))
    if p <= 0:
        return 0
    if p >= 100:
        return SPACE
    numerator, denominator = (p * SPACE).as_integer_ratio()
    return -((-numerator) // (denominator * 100))  # exact ceiling division


def is_exposed(salt: str, account_id: int, percentage) -> bool:
    return hash32(salt, account_id) < threshold(percentage)


class Hash32(Func):
    """`deployments_hash32(salt, account_id)` in SQL; equal to `hash32` above."""

    function = "deployments_hash32"
    output_field = BigIntegerField()

    def __init__(self, salt: str, account_id_expression, **extra):
        super().__init__(Value(salt), account_id_expression, **extra)


def register_sqlite_function(sender, connection, **kwargs) -> None:
    """Give every SQLite connection the SQL function PostgreSQL gets from the migration."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "deployments_hash32", 2, lambda salt, pk: hash32(salt, pk), deterministic=True
        )
