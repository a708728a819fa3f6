"""The compliance API: the contract of issue 14 (paths, keys, status codes), 422 with the
field for bad metadata, and the walls: customers get 403 (or 404) on every endpoint, staff
need the permission, only the compliance group signs a DPIA off."""

import pytest

from compliance.models import CheckRun, PrivacyImpactAssessment, SecurityAssessment
from tests.conftest import ApiClient
from tests.factories import staff_in, token_for

pytestmark = pytest.mark.django_db

SEGMENT = {
    "segment_name": "Enterprise Segment",
    "segment_metadata": {
        "data_collected": {"personal": True, "excessive": False},
        "consent_obtained": True,
        "data_subject_rights_supported": ["access", "rectification", "erasure"],
        "encryption_at_rest": True,
        "encryption_in_transit": True,
    },
    "applicable_standards": ["gdpr", "soc2"],
}
FEATURE = {
    "feature_name": "Data Export",
    "feature_metadata": {
        "authentication_required": False,
        "sensitive_data_handled": True,
        "encryption_implemented": True,
        "user_input_accepted": True,
        "input_validation": True,
        "sql_queries": False,
    },
}
PIA = {
    "feature_name": "Analytics Dashboard",
    "data_types_collected": ["email", "usage_data", "campaign_data"],
    "data_retention_period": 365,
    "data_sharing": ["analytics_provider"],
    "user_consent_required": True,
}
PATTERN = {
    "pattern_name": "Automated Reporting",
    "pattern_metadata": {
        "personal_data_involved": True,
        "data_types_collected": ["email", "campaign_data"],
        "data_retention_period": 90,
        "user_consent_required": True,
        "encryption_implemented": True,
    },
    "applicable_standards": ["gdpr"],
}


@pytest.fixture
def officer():
    return staff_in("compliance")


@pytest.fixture
def officer_api(officer):
    return ApiClient(token_for(officer))


@pytest.fixture
def ops():
    return staff_in("operations")


@pytest.fixture
def ops_api(ops):
    return ApiClient(token_for(ops))


def test_requirements_are_listed_with_their_rules(officer_api):
    response = officer_api.get("compliance/requirements", {"standard": "ccpa", "limit": 10})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [r["code"] for r in items] == [
        "CCPA-1798.100", "CCPA-1798.105", "CCPA-1798.110", "CCPA-1798.120", "CCPA-1798.135",
        "CCPA-1798.150",
    ]  # fmt: skip
    assert items[-1]["rule"] == {"op": "true", "key": "encryption_in_transit"}
    assert items[-1]["severity"] == "critical"
    assert response.json()["count"] == 6


