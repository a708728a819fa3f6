import datetime as dt
import io
import zipfile

import pytest
from django.utils import timezone

from tests.factories import CampaignFactory, CampaignMetricFactory
from userflows.services import exports


@pytest.fixture
def run_export(django_capture_on_commit_callbacks):
    """Create an export through the service and run the queued job (Q runs in sync mode)."""

    def run(account, **kwargs):
        kwargs.setdefault("format", "csv")
        kwargs.setdefault("data_types", ["campaigns"])
        kwargs.setdefault("date_from", timezone.localdate() - dt.timedelta(days=90))
        kwargs.setdefault("date_to", timezone.localdate())
        with django_capture_on_commit_callbacks(execute=True):
            export = exports.create_export_request(
                account=account, requested_by=account.user, **kwargs
            )
        export.refresh_from_db()
        return export

    return run


def read_zip(export) -> zipfile.ZipFile:
    with export.file.open("rb") as handle:
        return zipfile.ZipFile(io.BytesIO(handle.read()))


@pytest.fixture
def campaign_with_metrics(account):
    """A campaign of `account` with 10 days of metrics starting 20 days ago."""
    start = timezone.localdate() - dt.timedelta(days=20)
    campaign = CampaignFactory(
        account=account, starts_on=start, ends_on=start + dt.timedelta(days=29)
    )
    for i in range(10):
        CampaignMetricFactory(
            campaign=campaign,
            date=start + dt.timedelta(days=i),
            impressions=1000 + i,
            clicks=10 + i,
        )
    return campaign
