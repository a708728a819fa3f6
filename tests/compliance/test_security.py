"""assess_security: each vulnerability mapping (OWASP, CWE, severity), the level as the
highest risk found, stated-false versus unstated controls, and what is stored."""

import pytest

from compliance import services
from compliance.models import SecurityAssessment
from opsplatform.errors import InvalidInput

pytestmark = pytest.mark.django_db

SAFE = {
    "authentication_required": True,
    "sensitive_data_handled": True,
    "encryption_implemented": True,
    "sql_queries": True,
    "parameterized_queries": True,
    "user_input_accepted": True,
    "input_validation": True,
}


def assess(meta):
    return services.assess_security(feature_name="Feature", feature_metadata=meta)


def test_the_seed_feature_has_no_vulnerability():
    a = services.assess_security(
        feature_name="Data Export",
        feature_metadata={
            "authentication_required": True,
            "sensitive_data_handled": True,
            "encryption_implemented": True,
            "sql_queries": False,
            "user_input_accepted": True,
            "input_validation": True,
        },
    )
    assert a.security_level == "none"
    assert a.vulnerabilities == []
    assert a.recommendations == []
    assert SecurityAssessment.objects.get().feature_name == "Data Export"


@pytest.mark.parametrize(
    ("change", "cwe", "owasp", "severity", "level"),
    [
        (
            {"input_validation": False, "parameterized_queries": False},
            "CWE-89",
            "A03:2021",
            "high",
            "high",
        ),
        ({"input_validation": False}, "CWE-20", "A03:2021", "medium", "medium"),
        ({"authentication_required": False}, "CWE-306", "A07:2021", "critical", "critical"),
        ({"encryption_implemented": False}, "CWE-311", "A02:2021", "high", "high"),
        ({"rate_limiting": False}, "CWE-307", "A07:2021", "medium", "medium"),
        ({"audit_logging": False}, "CWE-778", "A09:2021", "low", "low"),
    ],
)
def test_each_mapping(change, cwe, owasp, severity, level):
    a = assess({**SAFE, **change})
    found = {v["cwe"]: v for v in a.vulnerabilities}
    assert cwe in found
    assert found[cwe]["owasp"] == owasp
    assert found[cwe]["severity"] == severity
    assert found[cwe]["title"]
    assert found[cwe]["remediation"]
    assert a.security_level == level
    assert any(r.startswith(f"{cwe}: ") for r in a.recommendations)


def test_sql_built_from_unvalidated_input_is_injection_and_input_validation():
    a = assess({**SAFE, "input_validation": False, "parameterized_queries": False})
    assert sorted(v["cwe"] for v in a.vulnerabilities) == ["CWE-20", "CWE-89"]
    assert a.security_level == "high"


def test_parameterised_queries_prevent_the_injection_finding_but_not_cwe_20():
    a = assess({**SAFE, "input_validation": False})
    assert [v["cwe"] for v in a.vulnerabilities] == ["CWE-20"]


def test_no_sql_means_no_injection():
    a = assess(
        {**SAFE, "sql_queries": False, "input_validation": False, "parameterized_queries": False}
    )
    assert [v["cwe"] for v in a.vulnerabilities] == ["CWE-20"]


def test_an_unstated_control_counts_as_absent_when_its_exposure_is_stated():
    a = assess({"sensitive_data_handled": True, "user_input_accepted": False, "sql_queries": False})
    found = {v["cwe"]: v for v in a.vulnerabilities}
    assert sorted(found) == ["CWE-306", "CWE-311"]
    assert "authentication_required is not stated" in found["CWE-306"]["finding"]
    assert a.security_level == "critical"


def test_unstated_exposures_are_listed_not_guessed():
    a = assess({"authentication_required": True})
    assert a.vulnerabilities == []
    assert a.security_level == "none"
    assert a.unanswered == ["sensitive_data_handled", "user_input_accepted", "sql_queries"]
    assert "State sql_queries (true or false) so the assessment can cover it." in a.recommendations


def test_the_level_is_the_highest_found():
    a = assess(
        {
            **SAFE,
            "authentication_required": False,
            "audit_logging": False,
            "input_validation": False,
        }
    )
    assert sorted(v["severity"] for v in a.vulnerabilities) == ["critical", "low", "medium"]
    assert a.security_level == "critical"


@pytest.mark.parametrize(
    ("meta", "field"),
    [
        ({"sql_queries": "false"}, "feature_metadata.sql_queries"),
        ({"firewall": True}, "feature_metadata.firewall"),
        ([], "feature_metadata"),
    ],
)
def test_bad_metadata_is_refused(meta, field):
    with pytest.raises(InvalidInput) as caught:
        assess(meta)
    assert caught.value.field == field
    assert SecurityAssessment.objects.count() == 0
