"""Compliance in admin: the catalogue (rule edits in history), DPIA sign-off buttons, the
dashboard (failing first with remediation), the record of processing (page and CSV), the
audit trail; who may see what; fixed query counts."""

import csv
import io
import re

import pytest
from django.urls import reverse

from compliance import services
from compliance.models import CheckRun, Monitor, PrivacyImpactAssessment, Requirement
from tests.factories import staff_in

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


@pytest.fixture
def officer():
    return staff_in("compliance")


@pytest.fixture
def officer_client(client, officer):
    client.force_login(officer)
    return client


def draft(author=None):
    return services.conduct_privacy_impact_assessment(
        feature_name="Listener surveys",
        data_types_collected=["email", "health_interests"],
        data_retention_period=180,
        data_sharing=[],
        user_consent_required=True,
        actor=author,
    )


def test_catalogue_lists_every_requirement_and_a_rule_edit_is_in_history(officer_client, officer):
    response = officer_client.get(reverse("admin:compliance_requirement_changelist"))
    assert response.status_code == 200
    assert "GDPR-5.1.c" in text(response) and "SOC2-A1.2" in text(response)
    requirement = Requirement.objects.get(code="GDPR-33")
    url = reverse("admin:compliance_requirement_change", args=[requirement.pk])
    form = {
        "title": requirement.title,
        "text": requirement.text,
        "severity": "critical",
        "rule": '{"op": "at_most", "key": "breach_notification_hours", "value": 48}',
        "remediation": requirement.remediation,
    }
    response = officer_client.post(url, form)
    assert response.status_code == 302
    requirement.refresh_from_db()
    assert requirement.rule == {"op": "at_most", "key": "breach_notification_hours", "value": 48}
    latest = requirement.history.latest("history_date")
    assert (latest.severity, latest.history_user_id) == ("critical", officer.pk)


def test_a_malformed_rule_is_shown_on_the_field_and_not_saved(officer_client):
    requirement = Requirement.objects.get(code="GDPR-33")
    url = reverse("admin:compliance_requirement_change", args=[requirement.pk])
    form = {
        "title": requirement.title,
        "text": requirement.text,
        "severity": requirement.severity,
        "rule": '{"op": "true", "key": "made_up"}',
        "remediation": requirement.remediation,
    }
    response = officer_client.post(url, form)
    assert response.status_code == 200
    assert "unknown metadata key" in text(response)
    requirement.refresh_from_db()
    assert requirement.rule == {"op": "at_most", "key": "breach_notification_hours", "value": 72}


def test_the_officer_approves_a_dpia_with_a_note(officer_client, officer):
    pia = draft(author=staff_in("operations"))
    services.submit_pia(pia_id=pia.pk, actor=pia.created_by)
    change = reverse("admin:compliance_privacyimpactassessment_change", args=[pia.pk])
    page = officer_client.get(change)
    assert page.status_code == 200
    assert "Art. 35(3)(b): special-category or criminal-offence data (health)" in text(page)
    approve = reverse("admin:compliance_privacyimpactassessment_approve_this", args=[pia.pk])
    assert officer_client.get(approve).status_code == 200
    missing = officer_client.post(approve, {"confirm": "yes", "note": ""})
    assert missing.status_code == 200
    pia.refresh_from_db()
    assert pia.status == "in_review"
    done = officer_client.post(
        approve, {"confirm": "yes", "note": "Consent and access limits suffice."}
    )
    assert done.status_code == 302
    pia.refresh_from_db()
    assert (pia.status, pia.reviewed_by, pia.review_note) == (
        "approved",
        officer,
        "Consent and access limits suffice.",
    )


def test_operations_may_draft_and_submit_but_not_approve(client):
    ops = staff_in("operations")
    client.force_login(ops)
    new = client.post(
        reverse("admin:compliance_privacyimpactassessment_new_pia"),
        {
            "feature_name": "Voice ID",
            "data_types_collected": "voiceprint, email",
            "data_retention_period": "30",
            "data_sharing": "",
        },
    )
    assert new.status_code == 302
    pia = PrivacyImpactAssessment.objects.get()
    assert (pia.data_types_collected, pia.dpia_required, pia.user_consent_required) == (
        ["voiceprint", "email"],
        True,
        False,
    )
    submit = reverse("admin:compliance_privacyimpactassessment_submit_this", args=[pia.pk])
    assert client.post(submit, {"confirm": "yes"}).status_code == 302
    pia.refresh_from_db()
    assert pia.status == "in_review"
    approve = reverse("admin:compliance_privacyimpactassessment_approve_this", args=[pia.pk])
    assert client.post(approve, {"confirm": "yes", "note": "mine"}).status_code == 403
    pia.refresh_from_db()
    assert pia.status == "in_review"


def test_the_new_dpia_form_shows_errors_on_their_fields(client):
    client.force_login(staff_in("operations"))
    response = client.post(
        reverse("admin:compliance_privacyimpactassessment_new_pia"),
        {"feature_name": "X", "data_types_collected": "Bad*Type", "data_retention_period": "-1"},
    )
    assert response.status_code == 200
    assert PrivacyImpactAssessment.objects.count() == 0


