"""The declared export types: one registry (every app's `privacy.EXPORT_TYPES`) feeds the
customer form, the export job and the API's description; each type's header comes from the
same column list as its rows."""

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

import opsplatform.privacy
from opsplatform.exports import ExportType, export_types, query_export, registered_export_types
from opsplatform.models import Campaign, UsageEvent
from support import services as support_services
from support.attachments import IncomingFile
from tests.factories import CampaignFactory, CampaignMetricFactory
from tests.support.factories import make_agent, reply
from tests.support.factories import make_ticket as make_support_ticket
from tests.userflows.factories import InvoiceFactory
from userflows.forms import ExportForm

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()

REGISTERED = [
    ("campaigns", "Campaigns"),
    ("analytics", "Analytics (daily metrics)"),
    ("reports", "Reports (per-campaign summaries with ROI and ROAS)"),
    ("account", "Account profile"),
    ("usage_events", "Usage events"),
    ("tickets", "Support tickets"),
    ("ticket_attachments", "Support ticket attachments (list of files)"),
    ("invoices", "Invoices"),
]


def test_the_registry_holds_every_apps_types_with_their_labels():
    registry = registered_export_types()

    assert [(name, t.label) for name, t in registry.items()] == REGISTERED
    assert all(isinstance(t, ExportType) and t.name == name for name, t in registry.items())


def test_the_form_lists_the_registry_with_its_labels():
    form = ExportForm()

    assert form.fields["data_types"].choices == REGISTERED
    assert form.fields["data_types"].initial == [name for name, _ in REGISTERED]


def test_a_type_added_to_the_registry_shows_in_the_form_and_can_be_exported(
    account, monkeypatch, run_export
):
    notes = ExportType(
        name="notes",
        label="Account notes",
        columns=("note",),
        rows=lambda account, date_from, date_to: iter([("first",), ("second",)]),
    )
    monkeypatch.setitem(opsplatform.privacy.EXPORT_TYPES, "notes", notes)

    html = ExportForm().as_div()
    export = run_export(account, data_types=["notes"], format="json")

    assert ("notes", "Account notes") in ExportForm().fields["data_types"].choices
    assert 'value="notes"' in html and "Account notes" in html
    assert export.row_counts == {"notes": 2}


def test_the_api_describes_the_data_types_from_the_registry(client):
    schema = client.get("/api/v1/openapi.json").json()
    description = schema["components"]["schemas"]["ExportIn"]["properties"]["data_types"][
        "description"
    ]

    assert "tickets (Support tickets)" in description
    assert "invoices (Invoices)" in description


@pytest.fixture
def sample_account(account):
    """One row (at least) of every registered type for `account`, dated today."""
    campaign = CampaignFactory(account=account, starts_on=TODAY, ends_on=TODAY, name="=1+1")
    CampaignMetricFactory(campaign=campaign, date=TODAY)
    UsageEvent.objects.create(
        account=account,
        type="page_view",
        occurred_at=timezone.now(),
        properties={"path": "/"},
        idempotency_key="sample-1",
    )
    InvoiceFactory(
        account=account,
        period_start=timezone.now() - dt.timedelta(hours=1),
        period_end=timezone.now() + dt.timedelta(days=29),
    )
    ticket = make_support_ticket(account=account, subject="Sample")
    reply(ticket, make_agent(), "An answer")
    support_services.store_attachments(
        ticket=ticket,
        message=ticket.messages.first(),
        files=[IncomingFile("notes.txt", "text/plain", b"sample")],
    )
    return account


def test_every_types_header_is_as_wide_as_its_rows(sample_account):
    widths = {}
    for name, export_type in registered_export_types().items():
        rows = list(export_type.rows(sample_account, TODAY, TODAY))
        assert rows, name
        assert {len(row) for row in rows} == {len(export_type.header)}, name
        if export_type.count is not None:
            assert export_type.count(sample_account, TODAY, TODAY) == len(rows), name
        widths[name] = len(export_type.header)

    assert widths == {
        "campaigns": 9,
        "analytics": 8,
        "reports": 12,
        "account": 12,  # time_zone joined the profile
        "usage_events": 6,
        "tickets": 10,
        "ticket_attachments": 7,
        "invoices": 10,
    }


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY needs PostgreSQL")
def test_the_copy_sql_selects_the_same_columns_formula_safe(sample_account):
    copied = {}
    for name, export_type in registered_export_types().items():
        if export_type.copy_sql is None:
            continue
        sql, params = export_type.copy_sql(sample_account, TODAY, TODAY)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            assert len(cursor.description) == len(export_type.header), name
        copied[name] = rows

    assert list(copied) == ["analytics"]
    assert copied["analytics"][0][1] == "'=1+1"


