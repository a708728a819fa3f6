"""Core endpoints: who am I, usage events, campaigns and their daily metrics."""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.utils import timezone
from ninja import Field, Path, Query, Router, Schema
from ninja.pagination import paginate
from ninja.responses import Status
from pydantic import StringConstraints, field_validator, model_validator

from opsplatform import selectors, services, timezones
from opsplatform.models import Campaign
from opsplatform.schemas import (
    MAX_ID,
    CleanStr,
    Id,
    Input,
    JsonValue,
    NoNul,
    Pagination,
    StorableDatetime,
    responses,
)
from opsplatform.tenancy import account_of, is_staff, require_account

router = Router(tags=["core"])

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Count = Annotated[int, Field(ge=0, le=10**12)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]


class AccountOut(Schema):
    id: int
    name: str
    persona: str
    plan: str
    country: str


class MeOut(Schema):
    username: str
    email: str
    first_name: str
    last_name: str
    time_zone: str = Field(description="IANA name; the customer's pages and emails use it")
    is_staff: bool
    account: AccountOut | None
    permissions: list[str]


ProfileName = Annotated[str, StringConstraints(max_length=150), NoNul]


class ProfileIn(Input):
    """The fields to change; those left out stay as they are."""

    first_name: ProfileName | None = None
    last_name: ProfileName | None = None
    time_zone: Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul] | None = Field(
        None, description="IANA name, e.g. America/Los_Angeles"
    )

    @field_validator("time_zone")
    @classmethod
    def known_zone(cls, value):
        if value is not None and not timezones.is_valid(value):
            raise ValueError(timezones.MESSAGE)
        return value


def _me(user) -> dict:
    account = account_of(user)
    return {
        "username": user.get_username(),
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "time_zone": timezones.zone_of(user).key,
        "is_staff": is_staff(user),
        "account": None
        if account is None
        else {
            "id": account.id,
            "name": account.name,
            "persona": account.persona.slug,
            "plan": account.plan,
            "country": account.country,
        },
        "permissions": sorted(user.get_all_permissions()) if is_staff(user) else [],
    }


@router.get("/me", response=responses({200: MeOut}), summary="The caller and their account")
def me(request):
    return _me(request.user)


@router.patch("/me", response=responses({200: MeOut}), summary="Change the caller's profile")
def update_me(request, payload: ProfileIn):
    """A customer's name and time zone (the profile page's fields). Staff change theirs in
    the admin: 403 here."""
    require_account(request.user)
    user = request.user
    services.update_profile(
        user=user,
        first_name=user.first_name if payload.first_name is None else payload.first_name,
        last_name=user.last_name if payload.last_name is None else payload.last_name,
        time_zone=payload.time_zone,
        actor=user,
    )
    return _me(user)


# --- events -----------------------------------------------------------------------------------


class EventIn(Input):
    type: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"), NoNul
    ]
    occurred_at: StorableDatetime
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul]
    properties: dict[CleanStr, JsonValue] = Field(default_factory=dict)
    account_id: Id | None = None

    @model_validator(mode="after")
    def not_in_future(self):
        if self.occurred_at > timezone.now() + dt.timedelta(days=1):
            raise ValueError("occurred_at is more than a day in the future")
        if len(str(self.properties)) > 16_384:
            raise ValueError("properties are larger than 16 KB")
        return self


class EventsIn(Input):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class EventsOut(Schema):
    accepted: int
    duplicates: int


@router.post("/events", response=responses({200: EventsOut}), summary="Push usage events")
def push_events(request, payload: EventsIn):
    """Up to 1,000 events; all are validated before any is stored. An event whose
    idempotency key is already stored for its account is counted as a duplicate."""
    inputs = [
        services.EventInput(
            account_id=event.account_id,
            type=event.type,
            occurred_at=event.occurred_at,
            idempotency_key=event.idempotency_key,
            properties=event.properties,
        )
        for event in payload.events
    ]
    accepted, duplicates = services.push_usage_events(user=request.user, events=inputs)
    return {"accepted": accepted, "duplicates": duplicates}


# --- campaigns --------------------------------------------------------------------------------


class CampaignOut(Schema):
    id: int
    account_id: int
    name: str
    sponsor: str
    starts_on: dt.date
    ends_on: dt.date
    deal_value: Decimal
    status: str
    renewed_from: int | None = Field(alias="renewed_from_id")
    created_at: dt.datetime

    @staticmethod
    def resolve_sponsor(obj) -> str:
        # A resolver, not alias="sponsor.name": ninja resolves a dotted alias by parsing a
        # template Variable for every item of every page.
        return obj.sponsor.name


class CampaignIn(Input):
    name: Name
    sponsor: Name
    starts_on: dt.date
    ends_on: dt.date
    deal_value: Money
    renewed_from: Id | None = None

    @model_validator(mode="after")
    def dates_in_order(self):
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must be on or after starts_on")
        return self


class CampaignFilters(Schema):
    status: Campaign.Status | None = None
    sponsor: Annotated[str, StringConstraints(max_length=200), NoNul] | None = None
    account_id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = Field(
        None, description="Staff only: one account's campaigns"
    )


@router.get("/campaigns", response=responses({200: list[CampaignOut]}), summary="List campaigns")
@paginate(Pagination)
def list_campaigns(request, filters: Query[CampaignFilters]):
    return selectors.campaign_listing(
        user=request.user,
        account_id=filters.account_id,
        status=filters.status,
        sponsor=filters.sponsor,
    )


@router.post("/campaigns", response=responses({201: CampaignOut}), summary="Create a campaign")
def create_campaign(request, payload: CampaignIn):
    account = require_account(request.user)
    campaign = services.create_campaign(
        account=account,
        name=payload.name,
        sponsor_name=payload.sponsor,
        starts_on=payload.starts_on,
        ends_on=payload.ends_on,
        deal_value=payload.deal_value,
        renewed_from_id=payload.renewed_from,
        actor=request.user,
    )
    return Status(201, selectors.campaign_get(user=request.user, campaign_id=campaign.id))


@router.get(
    "/campaigns/{campaign_id}", response=responses({200: CampaignOut}), summary="One campaign"
)
def get_campaign(request, campaign_id: Path[Id]):
    return selectors.campaign_get(user=request.user, campaign_id=campaign_id)


class MetricIn(Input):
    date: dt.date
    impressions: Count
    clicks: Count
    conversions: Count
    revenue: Money
    spend: Money


class MetricsIn(Input):
    metrics: list[MetricIn] = Field(min_length=1, max_length=1000)


class UpsertedOut(Schema):
    upserted: int


@router.put(
    "/campaigns/{campaign_id}/metrics",
    response=responses({200: UpsertedOut}),
    summary="Upsert a campaign's daily metrics",
)
def put_metrics(request, campaign_id: Path[Id], payload: MetricsIn):
    """Rows are matched by date: an existing day is replaced, a new day inserted."""
    count = services.put_campaign_metrics(
        user=request.user,
        campaign_id=campaign_id,
        metrics=[services.MetricInput(**m.model_dump()) for m in payload.metrics],
    )
    return {"upserted": count}
