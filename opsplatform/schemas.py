"""Shared API types: strict input base, clean strings, ids, the error envelope, pagination."""

import datetime as dt
from typing import Annotated, Any

from ninja import Field, Schema
from ninja.pagination import LimitOffsetPagination
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from opsplatform.validation import reject_nul

MAX_ID = 2**63 - 1


def _no_nul_deep(value: Any, depth: int = 0) -> Any:
    """JSON values stored as-is (event properties): no NUL anywhere, bounded nesting."""
    if depth > 5:
        raise ValueError("is nested too deeply (at most 5 levels)")
    if isinstance(value, str):
        return reject_nul(value)
    if isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key)
            _no_nul_deep(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _no_nul_deep(item, depth + 1)
    return value


def _storable_datetime(value: dt.datetime) -> dt.datetime:
    """What PostgreSQL accepts: a UTC offset within ±15:59, and a moment whose UTC date lies
    in years 1 to 9999 (Python's range; `0001-01-01T00:00:00+14:00` is the year 0 in UTC)."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) >= dt.timedelta(hours=16):
        raise ValueError("has a UTC offset beyond ±15:59")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range: in UTC it must fall in the years 1 to 9999") from None


NoNul = AfterValidator(reject_nul)
# A date that bounds a reporting range: ranges are turned into half-open datetime intervals
# (the day after the end), so the calendar's last day would overflow; years 1900 to 9998.
RangeDate = Annotated[dt.date, Field(ge=dt.date(1900, 1, 1), le=dt.date(9998, 12, 31))]
# An aware datetime the database can store, returned in UTC.
StorableDatetime = Annotated[AwareDatetime, AfterValidator(_storable_datetime)]
# A string without NUL. For length or pattern limits write
# `Annotated[str, StringConstraints(...), NoNul]`: constraints placed before the validator give
# pydantic's string messages ("at least 1 character"), not the generic "item" ones.
CleanStr = Annotated[str, NoNul]
JsonValue = Annotated[Any, AfterValidator(_no_nul_deep)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Input(BaseModel):
    """Base of every request body: a JSON object with exactly the documented fields.

    A plain pydantic model, not `ninja.Schema`, so a bare string body is rejected rather than
    read through attribute access (STACK.md pitfall 7).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorOut(Schema):
    detail: str
    code: str


class FieldErrorOut(Schema):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(Schema):
    detail: str
    code: str
    errors: list[FieldErrorOut]


ERROR_RESPONSES = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,
    415: ErrorOut,
    422: ValidationErrorOut,
    429: ErrorOut,
}


def responses(ok: dict) -> dict:
    """An operation's documented responses: its own plus every error it can answer."""
    return {**ERROR_RESPONSES, **ok}


class Pagination(LimitOffsetPagination):
    """Limit/offset with both bounds enforced (an unbounded offset overflows the database)."""

    class Input(Schema):
        limit: int = Field(50, ge=1, le=200, description="Page size (at most 200)")
        offset: int = Field(0, ge=0, le=10_000_000)