def test_query_export_derives_header_rows_and_copy_from_one_column_list(account):
    CampaignFactory(account=account, starts_on=TODAY, ends_on=TODAY, name="Spring")

    def query(account, date_from, date_to):
        return Campaign.objects.filter(account=account).order_by("id")

    plain = query_export("c", "C", columns=[("title", "name"), ("from", "starts_on")], query=query)
    copyable = query_export(
        "c", "C", columns=[("title", "name")], query=query, formula_safe_copy=["name"]
    )

    assert plain.header == ["title", "from"]
    assert list(plain.rows(account, TODAY, TODAY)) == [("Spring", TODAY)]
    assert plain.count(account, TODAY, TODAY) == 1
    assert (plain.copy_sql, callable(copyable.copy_sql)) == (None, True)
    with pytest.raises(ValueError, match="unknown fields"):
        query_export("c", "C", columns=[("title", "name")], query=query, formula_safe_copy=["x"])


def test_a_type_name_is_declared_once(monkeypatch):
    campaigns = opsplatform.privacy.EXPORT_TYPES["campaigns"]

    with pytest.raises(ValueError):
        export_types(campaigns, dataclasses.replace(campaigns, label="Again"))
    monkeypatch.setitem(
        opsplatform.privacy.EXPORT_TYPES,
        "invoices",
        dataclasses.replace(campaigns, name="invoices"),
    )
    with pytest.raises(ValueError, match="invoices"):
        registered_export_types()


TRICKY_NAMES = [
    "Plain read",
    "=HYPERLINK(1)",
    "+SUM(1)",
    "-2+3",
    "@cmd",
    "\tTab first",
    "\rCR first",
    'Says "hi", twice',
    "two\nlines",
    "back\\slash",
    "Café ünïcode ✓",
]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the CSV chunks need PostgreSQL")
def test_csv_made_by_postgresql_parses_to_the_rows_python_writes(account, run_export, monkeypatch):
    import csv
    import io

    from tests.userflows.conftest import read_zip

    for i, name in enumerate(TRICKY_NAMES):
        campaign = CampaignFactory(
            account=account, name=name, starts_on=TODAY - dt.timedelta(days=3), ends_on=TODAY
        )
        for day in range(3):
            CampaignMetricFactory(
                campaign=campaign,
                date=TODAY - dt.timedelta(days=day),
                impressions=1000 + i,
                clicks=day,
                conversions=i % 2,
                revenue=Decimal("12.30") * (day + 1),
                spend=Decimal("0.05") + i,
            )
    analytics = opsplatform.privacy.EXPORT_TYPES["analytics"]
    assert analytics.csv_chunks is not None
    span = {"date_from": TODAY - dt.timedelta(days=5), "date_to": TODAY}

    chunked = read_zip(run_export(account, data_types=["analytics"], **span))
    monkeypatch.setitem(
        opsplatform.privacy.EXPORT_TYPES,
        "analytics",
        dataclasses.replace(analytics, csv_chunks=None, copy_sql=None),
    )
    by_python = read_zip(run_export(account, data_types=["analytics"], **span))

    def parsed(archive):
        return list(csv.reader(io.StringIO(archive.read("analytics.csv").decode(), newline="")))

    rows = parsed(chunked)
    assert rows == parsed(by_python)
    assert len(rows) == 1 + 3 * len(TRICKY_NAMES)
    names = {r[1] for r in rows[1:]}
    assert "'=HYPERLINK(1)" in names and "'\tTab first" in names and "two\nlines" in names
    assert 'Says "hi", twice' in names
    manifest = json.loads(chunked.read("manifest.json"))
    assert manifest["counts"] == {"analytics": 3 * len(TRICKY_NAMES)}
