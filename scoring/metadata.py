"""Feature metadata: the documented keys, their types and ranges, and their defaults.

`validate_metadata` returns the cleaned values (Decimals, lists) and the unknown keys, which
are kept on the feature and listed as ignored; a wrong type or an out-of-range value raises
`MetadataError` naming every offending key (the API's 422)."""

import math
import re
from decimal import Decimal, InvalidOperation

from opsplatform.errors import InvalidInput

MAX_MONEY = Decimal("1000000000")  # a billion per month
MAX_HOURS = Decimal("1000000")
MAX_EFFORT_WEEKS = Decimal("520")
MAX_REACH = 10_000_000
MAX_LIST = 20
MAX_KEYS = 100
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
FACTOR_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

# key: (kind, low, low_inclusive, high, default, description)
NUMBER_KEYS = {
    "estimated_revenue_impact": (Decimal(0), True, MAX_MONEY, Decimal(0), "money per month"),
    "conversion_potential": (Decimal(0), True, Decimal(1), Decimal(0), "0 to 1"),
    "complexity": (Decimal(0), True, Decimal(1), Decimal("0.5"), "0 to 1"),
    "ui_complexity": (Decimal(0), True, Decimal(1), Decimal("0.5"), "0 to 1"),
    "time_savings_hours_per_month": (Decimal(0), True, MAX_HOURS, Decimal(0), "hours ≥ 0"),
    "effort_weeks": (Decimal(0), False, MAX_EFFORT_WEEKS, Decimal(4), "weeks > 0"),
    "confidence": (Decimal(0), True, Decimal(1), Decimal("0.5"), "0 to 1"),
}
LIST_KEYS = ("target_personas", "addresses_health_factors", "support_tags")
KNOWN_KEYS = (*NUMBER_KEYS, "reach_accounts", *LIST_KEYS)


class MetadataError(InvalidInput):
    """Every offending key at once; `errors` feeds the API's 422 `loc` (body, …, key)."""

    def __init__(self, problems: dict[str, str], *, loc_prefix: tuple = ()):
        first_key, first_msg = next(iter(problems.items()))
        super().__init__(f"metadata.{first_key}: {first_msg}", field=f"metadata.{first_key}")
        self.problems = problems
        self.loc_prefix = loc_prefix
        # (position, field, message) rows as the API's DomainError handler reads them.
        self.errors = [("metadata", key, msg) for key, msg in problems.items()]


def _number(value, low, low_inclusive, high) -> tuple[Decimal | None, str | None]:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None, "must be a number"
    if isinstance(value, float) and not math.isfinite(value):
        return None, "must be a finite number"
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        return None, "must be a number"
    if not number.is_finite():
        return None, "must be a finite number"
    if abs(number) > high * 2:
        return None, f"must be at most {high}"
    # Scores work on at most 6 decimal places of any input.
    number = _plain(number.quantize(Decimal("0.000001")))
    if number < low or (number == low and not low_inclusive):
        return None, f"must be {'at least' if low_inclusive else 'greater than'} {low}"
    if number > high:
        return None, f"must be at most {high}"
    return number, None


def _plain(number: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form (`4`, `0.5`, `15000`)."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


def _unstorable(value, depth: int = 0) -> bool:
    """NUL (PostgreSQL refuses it), NaN or infinities (not JSON), or nesting beyond 5."""
    if depth > 5:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_unstorable(k, depth + 1) or _unstorable(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v, depth + 1) for v in value)
    return False


def _strings(value, pattern: re.Pattern, what: str) -> tuple[list[str] | None, str | None]:
    if not isinstance(value, list):
        return None, f"must be a list of {what}"
    if len(value) > MAX_LIST:
        return None, f"must have at most {MAX_LIST} items"
    cleaned = []
    for item in value:
        if not isinstance(item, str) or not pattern.match(item):
            return None, f"must be a list of {what}"
        if item not in cleaned:
            cleaned.append(item)
    return cleaned, None


def validate_metadata(
    metadata, *, persona_slugs: set[str], loc_prefix: tuple = ()
) -> tuple[dict, list[str]]:
    """(cleaned known keys, ignored unknown keys); raises MetadataError."""
    if not isinstance(metadata, dict):
        raise MetadataError({"__all__": "metadata must be an object"}, loc_prefix=loc_prefix)
    if len(metadata) > MAX_KEYS:
        raise MetadataError(
            {"__all__": f"metadata has at most {MAX_KEYS} keys"}, loc_prefix=loc_prefix
        )
    problems: dict[str, str] = {}
    cleaned: dict = {}
    for key, (low, inclusive, high, _default, _what) in NUMBER_KEYS.items():
        if key in metadata and metadata[key] is not None:
            number, problem = _number(metadata[key], low, inclusive, high)
            if problem:
                problems[key] = problem
            else:
                cleaned[key] = number
    if metadata.get("reach_accounts") is not None:
        reach = metadata["reach_accounts"]
        if isinstance(reach, bool) or not isinstance(reach, int):
            problems["reach_accounts"] = "must be a whole number"
        elif not 0 <= reach <= MAX_REACH:
            problems["reach_accounts"] = f"must be between 0 and {MAX_REACH}"
        else:
            cleaned["reach_accounts"] = reach
    if metadata.get("target_personas") is not None:
        slugs, problem = _strings(metadata["target_personas"], TAG_RE, "persona slugs")
        unknown = sorted(set(slugs or []) - persona_slugs)
        if problem:
            problems["target_personas"] = problem
        elif unknown:
            problems["target_personas"] = f"unknown persona {', '.join(unknown)}"
        else:
            cleaned["target_personas"] = slugs
    if metadata.get("addresses_health_factors") is not None:
        factors, problem = _strings(
            metadata["addresses_health_factors"], FACTOR_RE, "health factor names"
        )
        if problem:
            problems["addresses_health_factors"] = problem
        else:
            cleaned["addresses_health_factors"] = factors
    if metadata.get("support_tags") is not None:
        tags, problem = _strings(metadata["support_tags"], TAG_RE, "ticket tags (lowercase)")
        if problem:
            problems["support_tags"] = problem
        else:
            cleaned["support_tags"] = tags
    for key, value in metadata.items():
        if key not in KNOWN_KEYS and (_unstorable(key) or _unstorable(value)):
            problems[str(key).replace("\x00", "")] = (
                "must be JSON without NUL characters, NaN or infinities, nested at most 5 levels"
            )
    if problems:
        raise MetadataError(problems, loc_prefix=loc_prefix)
    ignored = sorted(str(k) for k in metadata if k not in KNOWN_KEYS)
    return cleaned, ignored


def with_defaults(cleaned: dict) -> tuple[dict, list[str]]:
    """The values a score uses: the given ones, the documented default for the others."""
    values = dict(cleaned)
    defaulted = []
    for key, (_low, _inc, _high, default, _what) in NUMBER_KEYS.items():
        if key not in values:
            values[key] = default
            defaulted.append(key)
    values.setdefault("target_personas", [])
    values.setdefault("addresses_health_factors", [])
    values.setdefault("support_tags", [])
    return values, defaulted


def storable(metadata: dict, cleaned: dict) -> dict:
    """What the feature keeps: the cleaned known keys (Decimals as strings) and the unknown
    keys as given (JSON)."""
    kept = {k: v for k, v in metadata.items() if k not in KNOWN_KEYS}
    for key, value in cleaned.items():
        kept[key] = str(value) if isinstance(value, Decimal) else value
    return kept
