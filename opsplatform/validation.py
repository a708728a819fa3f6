"""Text rules every service shares: the one place that rejects NUL characters (PostgreSQL
refuses them in text, SQLite stores them) and bounds free text.

API bodies get the same rule from `schemas.CleanStr` (which calls `reject_nul`); Django's form
CharFields already refuse NUL on their own, so forms need nothing.
"""

from opsplatform.errors import InvalidInput

NUL = "\x00"


def reject_nul(value: str) -> str:
    """For validators: raises ValueError (pydantic, Django validators turn it into a message)."""
    if NUL in value:
        raise ValueError("must not contain NUL characters")
    return value


def strip_nul(value: str) -> str:
    """For text we receive and must keep (an inbound email): drop NULs instead of refusing."""
    return value.replace(NUL, "")


def clean_text(
    value: str | None,
    *,
    field: str,
    label: str,
    max_length: int,
    required: bool = True,
) -> str:
    """Stripped text of at most `max_length` characters without NUL, or InvalidInput (422)
    naming the field."""
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{label} must not be empty.", field=field)
    if NUL in value:
        raise InvalidInput(f"{label} must not contain NUL characters.", field=field)
    if len(value) > max_length:
        raise InvalidInput(f"{label} is longer than {max_length:,} characters.", field=field)
    return value
