"""validate_segment_compliance: the catalogue as data, each rule on hand-made metadata
(passing and failing), "not evidenced" when the deciding key is missing, and standards."""

import pytest
from django.core.exceptions import ValidationError

from compliance import services
from compliance.models import CheckRun, ComplianceCheck, Requirement
from opsplatform.errors import InvalidInput
from tests.factories import staff_in

pytestmark = pytest.mark.django_db

GDPR = [
    "GDPR-5.1.c", "GDPR-5.1.e", "GDPR-6", "GDPR-7", "GDPR-12", "GDPR-15", "GDPR-16",
    "GDPR-17", "GDPR-18", "GDPR-20", "GDPR-21", "GDPR-25", "GDPR-30", "GDPR-32", "GDPR-33",
    "GDPR-35", "GDPR-44",
]  # fmt: skip
CCPA = [
    "CCPA-1798.100", "CCPA-1798.105", "CCPA-1798.110", "CCPA-1798.120", "CCPA-1798.135",
    "CCPA-1798.150",
]  # fmt: skip
SOC2 = [
    "SOC2-CC6.1", "SOC2-CC6.6", "SOC2-CC6.7", "SOC2-CC7.2", "SOC2-CC7.3", "SOC2-CC8.1",
    "SOC2-A1.2",
]  # fmt: skip

# Metadata that satisfies every requirement of the three standards.
ALL_GOOD = {
    "data_collected": {"personal": True, "excessive": False},
    "consent_obtained": True,
    "data_subject_rights_supported": [
        "access", "rectification", "erasure", "restriction", "portability", "objection",
    ],
    "data_retention_period": 180,
    "dsr_response_days": 30,
    "privacy_by_default": True,
    "records_of_processing": True,
    "breach_notification_hours": 72,
    "dpia_completed": True,
    "international_transfers": False,
    "encryption_at_rest": True,
    "encryption_in_transit": True,
    "privacy_notice_provided": True,
    "sells_personal_information": False,
    "external_access_restricted": True,
    "security_monitoring": True,
    "incident_response_plan": True,
    "change_management": True,
    "backups_tested": True,
}  # fmt: skip


def check(meta, standards=("gdpr", "ccpa", "soc2")):
    run = services.validate_segment_compliance(
        segment_name="Segment", segment_metadata=meta, applicable_standards=list(standards)
    )
    return run, {c.requirement_code: c for c in run.checks.all()}


def test_the_catalogue_holds_every_code_of_the_issue_with_its_fields():
    assert list(Requirement.objects.values_list("code", flat=True)) == GDPR + CCPA + SOC2
    gdpr32 = Requirement.objects.get(code="GDPR-32")
    assert gdpr32.standard == "gdpr"
    assert gdpr32.severity == "critical"
    assert gdpr32.catalogue_version == "2026.11-1"
    assert gdpr32.text.startswith("Art. 32")
    assert gdpr32.rule == {
        "op": "all",
        "rules": [
            {"op": "true", "key": "encryption_at_rest"},
            {"op": "true", "key": "encryption_in_transit"},
        ],
    }
    assert gdpr32.remediation


def test_everything_declared_passes_one_check_per_requirement():
    run, checks = check(ALL_GOOD)
    assert run.passed is True
    assert list(checks) == GDPR + CCPA + SOC2
    assert all(c.outcome == "passed" and c.passed for c in checks.values())
    assert all(c.remediation == "" for c in checks.values())
    assert checks["GDPR-32"].finding == "encryption_at_rest is true; encryption_in_transit is true"


def test_standards_not_asked_for_produce_no_checks():
    run, checks = check(ALL_GOOD, standards=["soc2"])
    assert list(checks) == SOC2
    assert run.standards == ["soc2"]