def test_segment_check_answers_201_with_the_stored_checks(officer_api, officer):
    response = officer_api.post("compliance/segment-checks", SEGMENT)
    assert response.status_code == 201
    body = response.json()
    assert body["passed"] is False
    assert body["standards"] == ["gdpr", "soc2"]
    assert len(body["checks"]) == 24  # 17 GDPR + 7 SOC 2
    by_code = {c["requirement"]: c for c in body["checks"]}
    assert by_code["GDPR-32"] == {
        "requirement": "GDPR-32",
        "standard": "gdpr",
        "passed": True,
        "outcome": "passed",
        "severity": "critical",
        "finding": "encryption_at_rest is true; encryption_in_transit is true",
        "remediation": "",
    }
    assert by_code["GDPR-18"]["passed"] is False
    assert by_code["SOC2-A1.2"]["outcome"] == "not_evidenced"
    assert CheckRun.objects.get(pk=body["id"]).created_by == officer


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {**SEGMENT, "applicable_standards": ["hipaa"]},
            ["body", "applicable_standards", 0],
        ),
        ({**SEGMENT, "applicable_standards": []}, ["body", "applicable_standards"]),
        (
            {**SEGMENT, "segment_metadata": {"encryption_at_rest": "yes"}},
            ["body", "segment_metadata", "encryption_at_rest"],
        ),
        (
            {**SEGMENT, "segment_metadata": {"encryption_at_rest": 1}},
            ["body", "segment_metadata", "encryption_at_rest"],
        ),
        (
            {**SEGMENT, "segment_metadata": {"unknown_key": True}},
            ["body", "segment_metadata", "unknown_key"],
        ),
        (
            {**SEGMENT, "segment_metadata": {"data_subject_rights_supported": "access"}},
            ["body", "segment_metadata", "data_subject_rights_supported"],
        ),
        ({**SEGMENT, "segment_name": "a\x00b"}, ["body", "segment_name"]),
        ({**SEGMENT, "segment_metadata": []}, ["body", "segment_metadata"]),
    ],
)
def test_bad_segment_metadata_is_422_with_the_field_and_nothing_stored(officer_api, body, loc):
    response = officer_api.post("compliance/segment-checks", body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"][0]["loc"] == loc
    assert CheckRun.objects.count() == 0


def test_security_assessment_answers_201(officer_api):
    response = officer_api.post("compliance/security-assessments", FEATURE)
    assert response.status_code == 201
    body = response.json()
    assert body["security_level"] == "critical"
    assert [v["cwe"] for v in body["vulnerabilities"]] == ["CWE-306"]
    assert body["vulnerabilities"][0]["owasp"] == "A07:2021"
    assert SecurityAssessment.objects.count() == 1


def test_security_assessment_refuses_wrong_types(officer_api):
    bad = {**FEATURE, "feature_metadata": {"sql_queries": "no"}}
    response = officer_api.post("compliance/security-assessments", bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-2:] == ["feature_metadata", "sql_queries"]
    assert SecurityAssessment.objects.count() == 0


def test_the_dpia_flow_through_the_api(ops_api, officer_api, ops, officer):
    created = ops_api.post("compliance/pias", PIA)
    assert created.status_code == 201
    pia = created.json()
    assert (pia["status"], pia["dpia_required"], pia["residual_risk"]) == ("draft", False, "low")
    submitted = ops_api.post(f"compliance/pias/{pia['id']}/submit")
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "in_review"
    assert submitted.json()["submitted_by"] == ops.username
    refused = ops_api.post(
        f"compliance/pias/{pia['id']}/review", {"decision": "approved", "note": "ok"}
    )
    assert refused.status_code == 403
    reviewed = officer_api.post(
        f"compliance/pias/{pia['id']}/review", {"decision": "approved", "note": "Low risk."}
    )
    assert reviewed.status_code == 200
    assert reviewed.json()["status"] == "approved"
    assert reviewed.json()["reviewed_by"] == officer.username
    assert reviewed.json()["review_note"] == "Low risk."
    again = officer_api.post(
        f"compliance/pias/{pia['id']}/review", {"decision": "rejected", "note": "x"}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"
    assert PrivacyImpactAssessment.objects.get(pk=pia["id"]).status == "approved"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data_retention_period": "365"}, "data_retention_period"),
        ({"data_retention_period": -5}, "data_retention_period"),
        ({"user_consent_required": "true"}, "user_consent_required"),
        ({"data_types_collected": [""]}, "data_types_collected"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_dpia_input_is_422(officer_api, change, field):
    response = officer_api.post("compliance/pias", {**PIA, **change})
    assert response.status_code == 422
    assert field in response.json()["errors"][0]["loc"]
    assert PrivacyImpactAssessment.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "maybe", "note": "x"},
        {"decision": "approved"},
        {"decision": "approved", "note": ""},
    ],
)
def test_a_review_needs_a_decision_and_a_note(officer_api, body):
    pia = officer_api.post("compliance/pias", PIA).json()
    response = officer_api.post(f"compliance/pias/{pia['id']}/review", body)
    assert response.status_code == 422


def test_unknown_dpia_is_404(officer_api):
    assert officer_api.post("compliance/pias/999999/submit").status_code == 404
    assert officer_api.get("compliance/pias/999999").status_code == 404


def test_pattern_validation_answers_the_seed_keys(officer_api):
    response = officer_api.post("compliance/pattern-validations", PATTERN)
    assert response.status_code == 201
    body = response.json()
    for key in ("validation_passed", "checks", "pia_required", "security_level", "recommendations"):
        assert key in body
    assert body["validation_passed"] is False  # the rights and more are not evidenced
    assert body["pia_required"] is False
    by_code = {c["requirement"]: c for c in body["checks"]}
    assert by_code["GDPR-32"]["outcome"] == "passed"  # encryption_implemented covers both
    assert by_code["GDPR-7"]["outcome"] == "passed"  # consent is required by the pattern
    assert by_code["GDPR-5.1.e"]["outcome"] == "passed"
    assert by_code["GDPR-15"]["outcome"] == "not_evidenced"
    assert (
        "GDPR-15: Offer a self-serve or on-request copy of the subject's data (the data export)."
        in body["recommendations"]
    )


