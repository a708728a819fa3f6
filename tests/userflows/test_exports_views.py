import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import StaffFactory
from tests.userflows.factories import ExportRequestFactory
from userflows.models import ExportRequest

TODAY = timezone.localdate()
PAGE = "/account/exports/"


@pytest.fixture
def customer(client, account):
    client.force_login(account.user)
    return client


def form(**changes):
    return {
        "format": "csv",
        "data_types": ["campaigns", "account"],
        "date_from": str(TODAY - dt.timedelta(days=10)),
        "date_to": str(TODAY),
        **changes,
    }


def test_the_page_shows_the_form_the_menu_and_a_live_progress_bar(customer, account):
    running = ExportRequestFactory(
        account=account, status=ExportRequest.Status.PROCESSING, rows_done=250, rows_total=1000
    )

    response = customer.get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="data_types" value="analytics"' in html
    assert f'data-export-id="{running.pk}"' in html and 'data-active="1"' in html
    assert 'value="25"' in html and "250 of 1,000 rows" in html
    assert "userflows/exports.js" in html
    for label in ("Exports", "Billing", "Delete account"):
        assert f">{label}</a>" in html


def test_submitting_queues_an_export_that_then_offers_a_download(
    customer, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = customer.post(PAGE, form())

    assert response.status_code == 302
    export = ExportRequest.objects.get(account=account)
    assert export.status == ExportRequest.Status.COMPLETED
    page = customer.get(PAGE).content.decode()
    assert "Download ZIP" in page and f"/api/v1/exports/{export.pk}/download?token=" in page


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data_types": []}, "Choose at least one kind of data."),
        (
            {"date_from": str(TODAY), "date_to": str(TODAY - dt.timedelta(days=2))},
            "The end date must be on or after the start date.",
        ),
        ({"format": "exe"}, "Choose one of the formats listed."),
        ({"date_from": "2000-02-31"}, "Enter a valid date."),
    ],
)
def test_invalid_submissions_show_errors_and_store_nothing(customer, changes, message):
    response = customer.post(PAGE, form(**changes))

    assert response.status_code == 422
    assert message in response.content.decode()
    assert not ExportRequest.objects.exists()


def test_a_conflict_is_shown_on_the_form(customer, account):
    ExportRequestFactory(account=account, status=ExportRequest.Status.PENDING)

    response = customer.post(PAGE, form())

    assert response.status_code == 409
    assert "already being prepared" in response.content.decode()
    assert ExportRequest.objects.count() == 1


def test_failed_exports_show_their_reason(customer, account):
    ExportRequestFactory(
        account=account,
        status=ExportRequest.Status.FAILED,
        error="The export stopped because of an unexpected error.",
    )

    html = customer.get(PAGE).content.decode()

    assert "The export stopped because of an unexpected error." in html


def test_the_status_endpoint_reports_progress(customer, account):
    export = ExportRequestFactory(
        account=account, status=ExportRequest.Status.PROCESSING, rows_done=30, rows_total=120
    )

    data = customer.get(reverse("userflows:export_status", args=[export.pk])).json()

    assert data["status"] == "processing" and data["active"] is True
    assert (data["percent"], data["rows_done"], data["rows_total"]) == (25, 30, 120)
    assert data["file_url"] is None


def test_another_tenants_export_is_404_on_the_status_endpoint(customer, other_account):
    export = ExportRequestFactory(account=other_account)

    response = customer.get(reverse("userflows:export_status", args=[export.pk]))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_pages_need_a_signed_in_customer(client, account):
    export = ExportRequestFactory(account=account)
    anonymous = client.get(reverse("userflows:export_status", args=[export.pk]))
    client.force_login(StaffFactory())
    staff = client.get(PAGE)

    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert staff.status_code == 403


def test_huge_ids_are_not_routed(customer):
    assert customer.get("/account/exports/1234567890123456789012/status/").status_code == 404


def test_the_list_names_data_types_by_their_labels(customer, account):
    ExportRequestFactory(account=account, data_types=["analytics", "reports"])

    html = customer.get(PAGE).content.decode()

    assert "Analytics (daily metrics), Reports (per-campaign summaries with ROI and ROAS)" in html
    assert "analytics, reports" not in html


def test_a_finished_export_tells_the_poller_its_size_and_expiry(
    customer, account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer.post(PAGE, form())
    export = ExportRequest.objects.get(account=account)
    export.expires_at = dt.datetime(2031, 3, 9, 12, 0, tzinfo=dt.UTC)
    export.size_bytes = 2048
    export.save()

    data = customer.get(reverse("userflows:export_status", args=[export.pk])).json()

    assert data["status"] == "completed" and data["file_url"]
    assert data["size_label"] == "2.0\xa0KB"
    assert data["expires_label"] == "Mar 9, 2031"
    assert data["data_type_labels"] == ["Campaigns", "Account profile"]
    html = customer.get(PAGE).content.decode()
    assert "2.0\xa0KB · until Mar 9, 2031" in html
