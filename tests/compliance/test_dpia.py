"""conduct_privacy_impact_assessment and its sign-off: Art. 35 screening for each reason (and
not for ordinary data), the ICO steps' content, and the transitions spelled out: only the
compliance group approves or rejects, with a note, in history."""

import itertools

import pytest

from compliance import services
from compliance.models import PrivacyImpactAssessment
from opsplatform.errors import Conflict, Forbidden, InvalidInput
from tests.factories import staff_in

pytestmark = pytest.mark.django_db

STATES = ["draft", "in_review", "approved", "rejected"]
ALLOWED = {("draft", "in_review"), ("in_review", "approved"), ("in_review", "rejected")}


def pia(**overrides):
    args = {
        "feature_name": "Analytics Dashboard",
        "data_types_collected": ["email", "usage_data", "campaign_data"],
        "data_retention_period": 365,
        "data_sharing": ["analytics_provider"],
        "user_consent_required": True,
    }
    return services.conduct_privacy_impact_assessment(**{**args, **overrides})


def test_ordinary_data_needs_no_dpia_but_is_assessed():
    p = pia()
    assert p.dpia_required is False
    assert p.required_reasons == []
    assert p.status == "draft"
    assert [r["risk"] for r in p.risks] == [
        "Unauthorised access to the data (breach)",
        "Disclosure by recipients (analytics_provider)",
    ]
    breach = p.risks[0]
    assert (breach["likelihood"], breach["severity"], breach["score"], breach["level"]) == (
        "possible",
        "significant",
        4,
        "medium",
    )
    assert (breach["residual_score"], breach["residual_level"]) == (2, "low")
    assert p.residual_risk == "low"
    assert p.description["context"] == "Shared with analytics_provider."
    assert p.description["consult"] == ["data protection officer", "processor: analytics_provider"]
    assert [n["ok"] for n in p.necessity] == [True, True, True]


@pytest.mark.parametrize(
    ("data_type", "category"),
    [
        ("health_records", "health"),
        ("biometric_template", "biometric"),
        ("voiceprint", "biometric"),
        ("genetic_markers", "genetic"),
        ("ethnicity", "ethnicity"),
        ("religion", "religion"),
        ("sexual_orientation", "sexual orientation"),
        ("political_opinions", "political opinions"),
        ("criminal_records", "criminal records"),
    ],
)
def test_special_category_data_requires_a_dpia(data_type, category):
    p = pia(data_types_collected=["email", data_type])
    assert p.dpia_required is True
    assert p.required_reasons == [
        f"Art. 35(3)(b): special-category or criminal-offence data ({category})"
    ]
    special = next(r for r in p.risks if r["risk"].startswith("Processing special-category"))
    assert (special["score"], special["level"]) == (6, "high")
    assert special["residual_level"] == "medium"  # remote x severe = 3
    assert p.residual_risk == "medium"


def test_childrens_data_requires_a_dpia():
    p = pia(data_types_collected=["children_names"])
    assert p.dpia_required is True
    assert p.required_reasons == ["Art. 35(1) / EDPB criteria: children's data (children_names)"]


def test_systematic_monitoring_requires_a_dpia():
    p = pia(systematic_monitoring=True)
    assert p.required_reasons == ["Art. 35(3)(c): systematic monitoring"]


def test_automated_decisions_with_legal_effect_require_a_dpia():
    p = pia(automated_decisions=True)
    assert p.required_reasons == ["Art. 35(3)(a): automated decisions with legal or similar effect"]
    assert p.dpia_required is True


def test_long_retention_and_no_consent_add_their_risks():
    p = pia(data_retention_period=1095, user_consent_required=False, data_sharing=[])
    names = [r["risk"] for r in p.risks]
    assert "Data kept longer than needed" in names
    assert "Processing without a documented lawful basis" in names
    kept = p.risks[names.index("Data kept longer than needed")]
    assert (kept["likelihood"], kept["severity"], kept["score"]) == ("probable", "significant", 6)
    assert [n["ok"] for n in p.necessity] == [False, False, True]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data_retention_period": -1}, "data_retention_period"),
        ({"data_retention_period": "365"}, "data_retention_period"),
        ({"user_consent_required": "yes"}, "user_consent_required"),
        ({"data_types_collected": "email"}, "data_types_collected"),
        ({"data_types_collected": ["Bad\x00"]}, "data_types_collected.0"),
        ({"feature_name": ""}, "feature_name"),
    ],
)
def test_bad_arguments_are_refused(change, field):
    with pytest.raises(InvalidInput) as caught:
        pia(**change)
    assert caught.value.field == field
    assert PrivacyImpactAssessment.objects.count() == 0


