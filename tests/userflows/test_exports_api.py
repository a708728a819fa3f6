import datetime as dt
import io
import zipfile
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from tests.conftest import ApiClient
from tests.factories import CampaignFactory, staff_in, token_for
from tests.userflows.factories import ExportRequestFactory
from userflows.models import ExportRequest

TODAY = timezone.localdate()


def body(**changes):
    return {
        "format": "csv",
        "data_types": ["campaigns", "account"],
        "date_from": str(TODAY - dt.timedelta(days=30)),
        "date_to": str(TODAY),
        **changes,
    }


@pytest.fixture
def post_export(api, django_capture_on_commit_callbacks):
    def post(**changes):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post("exports", body(**changes))

    return post


def test_requesting_an_export_answers_202_and_the_job_completes(api, account, post_export):
    CampaignFactory(account=account, starts_on=TODAY, ends_on=TODAY)

    response = post_export()

    assert response.status_code == 202
    created = response.json()
    assert created["status"] == "pending" and created["file_url"] is None
    detail = api.get(f"exports/{created['id']}").json()
    assert detail["status"] == "completed"
    assert detail["row_counts"] == {"campaigns": 1, "account": 1}
    assert detail["progress"] == {"rows_done": 2, "rows_total": 2, "percent": 100}
    assert detail["file_url"].startswith("http://testserver/api/v1/exports/")


def test_the_file_url_downloads_the_zip(api, account, post_export):
    export_id = post_export().json()["id"]
    url = api.get(f"exports/{export_id}").json()["file_url"]

    response = api.get(urlparse(url).path + "?" + urlparse(url).query)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert f"opsplatform-export-{export_id}.zip" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["account.csv", "campaigns.csv", "manifest.json"]


def test_the_download_needs_a_valid_token(api, account, post_export):
    export_id = post_export().json()["id"]

    missing = api.get(f"exports/{export_id}/download")
    forged = api.get(f"exports/{export_id}/download", {"token": "1:abc:def"})

    assert missing.status_code == 422
    assert forged.status_code == 404 and forged.json()["code"] == "not_found"


def test_another_tenant_gets_404_everywhere(api, other_api, post_export):
    export_id = post_export().json()["id"]
    url = urlparse(api.get(f"exports/{export_id}").json()["file_url"])

    assert other_api.get(f"exports/{export_id}").status_code == 404
    assert other_api.get(f"{url.path}?{url.query}").status_code == 404
    assert other_api.get("exports").json()["items"] == []


def test_customers_cannot_list_another_accounts_exports(api, other_account, post_export):
    post_export()

    response = api.get("exports", {"account_id": other_account.pk})

    assert response.status_code == 404


def test_staff_see_exports_with_permission_only(account, post_export):
    export_id = post_export().json()["id"]
    compliance = ApiClient(token_for(staff_in("compliance")))
    agent = ApiClient(token_for(staff_in("support_l1")))

    assert compliance.get(f"exports/{export_id}").json()["id"] == export_id
    assert compliance.get("exports", {"account_id": account.pk}).json()["count"] == 1
    assert agent.get(f"exports/{export_id}").status_code == 404
    assert agent.get("exports").status_code == 403


def test_staff_cannot_request_exports_for_themselves(staff_api):
    response = staff_api.post("exports", body())

    assert response.status_code == 403
    assert not ExportRequest.objects.exists()


def test_a_second_request_while_one_runs_is_409(api, account):
    ExportRequestFactory(account=account, status=ExportRequest.Status.PROCESSING)

    response = api.post("exports", body())

    assert response.status_code == 409
    assert response.json()["code"] == "export_in_progress"
    assert ExportRequest.objects.count() == 1


def test_beyond_the_daily_limit_is_429(api, account, settings):
    settings.EXPORT_DAILY_LIMIT = 3
    ExportRequestFactory.create_batch(3, account=account)

    response = api.post("exports", body())

    assert response.status_code == 429
    assert response.json()["code"] == "export_limit"
    assert ExportRequest.objects.count() == 3


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ('"just a string"', None),
        ([1, 2], None),
        (body(format="pdf"), "format"),
        (body(data_types="campaigns"), "data_types"),
        (body(data_types=[]), "data_types"),
        (body(data_types=["camp\x00aigns"]), "data_types"),
        (body(data_types=["bogus"]), "data_types"),
        (body(date_from="2024-02-30"), "date_from"),
        (body(date_from="yesterday"), "date_from"),
        (body(date_from=str(TODAY), date_to=str(TODAY - dt.timedelta(days=1))), "date_to"),
        (body(date_from="0001-01-01"), "date_from"),
        (body(date_to="9999-12-31"), "date_to"),
        (body(extra=1), "extra"),
        ({"format": "csv"}, "data_types"),
    ],
)
def test_malformed_requests_are_422(api, payload, where):
    if isinstance(payload, str):
        response = api.post("exports", raw=payload)
    else:
        response = api.post("exports", payload)

    assert response.status_code == 422, response.content
    if where:
        assert where in str(response.json()["errors"])
    assert not ExportRequest.objects.exists()


@pytest.mark.parametrize("path", ["exports/0", "exports/99999999999999999999", "exports/abc"])
def test_bad_ids_are_4xx(api, path):
    assert api.get(path).status_code in (404, 422)


def test_anonymous_requests_are_401(anon_api):
    assert anon_api.get("exports").status_code == 401
    assert anon_api.post("exports", body()).status_code == 401


@pytest.mark.parametrize("count", [1, 50])
def test_listing_costs_the_same_queries_at_any_size(
    api, account, count, django_assert_max_num_queries
):
    ExportRequestFactory.create_batch(count, account=account)

    with django_assert_max_num_queries(8):
        response = api.get("exports", {"limit": 50})

    assert response.json()["count"] == count