def test_the_seed_segment_checks_gdpr_and_soc2():
    meta = {
        "data_collected": {"personal": True, "excessive": False},
        "consent_obtained": True,
        "data_subject_rights_supported": ["access", "rectification", "erasure"],
        "encryption_at_rest": True,
        "encryption_in_transit": True,
    }
    run, checks = check(meta, standards=["GDPR", "SOC2"])
    assert list(checks) == GDPR + SOC2
    outcomes = {code: c.outcome for code, c in checks.items()}
    assert outcomes["GDPR-5.1.c"] == "passed"
    assert outcomes["GDPR-6"] == outcomes["GDPR-7"] == "passed"
    assert [outcomes[c] for c in ("GDPR-15", "GDPR-16", "GDPR-17")] == ["passed"] * 3
    assert [outcomes[c] for c in ("GDPR-18", "GDPR-20", "GDPR-21")] == ["failed"] * 3
    assert outcomes["GDPR-32"] == outcomes["SOC2-CC6.1"] == outcomes["SOC2-CC6.7"] == "passed"
    assert outcomes["GDPR-33"] == "not_evidenced"
    assert run.passed is False


@pytest.mark.parametrize(
    ("change", "code", "finding"),
    [
        (
            {"data_collected": {"excessive": True}},
            "GDPR-5.1.c",
            "data_collected.excessive is true (must be false)",
        ),
        ({"consent_obtained": False}, "GDPR-7", "consent_obtained is false (must be true)"),
        (
            {"encryption_at_rest": False},
            "GDPR-32",
            "encryption_at_rest is false (must be true)",
        ),
        (
            {"encryption_at_rest": False},
            "SOC2-CC6.1",
            "encryption_at_rest is false (must be true)",
        ),
        (
            {"encryption_in_transit": False},
            "GDPR-32",
            "encryption_in_transit is false (must be true)",
        ),
        (
            {"encryption_in_transit": False},
            "SOC2-CC6.7",
            "encryption_in_transit is false (must be true)",
        ),
        (
            {"encryption_in_transit": False},
            "CCPA-1798.150",
            "encryption_in_transit is false (must be true)",
        ),
        (
            {"data_retention_period": 400},
            "GDPR-5.1.e",
            "data_retention_period is 400 (must be at most 365)",
        ),
        (
            {"data_retention_period": 0},
            "GDPR-5.1.e",
            "data_retention_period is 0 (must be at least 1)",
        ),
        ({"dsr_response_days": 45}, "GDPR-12", "dsr_response_days is 45 (must be at most 30)"),
        (
            {"breach_notification_hours": 96},
            "GDPR-33",
            "breach_notification_hours is 96 (must be at most 72)",
        ),
        ({"privacy_by_default": False}, "GDPR-25", "privacy_by_default is false (must be true)"),
        (
            {"records_of_processing": False},
            "GDPR-30",
            "records_of_processing is false (must be true)",
        ),
        ({"dpia_completed": False}, "GDPR-35", "dpia_completed is false (must be true)"),
        (
            {"international_transfers": True, "transfer_safeguards": False},
            "GDPR-44",
            "international_transfers is true (must be false); "
            "transfer_safeguards is false (must be true)",
        ),
        (
            {"privacy_notice_provided": False},
            "CCPA-1798.100",
            "privacy_notice_provided is false (must be true)",
        ),
        (
            {"external_access_restricted": False},
            "SOC2-CC6.6",
            "external_access_restricted is false (must be true)",
        ),
        (
            {"security_monitoring": False},
            "SOC2-CC7.2",
            "security_monitoring is false (must be true)",
        ),
        (
            {"incident_response_plan": False},
            "SOC2-CC7.3",
            "incident_response_plan is false (must be true)",
        ),
        (
            {"change_management": False},
            "SOC2-CC8.1",
            "change_management is false (must be true)",
        ),
        ({"backups_tested": False}, "SOC2-A1.2", "backups_tested is false (must be true)"),
    ],
)
def test_each_rule_fails_on_the_metadata_that_breaks_it(change, code, finding):
    meta = {**ALL_GOOD, **change}
    if "data_collected" in change:
        meta["data_collected"] = {"personal": True, **change["data_collected"]}
    run, checks = check(meta)
    assert checks[code].outcome == "failed"
    assert checks[code].passed is False
    assert checks[code].finding == finding
    assert checks[code].remediation == Requirement.objects.get(code=code).remediation
    assert run.passed is False