def test_dashboard_shows_failing_monitors_first_with_remediation(officer_client):
    services.run_monitors(keys=["superusers", "personal-data-history"])
    response = officer_client.get(reverse("admin:compliance_monitor_dashboard"))
    assert response.status_code == 200
    body = response.content.decode()
    failing = body[body.index('id="failing-monitors"') : body.index('id="passing-monitors"')]
    assert "Every personal-data model keeps history" in failing
    assert "Add HistoricalRecords() to each model listed" in failing
    assert "Superusers kept to a few" not in failing
    assert "Superusers kept to a few" in body[body.index('id="passing-monitors"') :]
    assert "GDPR" in text(response) and "SOC 2" in text(response)


def test_run_monitors_from_admin(officer_client):
    url = reverse("admin:compliance_monitor_run_all")
    assert officer_client.get(url).status_code == 200
    assert Monitor.objects.filter(checked_at__isnull=False).count() == 0
    assert officer_client.post(url, {"confirm": "yes"}).status_code == 302
    assert Monitor.objects.filter(checked_at__isnull=False).count() == 11


def test_record_of_processing_page_and_csv(officer_client):
    page = officer_client.get(reverse("admin:compliance_monitor_processing"))
    assert page.status_code == 200
    assert "support.Ticket" in text(page)
    response = officer_client.get(reverse("admin:compliance_monitor_processing_csv"))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "app", "model", "field", "field_label", "purpose", "legal_basis", "retention",
        "has_history",
    ]  # fmt: skip
    assert [
        "userflows", "userflows.PaymentMethod", "last4", "last4", "Charge the subscription",
        "Contract (Art. 6(1)(b))", "Until replaced or the account is deleted", "True",
    ] in rows  # fmt: skip


def test_audit_trail_filters_and_pages(officer_client, officer):
    requirement = Requirement.objects.get(code="GDPR-7")
    requirement._history_user = officer
    requirement.title = "Consent, demonstrably"
    requirement.save()
    url = reverse("admin:compliance_monitor_audit_trail")
    response = officer_client.get(
        url, {"model": "compliance.Requirement", "user": officer.username}
    )
    assert response.status_code == 200
    assert "Conditions for consent → Consent, demonstrably" in text(response)
    unknown = officer_client.get(url, {"user": "nobody-here"})
    assert "No user with that username." in text(unknown)
    bad = officer_client.get(url, {"date_from": "0001-01-01"})
    assert bad.status_code == 200
    assert "Use a date between 1900 and 9998." in text(bad)
    from tests.compliance.test_audit import fill

    fill(60, objects=5)
    first = officer_client.get(url, {"model": "compliance.Requirement"})
    html = first.content.decode()
    assert html.count('<tr class="align-top border-t') == 50
    older = re.search(r'id="older-page" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    second = officer_client.get(url + older).content.decode()
    assert second.count('<tr class="align-top border-t') == 10
    assert 'id="older-page"' not in second
    cursor_page = officer_client.get(url, {"cursor": "garbage"})
    assert cursor_page.status_code == 200
    assert "The page cursor is not valid." in text(cursor_page)


@pytest.mark.parametrize("rows", [10, 1000])
def test_audit_trail_page_costs_the_same_whatever_the_rows(
    officer_client, django_assert_max_num_queries, rows
):
    from tests.compliance.test_audit import fill

    fill(rows, objects=5)
    with django_assert_max_num_queries(60):
        response = officer_client.get(reverse("admin:compliance_monitor_audit_trail"))
    assert response.status_code == 200


@pytest.mark.parametrize("rows", [1, 50])
def test_check_run_changelist_costs_a_fixed_number_of_queries(
    officer_client, django_assert_max_num_queries, rows
):
    for i in range(rows):
        CheckRun.objects.create(
            kind="segment", subject_name=f"S{i}", catalogue_version="x", passed=True
        )
    with django_assert_max_num_queries(12):
        response = officer_client.get(reverse("admin:compliance_checkrun_changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "admin:compliance_monitor_dashboard",
        "admin:compliance_monitor_audit_trail",
        "admin:compliance_monitor_processing",
        "admin:compliance_monitor_processing_csv",
        "admin:compliance_requirement_changelist",
        "admin:compliance_privacyimpactassessment_changelist",
    ],
)
def test_other_staff_are_refused_and_customers_are_sent_to_sign_in(client, account, name):
    client.force_login(staff_in("support_l1"))
    assert client.get(reverse(name)).status_code == 403
    client.force_login(account.user)
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_operations_see_the_dashboard_but_not_the_audit_trail(client):
    client.force_login(staff_in("operations"))
    assert client.get(reverse("admin:compliance_monitor_dashboard")).status_code == 200
    assert client.get(reverse("admin:compliance_monitor_audit_trail")).status_code == 403


def test_sign_off_buttons_show_only_where_the_move_is_allowed(officer_client):
    pia = draft(author=staff_in("operations"))
    change = reverse("admin:compliance_privacyimpactassessment_change", args=[pia.pk])
    submit = reverse("admin:compliance_privacyimpactassessment_submit_this", args=[pia.pk])
    approve = reverse("admin:compliance_privacyimpactassessment_approve_this", args=[pia.pk])
    html = officer_client.get(change).content.decode()
    assert submit in html and approve not in html
    services.submit_pia(pia_id=pia.pk, actor=pia.created_by)
    html = officer_client.get(change).content.decode()
    assert approve in html and submit not in html