def test_pattern_with_special_data_requires_a_pia(officer_api):
    meta = {**PATTERN["pattern_metadata"], "data_types_collected": ["email", "health_records"]}
    body = officer_api.post(
        "compliance/pattern-validations", {**PATTERN, "pattern_metadata": meta}
    ).json()
    assert body["pia_required"] is True
    assert body["pia_reasons"] == [
        "Art. 35(3)(b): special-category or criminal-offence data (health)"
    ]


def test_monitors_listed_failing_first_and_run_on_demand(officer_api):
    before = officer_api.get("compliance/monitors")
    assert before.status_code == 200
    assert all(m["passed"] is None for m in before.json())
    ran = officer_api.post(
        "compliance/monitors/run", {"keys": ["superusers", "personal-data-history"]}
    )
    assert ran.status_code == 200
    rows = {m["key"]: m for m in ran.json()}
    assert rows["superusers"]["passed"] is True
    assert rows["superusers"]["remediation"] is None
    assert rows["personal-data-history"]["passed"] is False
    assert rows["personal-data-history"]["remediation"].startswith("Add HistoricalRecords()")
    assert ran.json()[0]["key"] != "superusers"  # failing (and never run) first
    assert officer_api.post("compliance/monitors/run", {"keys": ["nope"]}).status_code == 422


def test_processing_records_list_each_declared_field(officer_api):
    response = officer_api.get("compliance/processing-records")
    assert response.status_code == 200
    rows = {(r["model"], r["field"]): r for r in response.json()}
    email = rows[("support.Ticket", "requester_email")]
    assert email == {
        "app": "support",
        "model": "support.Ticket",
        "field": "requester_email",
        "field_label": "requester email",
        "purpose": "Answer the requester's support request",
        "legal_basis": "Contract (Art. 6(1)(b))",
        "retention": "Until the account is deleted; then anonymised for statistics",
        "has_history": True,
    }
    assert rows[("userflows.Invoice", "bill_to_name")]["has_history"] is False


ENDPOINTS = [
    ("get", "compliance/requirements", None),
    ("post", "compliance/segment-checks", SEGMENT),
    ("post", "compliance/security-assessments", FEATURE),
    ("post", "compliance/pias", PIA),
    ("get", "compliance/pias/{pia}", None),
    ("post", "compliance/pias/{pia}/submit", None),
    ("post", "compliance/pias/{pia}/review", {"decision": "approved", "note": "ok"}),
    ("post", "compliance/pattern-validations", PATTERN),
    ("get", "compliance/monitors", None),
    ("post", "compliance/monitors/run", {}),
    ("get", "compliance/processing-records", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_customers_get_403_on_every_endpoint_and_nothing_changes(
    api, officer_api, method, path, body
):
    pia = officer_api.post("compliance/pias", PIA).json()["id"]
    counts = (
        CheckRun.objects.count(),
        SecurityAssessment.objects.count(),
        PrivacyImpactAssessment.objects.count(),
    )
    url = path.format(pia=pia)
    response = api.get(url) if method == "get" else api.post(url, body)
    assert response.status_code in (403, 404)
    assert response.status_code == 403  # staff endpoints: a customer is refused outright
    assert (
        CheckRun.objects.count(),
        SecurityAssessment.objects.count(),
        PrivacyImpactAssessment.objects.count(),
    ) == counts
    assert PrivacyImpactAssessment.objects.get(pk=pia).status == "draft"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_staff_without_the_permission_get_403(officer_api, method, path, body):
    pia = officer_api.post("compliance/pias", PIA).json()["id"]
    bare = ApiClient(token_for(staff_in("support_l1")))
    url = path.format(pia=pia)
    response = bare.get(url) if method == "get" else bare.post(url, body)
    assert response.status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_anonymous_gets_401(anon_api, method, path, body):
    url = path.format(pia=1)
    response = anon_api.get(url) if method == "get" else anon_api.post(url, body)
    assert response.status_code == 401