@pytest.mark.parametrize(
    ("right", "codes"),
    [
        ("access", ["GDPR-15", "CCPA-1798.110"]),
        ("rectification", ["GDPR-16"]),
        ("erasure", ["GDPR-17", "CCPA-1798.105"]),
        ("restriction", ["GDPR-18"]),
        ("portability", ["GDPR-20"]),
        ("objection", ["GDPR-21"]),
    ],
)
def test_each_missing_right_fails_its_article(right, codes):
    rights = [r for r in ALL_GOOD["data_subject_rights_supported"] if r != right]
    _, checks = check({**ALL_GOOD, "data_subject_rights_supported": rights})
    failed = sorted(k for k, c in checks.items() if c.outcome != "passed")
    assert failed == sorted(codes)
    assert checks[codes[0]].finding.startswith(
        f"data_subject_rights_supported does not include {right}"
    )


def test_lawful_basis_passes_on_another_documented_basis_without_consent():
    _, checks = check({**ALL_GOOD, "consent_obtained": False, "legal_basis": "contract"})
    assert checks["GDPR-6"].outcome == "passed"
    assert checks["GDPR-6"].finding == "legal_basis is contract"
    assert checks["GDPR-7"].outcome == "failed"


def test_no_consent_and_no_basis_is_not_evidenced_for_lawful_basis():
    _, checks = check({**ALL_GOOD, "consent_obtained": False})
    assert checks["GDPR-6"].outcome == "not_evidenced"
    assert checks["GDPR-6"].passed is False
    assert "consent_obtained is false" in checks["GDPR-6"].finding
    assert "legal_basis" in checks["GDPR-6"].finding


def test_ccpa_sale_rules_pass_when_selling_with_opt_out_and_link():
    meta = {
        **ALL_GOOD,
        "sells_personal_information": True,
        "do_not_sell_link": True,
        "data_subject_rights_supported": [
            *ALL_GOOD["data_subject_rights_supported"],
            "opt_out_of_sale",
        ],
    }
    _, checks = check(meta, standards=["ccpa"])
    assert checks["CCPA-1798.120"].outcome == "passed"
    assert checks["CCPA-1798.135"].outcome == "passed"
    _, checks = check({**ALL_GOOD, "sells_personal_information": True}, standards=["ccpa"])
    assert checks["CCPA-1798.120"].outcome == "failed"  # the rights list lacks the opt-out
    assert checks["CCPA-1798.135"].outcome == "not_evidenced"  # the link is not stated
    assert "do_not_sell_link" in checks["CCPA-1798.135"].finding


@pytest.mark.parametrize(
    ("key", "codes"),
    [
        ("encryption_at_rest", ["GDPR-32", "SOC2-CC6.1"]),
        ("encryption_in_transit", ["GDPR-32", "SOC2-CC6.7", "CCPA-1798.150"]),
        ("consent_obtained", ["GDPR-7"]),
        ("dsr_response_days", ["GDPR-12"]),
        ("backups_tested", ["SOC2-A1.2"]),
    ],
)
def test_a_missing_key_is_not_evidenced_and_names_the_key(key, codes):
    meta = {k: v for k, v in ALL_GOOD.items() if k != key}
    _, checks = check(meta)
    for code in codes:
        assert checks[code].outcome == "not_evidenced"
        assert checks[code].passed is False
        assert key in checks[code].finding
        assert checks[code].finding.startswith("Not evidenced")


def test_empty_metadata_evidences_nothing():
    run, checks = check({}, standards=["soc2"])
    assert {c.outcome for c in checks.values()} == {"not_evidenced"}
    assert run.passed is False


