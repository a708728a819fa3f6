"""CompiledQuery: a queryset compiled once gives the same objects as the ORM, in one query,
with new parameter values each time."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from opsplatform import selectors, services
from opsplatform.compiled import CompiledQuery, Listing
from opsplatform.models import Account, UsageEvent
from tests.factories import AccountFactory, StaffFactory, token_for

pytestmark = pytest.mark.django_db


def test_token_lookup_brings_user_account_and_persona_in_one_query():
    account = AccountFactory(name="Lookup Media", time_zone="Europe/Berlin")
    raw = token_for(account.user)
    selectors.api_token_authenticate(raw)  # compiled on first use
    with CaptureQueriesContext(connection) as queries:
        token = selectors.api_token_authenticate(raw)
        assert token.user.username == account.user.username
        assert token.user.account.name == "Lookup Media"
        assert token.user.account.time_zone == "Europe/Berlin"
        assert token.user.account.persona.slug == "solo_podcaster"
        assert token.user._account_cache == account
    assert len(queries) == 1


def test_each_call_uses_its_own_value():
    first, second = AccountFactory(name="First"), AccountFactory(name="Second")
    raw_first, raw_second = token_for(first.user), token_for(second.user)
    assert selectors.api_token_authenticate(raw_second).user.account.name == "Second"
    assert selectors.api_token_authenticate(raw_first).user.account.name == "First"
    assert selectors.api_token_authenticate("not-a-token") is None


def test_revoked_tokens_and_inactive_users_are_not_found():
    account = AccountFactory()
    raw = token_for(account.user)
    token = selectors.api_token_authenticate(raw)
    services.revoke_api_token(token=token)
    assert selectors.api_token_authenticate(raw) is None

    other = AccountFactory()
    raw_other = token_for(other.user)
    other.user.is_active = False
    other.user.save()
    assert selectors.api_token_authenticate(raw_other) is None


def test_a_staff_token_has_no_account():
    staff = StaffFactory()
    token = selectors.api_token_authenticate(token_for(staff))
    assert token.user == staff
    assert token.user._account_cache is None
    with pytest.raises(Account.DoesNotExist):
        token.user.account  # noqa: B018


def test_field_converters_apply_json_comes_back_as_a_dict():
    account = AccountFactory()
    occurred = timezone.make_aware(dt.datetime(2026, 3, 1, 12, 30))
    UsageEvent.objects.create(
        account=account,
        type="ad.played",
        occurred_at=occurred,
        properties={"episode": 12, "tags": ["a", "b"]},
        idempotency_key="compiled-1",
    )
    lookup = CompiledQuery(
        lambda key: UsageEvent.objects.select_related("account").filter(idempotency_key=key)[:1],
        key=str,
    )
    event = lookup.first(key="compiled-1")
    assert event.properties == {"episode": 12, "tags": ["a", "b"]}
    assert event.occurred_at == occurred
    assert event.account.name == account.name
    assert lookup.first(key="compiled-2") is None


def test_a_parameter_that_does_not_reach_the_sql_unchanged_is_refused():
    lookup = CompiledQuery(
        lambda key: UsageEvent.objects.filter(idempotency_key__icontains=key)[:1], key=str
    )
    with pytest.raises(ValueError, match="must reach the SQL once"):
        lookup.first(key="x")


def test_integer_parameters_and_all_rows_in_order():
    first, second = AccountFactory(name="First"), AccountFactory(name="Second")
    for account, keys in ((first, ["b", "a", "c"]), (second, ["z"])):
        for n, key in enumerate(keys):
            UsageEvent.objects.create(
                account=account,
                type="login",
                occurred_at=timezone.make_aware(dt.datetime(2026, 1, 1 + n)),
                idempotency_key=key,
            )
    lookup = CompiledQuery(
        lambda account_id: UsageEvent.objects.filter(account_id=account_id).order_by(
            "idempotency_key"
        ),
        account_id=int,
    )
    assert [e.idempotency_key for e in lookup.all(account_id=first.id)] == ["a", "b", "c"]
    assert [e.idempotency_key for e in lookup.all(account_id=second.id)] == ["z"]
    assert lookup.all(account_id=second.id + first.id + 1000) == []
    with pytest.raises(TypeError, match="account_id must be int"):
        lookup.all(account_id=str(first.id))


def _events(account, keys):
    for n, key in enumerate(keys):
        UsageEvent.objects.create(
            account=account,
            type="login",
            occurred_at=timezone.make_aware(dt.datetime(2026, 2, 1 + n)),
            idempotency_key=key,
        )


def test_count_and_pages_match_the_querysets_rows():
    mine, other = AccountFactory(), AccountFactory()
    _events(mine, ["e1", "e2", "e3", "e4", "e5"])
    _events(other, ["x1"])
    listing = CompiledQuery(
        lambda account_id: (
            UsageEvent.objects.select_related("account")
            .filter(account_id=account_id)
            .order_by("-occurred_at", "-id")
        ),
        account_id=int,
    )
    assert listing.count(account_id=mine.id) == 5
    assert listing.count(account_id=other.id) == 1
    assert [e.idempotency_key for e in listing.page(0, 2, account_id=mine.id)] == ["e5", "e4"]
    assert [e.idempotency_key for e in listing.page(2, 2, account_id=mine.id)] == ["e3", "e2"]
    assert [e.idempotency_key for e in listing.page(4, 2, account_id=mine.id)] == ["e1"]
    assert listing.page(5, 2, account_id=mine.id) == []
    assert listing.page(0, 2, account_id=mine.id)[0].account.name == mine.name
    with pytest.raises(ValueError, match="must not be negative"):
        listing.page(-1, 2, account_id=mine.id)


def test_a_listing_is_read_the_way_ninja_pages_a_queryset():
    account = AccountFactory()
    _events(account, ["a", "b", "c"])
    query = CompiledQuery(
        lambda account_id: UsageEvent.objects.filter(account_id=account_id).order_by("id"),
        account_id=int,
    )
    listing = Listing(query, account_id=account.id)
    assert listing.all().count() == 3
    assert [e.idempotency_key for e in listing[1:3]] == ["b", "c"]
    assert [e.idempotency_key for e in listing[:2]] == ["a", "b"]
    with pytest.raises(ValueError, match="offset:offset"):
        listing[1:]


def test_a_sliced_query_is_neither_counted_nor_paged():
    sliced = CompiledQuery(lambda key: UsageEvent.objects.filter(idempotency_key=key)[:1], key=str)
    with pytest.raises(TypeError, match="cannot be counted"):
        sliced.count(key="a")
    with pytest.raises(TypeError, match="cannot be paged"):
        sliced.page(0, 1, key="a")
