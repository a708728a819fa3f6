"""Every database constraint answers in the page's words: no admin form or page shows
"Constraint “ticket_has_requester” is violated." or any other identifier."""

import re

import pytest
from django.apps import apps
from django.db.models import CheckConstraint, UniqueConstraint

PROJECT_APPS = {
    "opsplatform",
    "userflows",
    "support",
    "studies",
    "scoring",
    "deployments",
    "compliance",
}
# A snake_case identifier (field, column or constraint name) anywhere in a message.
IDENTIFIER = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")


def project_models():
    return [
        model
        for model in apps.get_models()
        if model.__module__.split(".")[0] in PROJECT_APPS
        and not model.__name__.startswith("Historical")
    ]


def all_constraints():
    return [
        (model, constraint)
        for model in project_models()
        for constraint in model._meta.constraints
        if isinstance(constraint, CheckConstraint | UniqueConstraint)
    ]


def test_the_walk_finds_the_constraints_of_every_app():
    found = {(model._meta.app_label, c.name) for model, c in all_constraints()}
    # A handful written out by hand: one per app, so a change to the walk cannot go quiet.
    for expected in [
        ("opsplatform", "campaign_ends_after_start"),
        ("userflows", "export_range_in_order"),
        ("support", "ticket_has_requester"),
        ("studies", "study_period_ends_after_start"),
        ("scoring", "scoring_adoption_0_1"),
        ("deployments", "deployment_one_live"),
        ("deployments", "health_factor_weight_gte_0"),
        ("deployments", "one_active_freeze_per_source_kpi"),
    ]:
        assert expected in found
    assert len(found) == 33


@pytest.mark.parametrize(
    "model,constraint",
    all_constraints(),
    ids=lambda value: getattr(value, "name", getattr(value, "__name__", "")),
)
def test_every_constraint_has_a_readable_message(model, constraint):
    message = constraint.get_violation_error_message()
    assert constraint.violation_error_message != constraint.default_violation_error_message
    assert constraint.name not in message
    assert not IDENTIFIER.findall(message), message
    assert "Constraint" not in message
    assert message[0].isupper() and message.endswith(".")


def test_unique_fields_name_their_label_not_their_column():
    for model in project_models():
        instance = model()
        for field in model._meta.fields:
            if not field.unique or field.primary_key:
                continue
            error = instance.unique_error_message(model, [field.name])
            text = error.message % error.params
            assert not IDENTIFIER.findall(text), (model, text)


def test_messages_match_the_pages_wording():
    def message(label, name):
        model = apps.get_model(label)
        return next(c for c in model._meta.constraints if c.name == name).violation_error_message

    assert message("opsplatform.Campaign", "campaign_ends_after_start") == (
        "The end date must be on or after the start date."
    )
    assert message("support.Ticket", "ticket_has_requester") == (
        "A ticket needs a requester: choose an account or enter the requester's email."
    )
    assert message("support.Ticket", "ticket_level_1_to_4") == (
        "The escalation level must be between 1 and 4."
    )