@pytest.mark.parametrize(
    ("meta", "standards", "field"),
    [
        ({"encryption_at_rest": "yes"}, ["gdpr"], "segment_metadata.encryption_at_rest"),
        ({"encryption_at_rest": 1}, ["gdpr"], "segment_metadata.encryption_at_rest"),
        ({"encryptoin_at_rest": True}, ["gdpr"], "segment_metadata.encryptoin_at_rest"),
        ({"data_subject_rights_supported": ["telepathy"]}, ["gdpr"],
         "segment_metadata.data_subject_rights_supported.0"),
        ({"data_collected": {"excessive": "no"}}, ["gdpr"],
         "segment_metadata.data_collected.excessive"),
        ({"dsr_response_days": -1}, ["gdpr"], "segment_metadata.dsr_response_days"),
        ({}, ["hipaa"], "applicable_standards.0"),
        ({}, [], "applicable_standards"),
        ("not an object", ["gdpr"], "segment_metadata"),
    ],
)  # fmt: skip
def test_bad_metadata_is_refused_with_the_field_and_nothing_is_stored(meta, standards, field):
    with pytest.raises(InvalidInput) as caught:
        services.validate_segment_compliance(
            segment_name="S", segment_metadata=meta, applicable_standards=standards
        )
    assert caught.value.field == field
    assert CheckRun.objects.count() == 0
    assert ComplianceCheck.objects.count() == 0


def test_the_run_records_who_and_the_catalogue_version():
    user = staff_in("compliance")
    run = services.validate_segment_compliance(
        segment_name="  Enterprise  ",
        segment_metadata={"consent_obtained": True},
        applicable_standards=["gdpr"],
        actor=user,
    )
    run.refresh_from_db()
    assert run.subject_name == "Enterprise"
    assert run.created_by == user
    assert run.catalogue_version == "2026.11-1"
    assert run.metadata == {"consent_obtained": True}


def test_editing_a_rule_changes_later_checks_and_is_kept_in_history():
    requirement = Requirement.objects.get(code="GDPR-12")
    requirement.rule = {"op": "at_most", "key": "dsr_response_days", "value": 20}
    requirement.full_clean()
    requirement.save()
    _, checks = check({**ALL_GOOD, "dsr_response_days": 25}, standards=["gdpr"])
    assert checks["GDPR-12"].finding == "dsr_response_days is 25 (must be at most 20)"
    rules = [h.rule for h in requirement.history.order_by("history_date")]
    assert rules[-1] == {"op": "at_most", "key": "dsr_response_days", "value": 20}


@pytest.mark.parametrize(
    "rule",
    [
        {"op": "maybe", "key": "consent_obtained"},
        {"op": "true", "key": "no_such_key"},
        {"op": "true"},
        {"op": "at_most", "key": "dsr_response_days", "value": "30"},
        {"op": "all", "rules": []},
        {"op": "contains", "key": "data_subject_rights_supported", "value": 3},
        "consent_obtained",
    ],
)
def test_a_malformed_rule_cannot_be_saved(rule):
    requirement = Requirement.objects.get(code="GDPR-7")
    requirement.rule = rule
    with pytest.raises(ValidationError) as caught:
        requirement.full_clean()
    assert "rule" in caught.value.message_dict


def test_update_requirement_records_the_editor_and_refuses_bad_rules():
    officer = staff_in("compliance")
    requirement = Requirement.objects.get(code="SOC2-A1.2")
    services.update_requirement(requirement=requirement, actor=officer, severity="high")
    latest = requirement.history.latest("history_date")
    assert (latest.severity, latest.history_user_id) == ("high", officer.pk)
    with pytest.raises(InvalidInput) as caught:
        services.update_requirement(requirement=requirement, actor=officer, rule={"op": "x"})
    assert caught.value.field == "rule"
    with pytest.raises(InvalidInput) as caught:
        services.update_requirement(requirement=requirement, actor=officer, code="SOC2-X")
    assert caught.value.field == "code"
    requirement.refresh_from_db()
    assert (requirement.code, requirement.rule) == (
        "SOC2-A1.2",
        {"op": "true", "key": "backups_tested"},
    )