# --- sign-off -----------------------------------------------------------------------------


def test_the_transition_table_is_exactly_the_sign_off():
    assert PrivacyImpactAssessment.STATUS_MACHINE.pairs() == ALLOWED


@pytest.fixture
def author():
    return staff_in("operations")


@pytest.fixture
def officer():
    return staff_in("compliance")


def at(status, author, officer):
    p = pia()
    if status == "draft":
        return p
    services.submit_pia(pia_id=p.pk, actor=author)
    if status in ("approved", "rejected"):
        services.review_pia(pia_id=p.pk, decision=status, note="ok", actor=officer)
    p.refresh_from_db()
    assert p.status == status
    return p


def move(p, to, *, author, officer):
    if to == "in_review":
        return services.submit_pia(pia_id=p.pk, actor=author)
    if to in ("approved", "rejected"):
        return services.review_pia(pia_id=p.pk, decision=to, note="Reviewed.", actor=officer)
    return p.STATUS_MACHINE.check(p, to)  # draft: no service reaches it; the table refuses


@pytest.mark.parametrize(("start", "to"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states(start, to, author, officer):
    p = at(start, author, officer)
    if (start, to) in ALLOWED:
        move(p, to, author=author, officer=officer)
        p.refresh_from_db()
        assert p.status == to
    else:
        with pytest.raises(Conflict):
            move(p, to, author=author, officer=officer)
        p.refresh_from_db()
        assert p.status == start


def test_approval_records_reviewer_note_and_history(author, officer):
    p = at("in_review", author, officer)
    services.review_pia(pia_id=p.pk, decision="approved", note="Measures suffice.", actor=officer)
    p.refresh_from_db()
    assert (p.status, p.reviewed_by, p.review_note) == ("approved", officer, "Measures suffice.")
    assert p.submitted_by == author
    assert p.submitted_at is not None and p.reviewed_at is not None
    rows = list(p.history.order_by("history_date").values_list("status", "history_user_id"))
    assert rows == [("draft", None), ("in_review", author.pk), ("approved", officer.pk)]
    assert p.history.latest("history_date").history_change_reason == "approved: Measures suffice."


@pytest.mark.parametrize(
    "reviewer",
    [
        lambda: staff_in("operations"),
        lambda: staff_in(is_superuser=True),  # a superuser outside the group may not sign off
        lambda: staff_in(),
    ],
)
@pytest.mark.parametrize("decision", ["approved", "rejected"])
def test_only_the_compliance_group_may_approve_or_reject(reviewer, decision, author, officer):
    p = at("in_review", author, officer)
    with pytest.raises(Forbidden):
        services.review_pia(pia_id=p.pk, decision=decision, note="No.", actor=reviewer())
    p.refresh_from_db()
    assert p.status == "in_review"
    assert p.history.count() == 2


def test_the_submitter_cannot_review_their_own_dpia(officer):
    p = pia()
    services.submit_pia(pia_id=p.pk, actor=officer)
    with pytest.raises(Conflict):
        services.review_pia(pia_id=p.pk, decision="approved", note="Fine.", actor=officer)
    p.refresh_from_db()
    assert p.status == "in_review"


@pytest.mark.parametrize(
    ("decision", "note", "field"), [("approved", "  ", "note"), ("maybe", "x", "decision")]
)
def test_a_review_needs_a_decision_and_a_note(decision, note, field, author, officer):
    p = at("in_review", author, officer)
    with pytest.raises(InvalidInput) as caught:
        services.review_pia(pia_id=p.pk, decision=decision, note=note, actor=officer)
    assert caught.value.field == field
    p.refresh_from_db()
    assert p.status == "in_review"
