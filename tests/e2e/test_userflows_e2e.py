"""A customer exports their data (watching the progress bar finish, then downloading the ZIP)
and schedules, then cancels, their account's deletion."""

import datetime as dt
import json
import zipfile

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD, AccountFactory, CampaignFactory, CampaignMetricFactory
from userflows.models import DeletionRequest, ExportRequest
from userflows.services import exports

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(monkeypatch):
    """The worker's queue: the test decides when the job runs, so the page can be watched
    before, during and after it."""
    ids = []
    monkeypatch.setattr(exports, "enqueue_export", ids.append)
    return ids


def test_export_with_live_progress_then_schedule_and_cancel_a_deletion(page, queued):
    account = AccountFactory(name="Backyard Science")
    start = timezone.localdate() - dt.timedelta(days=5)
    campaign = CampaignFactory(
        account=account, starts_on=start, ends_on=start + dt.timedelta(days=9)
    )
    for day in range(5):
        CampaignMetricFactory(campaign=campaign, date=start + dt.timedelta(days=day))
    # Polls are held by the test while the job runs in this thread, so the live server and
    # the job never use the (shared, in-memory SQLite) connection at the same moment.
    page.route("**/account/exports/*/status/", lambda route: route.continue_())
    sign_in(page, account.user.username, PASSWORD)
    page.wait_for_url("**/account/")

    page.get_by_role("link", name="Exports").click()
    page.get_by_label("JSON").check()
    page.get_by_role("button", name="Request export").click()

    expect(page.get_by_text("is queued")).to_be_visible()
    (export_id,) = queued
    row = page.locator(f"tr[data-export-id='{export_id}']")
    progress = row.get_by_role("progressbar")
    expect(progress).to_be_visible()
    page.evaluate("window.notReloaded = true")

    # The job starts and is half-way (as the worker reports it)...
    ExportRequest.objects.filter(pk=export_id).update(
        status="processing", rows_done=4, rows_total=8
    )
    expect(progress).to_have_attribute("value", "50")
    expect(row.get_by_text("4 of 8 rows")).to_be_visible()
    # ...then finishes.
    exports.process_export(export_id=export_id)
    download_link = row.get_by_role("link", name="Download ZIP")
    expect(download_link).to_be_visible()
    expect(progress).to_be_hidden()
    expect(row.get_by_text("Ready")).to_be_visible()
    expect(row.locator("[data-role=file-info]")).to_contain_text(" · until ")  # size and expiry
    assert page.evaluate("window.notReloaded") is True  # updated in place

    with page.expect_download() as info:
        download_link.click()
    archive = zipfile.ZipFile(info.value.path())
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["counts"]["analytics"] == 5
    assert "campaigns.json" in archive.namelist()

    page.get_by_role("link", name="Delete account").click()
    page.get_by_label("Why are you leaving? (optional)").fill("Taking a season off")
    page.get_by_label("Type DELETE to confirm").fill("DELETE")
    page.get_by_role("button", name="Delete my account").click()

    request = DeletionRequest.objects.get(account=account)
    date = request.scheduled_for.strftime("%B %-d, %Y")
    expect(page.get_by_role("heading", name="Deletion scheduled")).to_be_visible()
    page.get_by_role("link", name="Account", exact=True).click()
    expect(page.get_by_text(f"scheduled for deletion on {date}")).to_be_visible()

    page.get_by_role("link", name="Delete account").click()
    page.get_by_role("button", name="Cancel the deletion").click()

    expect(page.get_by_text("The deletion was canceled")).to_be_visible()
    expect(page.get_by_text("scheduled for deletion on")).to_have_count(0)
    request.refresh_from_db()
    assert request.status == "canceled"


def test_typing_anything_but_delete_is_refused(page):
    account = AccountFactory()
    sign_in(page, account.user.username, PASSWORD)
    page.wait_for_url("**/account/")

    page.goto("/account/delete/")
    page.get_by_label("Type DELETE to confirm").fill("delete")
    page.get_by_role("button", name="Delete my account").click()

    expect(page.get_by_role("alert").filter(has_text="Type the word DELETE")).to_be_visible()
    assert not DeletionRequest.objects.exists()
