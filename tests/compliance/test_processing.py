"""The record of processing comes from the apps' PERSONAL_DATA declarations: one row per
field with purpose, legal basis, retention and history; a bad declaration is reported."""

import pytest

from compliance import processing

pytestmark = pytest.mark.django_db


def test_every_declared_field_is_a_row_with_its_declaration():
    records = {(r.model, r.field): r for r in processing.processing_records()}
    account_name = records[("opsplatform.Account", "name")]
    assert account_name.app == "opsplatform"
    assert account_name.purpose == "Provide the service to the customer; tax country for billing"
    assert account_name.legal_basis == "Contract (Art. 6(1)(b))"
    assert account_name.has_history is True
    assert records[("opsplatform.UserSession", "session_data")].has_history is False
    apps = {r.app for r in records.values()}
    assert apps == {"opsplatform", "support", "userflows"}
    assert processing.declaration_errors() == []


def test_a_declaration_naming_a_missing_model_or_field_is_reported(monkeypatch):
    monkeypatch.setattr(
        processing,
        "_declarations",
        lambda: [
            ("x", {"model": "support.Ticket", "fields": ["requester_phone"], "purpose": "p",
                   "legal_basis": "b", "retention": "r"}),
            ("x", {"model": "nowhere.Thing", "fields": ["a"], "purpose": "p",
                   "legal_basis": "b", "retention": "r"}),
            ("x", {"model": "support.Ticket", "fields": ["requester_email"]}),
        ],
    )  # fmt: skip
    assert processing.declaration_errors() == [
        "support.Ticket.requester_phone: no such field",
        "nowhere.Thing: no such model",
        "support.Ticket: missing purpose, legal_basis, retention",
    ]
    assert processing.processing_records() == []
