"""Export files are reachable only through the signed, expiring link: no URL serves the storage
(development included) and admin shows staff that link, never the file's path."""

import importlib
import io
import zipfile
from urllib.parse import urlparse

import pytest
from django.test import Client
from django.urls import clear_url_caches, reverse

from tests.factories import staff_in
from tests.userflows.factories import ExportRequestFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def development_urls(settings):
    """The project's URLs as `make run` (DEBUG=1) builds them."""
    settings.DEBUG = True
    urls = importlib.import_module(settings.ROOT_URLCONF)
    importlib.reload(urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(urls)
    clear_url_caches()


@pytest.fixture
def export(account, run_export):
    export = run_export(account, data_types=["account"])
    assert export.status == "completed" and export.file.name.startswith("exports/")
    return export


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(staff_in(is_superuser=True))
    return client


def test_no_url_serves_the_export_file_in_development(development_urls, export, settings):
    owner = Client()
    owner.force_login(export.account.user)
    staff = Client()
    staff.force_login(staff_in(is_superuser=True))
    assert (settings.MEDIA_ROOT / export.file.name).is_file()

    for client in (Client(), owner, staff):
        for url in (f"/media/{export.file.name}", f"/{export.file.name}"):
            assert client.get(url).status_code == 404, url


def test_admin_shows_a_signed_link_not_the_path(staff_client, export, settings):
    page = staff_client.get(reverse("admin:userflows_exportrequest_change", args=[export.pk]))
    history = staff_client.get(reverse("admin:userflows_exportrequest_history", args=[export.pk]))

    assert page.status_code == 200 and history.status_code == 200
    html = page.content.decode()
    name = export.file.name.rsplit("/", 1)[-1]
    assert name not in html and "/media/" not in html
    assert name not in history.content.decode()
    assert "a stored file" in history.content.decode()  # that a file was stored, not where
    for version in export.history.all():
        url = reverse(
            "admin:userflows_exportrequest_simple_history", args=[export.pk, version.history_id]
        )
        old = staff_client.get(url)
        assert old.status_code == 200 and name not in old.content.decode()
    link = _download_href(html)
    assert link.startswith(f"{settings.SITE_URL}/api/v1/exports/{export.pk}/download?token=")

    response = staff_client.get(urlparse(link).path + "?" + urlparse(link).query)

    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == ["account.csv", "manifest.json"]


def test_admin_offers_no_link_for_an_export_without_a_file(staff_client, account):
    pending = ExportRequestFactory(account=account, status="pending")

    page = staff_client.get(reverse("admin:userflows_exportrequest_change", args=[pending.pk]))

    assert page.status_code == 200
    assert "/download?token=" not in page.content.decode()


def _download_href(html: str) -> str:
    start = html.rindex('href="', 0, html.index("/download?token=")) + len('href="')
    return html[start : html.index('"', start)].replace("&amp;", "&")
