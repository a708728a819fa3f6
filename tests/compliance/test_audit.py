"""The audit trail across every history table: who, what, when, old and new values; filters;
pages by key without counting; and a query count that does not grow with the rows."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance import audit
from compliance.models import Requirement
from opsplatform.errors import InvalidInput
from tests.factories import AccountFactory, staff_in

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
HistoricalRequirement = Requirement.history.model


def fill(count: int, user=None, objects: int = 30):
    """`count` history rows over the first `objects` requirements, one a minute from T0."""
    for history_model in audit.history_models().values():
        history_model.objects.all().delete()
    ids = list(Requirement.objects.values_list("pk", flat=True))[:objects]
    req = Requirement.objects.get(code="GDPR-7")
    base = {f.attname: getattr(req, f.attname) for f in Requirement._meta.concrete_fields}
    rows = []
    for i in range(count):
        values = {**base, "id": ids[i % len(ids)], "title": f"Title {i}"}
        rows.append(
            HistoricalRequirement(
                **values,
                history_date=T0 + dt.timedelta(minutes=i),
                history_type="~" if i >= len(ids) else "+",
                history_user=user,
                history_change_reason="",
            )
        )
    HistoricalRequirement.objects.bulk_create(rows, batch_size=2000)


def queries(**kwargs):
    with CaptureQueriesContext(connection) as ctx:
        page = audit.audit_page(**kwargs)
    return len(ctx.captured_queries), page


def test_every_history_table_is_read():
    labels = list(audit.history_models())
    for label in ("opsplatform.Account", "support.Ticket", "userflows.DeletionRequest",
                  "compliance.Requirement", "compliance.PrivacyImpactAssessment"):  # fmt: skip
        assert label in labels


def test_the_query_count_is_the_same_at_10_and_10000_history_rows():
    user = staff_in("compliance")
    fill(10, user, objects=5)  # the same page shape: rows with earlier versions, one table
    small, page = queries(limit=50)
    assert len(page.entries) == 10
    assert page.next_cursor is None
    fill(10_000, user, objects=5)
    large, page = queries(limit=50)
    assert len(page.entries) == 50
    assert page.next_cursor is not None
    assert small == large
    assert large <= 2 * len(audit.history_models()) + 1


def test_one_model_page_walks_every_row_once_newest_first():
    fill(125)
    seen, cursor, pages = [], None, 0
    while True:
        page = audit.audit_page(model="compliance.Requirement", cursor=cursor, limit=50)
        seen += [e.history_id for e in page.entries]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 125
    dates = [HistoricalRequirement.objects.get(pk=h).history_date for h in seen[:3]]
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == T0 + dt.timedelta(minutes=124)


def test_who_changed_what_with_old_and_new_values():
    officer = staff_in("compliance")
    requirement = Requirement.objects.get(code="GDPR-12")
    requirement._history_user = officer
    requirement.title = "Answering requests in a month"
    requirement.save()
    page = audit.audit_page(model="compliance.Requirement", user_id=officer.pk)
    (entry,) = page.entries
    assert entry.username == officer.username
    assert entry.action == "changed"
    assert entry.object_id == requirement.pk
    assert entry.changes == [
        ("title", "Answering data-subject requests", "Answering requests in a month")
    ]


def test_a_creation_lists_the_values_set_and_secrets_are_redacted():
    staff = staff_in()
    from opsplatform.services import issue_api_token

    token, _ = issue_api_token(user=staff, label="ci")
    page = audit.audit_page(model="opsplatform.ApiToken")
    (entry,) = page.entries
    changes = {name: (old, new) for name, old, new in entry.changes}
    assert entry.action == "created"
    assert changes["label"] == ("", "ci")
    assert changes["token_hash"] == ("", "[redacted]")
    assert token.token_hash not in str(entry.changes)


def test_filters_by_user_and_date():
    officer = staff_in("compliance")
    fill(30, officer)
    AccountFactory()  # a history row of another table, another user (none)
    page = audit.audit_page(user_id=officer.pk, limit=100)
    assert {e.label for e in page.entries} == {"compliance.Requirement"}
    assert len(page.entries) == 30
    day = audit.audit_page(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 1), limit=100)
    assert len(day.entries) == 30
    none = audit.audit_page(date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 31))
    assert none.entries == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": "nope.Model"}, "model"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "2026-01-01T00:00:00|x|1"}, "cursor"),  # no offset: not ours
        ({"cursor": "2026-01-01T00:00:00+00:00|x|abc"}, "cursor"),
    ],
)
def test_bad_filters_are_refused(kwargs, field):
    with pytest.raises(InvalidInput) as caught:
        audit.audit_page(**kwargs)
    assert caught.value.field == field
