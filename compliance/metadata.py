"""The metadata vocabulary the catalogue's rules read: typed, closed (an unknown or misspelt
key is refused rather than silently "not evidenced"), shared by the API bodies and the
services so both refuse the same input with the same field."""

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
)

from opsplatform.errors import InvalidInput
from opsplatform.schemas import NoNul

RIGHTS = ("access", "rectification", "erasure", "restriction", "portability", "objection")
CCPA_RIGHTS = ("opt_out_of_sale",)
Right = Literal[RIGHTS + CCPA_RIGHTS]  # type: ignore[valid-type]
LEGAL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
LegalBasis = Literal[LEGAL_BASES]  # type: ignore[valid-type]


def _lower(value):
    return value.strip().lower() if isinstance(value, str) else value


# A data type or recipient name: lower-case words ("usage_data", "health records").
Term = Annotated[
    str,
    BeforeValidator(_lower),
    StringConstraints(min_length=1, max_length=60, pattern=r"^[a-z0-9][a-z0-9 _\-]*$"),
    NoNul,
]
Days = Annotated[StrictInt, Field(ge=0, le=36_500)]
Hours = Annotated[StrictInt, Field(ge=0, le=8_760)]
Standard = Annotated[Literal["gdpr", "ccpa", "soc2"], BeforeValidator(_lower)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class DataCollected(_Closed):
    personal: StrictBool | None = None
    excessive: StrictBool | None = None
    categories: list[Term] | None = Field(None, max_length=50)


class SegmentMetadata(_Closed):
    """What a segment (or a pattern) declares about its processing; every key is optional,
    and a requirement whose deciding key is absent is reported "not evidenced"."""

    data_collected: DataCollected | None = None
    consent_obtained: StrictBool | None = None
    legal_basis: LegalBasis | None = None
    data_subject_rights_supported: list[Right] | None = Field(None, max_length=10)
    data_retention_period: Days | None = Field(None, description="Days")
    dsr_response_days: Days | None = None
    privacy_by_default: StrictBool | None = None
    records_of_processing: StrictBool | None = None
    breach_notification_hours: Hours | None = None
    dpia_completed: StrictBool | None = None
    international_transfers: StrictBool | None = None
    transfer_safeguards: StrictBool | None = None
    encryption_at_rest: StrictBool | None = None
    encryption_in_transit: StrictBool | None = None
    privacy_notice_provided: StrictBool | None = None
    sells_personal_information: StrictBool | None = None
    do_not_sell_link: StrictBool | None = None
    access_reviews: StrictBool | None = None
    external_access_restricted: StrictBool | None = None
    security_monitoring: StrictBool | None = None
    incident_response_plan: StrictBool | None = None
    change_management: StrictBool | None = None
    backups_tested: StrictBool | None = None


class FeatureMetadata(_Closed):
    """What assess_security reads about a feature."""

    authentication_required: StrictBool | None = None
    sensitive_data_handled: StrictBool | None = None
    encryption_implemented: StrictBool | None = None
    sql_queries: StrictBool | None = None
    parameterized_queries: StrictBool | None = None
    user_input_accepted: StrictBool | None = None
    input_validation: StrictBool | None = None
    rate_limiting: StrictBool | None = None
    audit_logging: StrictBool | None = None


class PatternMetadata(SegmentMetadata, FeatureMetadata):
    """An operational pattern declares both, plus what the DPIA screening reads."""

    personal_data_involved: StrictBool | None = None
    data_types_collected: list[Term] | None = Field(None, max_length=50)
    user_consent_required: StrictBool | None = None
    data_sharing: list[Term] | None = Field(None, max_length=50)
    systematic_monitoring: StrictBool | None = None
    automated_decisions: StrictBool | None = None


def _paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    found = set()
    for name, info in model.model_fields.items():
        found.add(prefix + name)
        annotation = info.annotation
        for arg in getattr(annotation, "__args__", ()) or (annotation,):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                found |= _paths(arg, f"{prefix}{name}.")
    return found


# Every key a rule may name (dotted for nested ones: "data_collected.excessive").
KNOWN_KEYS = frozenset(_paths(PatternMetadata))


def parse(model: type[BaseModel], data, *, field: str) -> dict:
    """`data` checked against `model`: the keys given (nulls dropped), or InvalidInput naming
    the first wrong field as `field.key`."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{field} must be an object.", field=field)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in (field, *error["loc"]))
        raise InvalidInput(f"{where}: {error['msg']}", field=where) from None
    return parsed.model_dump(exclude_none=True)


def parse_standards(values, *, field: str = "applicable_standards") -> list[str]:
    """Standards asked for, lower-case and without repeats; unknown ones are refused."""
    if not isinstance(values, list | tuple) or not values:
        raise InvalidInput("Name at least one standard (gdpr, ccpa, soc2).", field=field)
    found = []
    for index, value in enumerate(values):
        value = getattr(value, "value", value)
        text = value.strip().lower() if isinstance(value, str) else None
        if text not in ("gdpr", "ccpa", "soc2"):
            raise InvalidInput(
                f"Unknown standard {value!r}: use gdpr, ccpa or soc2.", field=f"{field}.{index}"
            )
        if text not in found:
            found.append(text)
    return found


class PiaInput(_Closed):
    """conduct_privacy_impact_assessment's arguments."""

    feature_name: Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
    data_types_collected: list[Term] = Field(max_length=50)
    data_retention_period: Days
    data_sharing: list[Term] = Field(default_factory=list, max_length=50)
    user_consent_required: StrictBool
    systematic_monitoring: StrictBool = False
    automated_decisions: StrictBool = False


def parse_fields(model: type[BaseModel], data: dict) -> dict:
    """Keyword arguments checked against `model`, or InvalidInput naming the argument."""
    try:
        return model.model_validate(data).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "__all__"
        raise InvalidInput(f"{where}: {error['msg']}", field=where) from None
