import pytest
from django.test import Client

from tests.factories import AccountFactory, staff_in, token_for


class ApiClient:
    """A JSON client for /api/v1/ that sends a bearer token."""

    def __init__(self, token: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _call(self, method, path, data=None, raw=None, content_type="application/json"):
        url = path if path.startswith("/") else f"/api/v1/{path}"
        kwargs = {"headers": self.headers}
        if raw is not None:
            kwargs.update(data=raw, content_type=content_type)
        elif data is not None:
            kwargs.update(data=data, content_type=content_type)
        return getattr(self.client, method)(url, **kwargs)

    def get(self, path, params=None):
        url = path if path.startswith("/") else f"/api/v1/{path}"
        return self.client.get(url, params or {}, headers=self.headers)

    def post(self, path, data=None, **kw):
        return self._call("post", path, data, **kw)

    def put(self, path, data=None, **kw):
        return self._call("put", path, data, **kw)

    def delete(self, path, **kw):
        return self._call("delete", path, **kw)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def account(db):
    return AccountFactory()


@pytest.fixture
def other_account(db):
    return AccountFactory()


@pytest.fixture
def api(account):
    """An API client acting as the customer of `account`."""
    return ApiClient(token_for(account.user))


@pytest.fixture
def other_api(other_account):
    return ApiClient(token_for(other_account.user))


@pytest.fixture
def ops_user(db):
    return staff_in("operations")


@pytest.fixture
def staff_api(db):
    """An API client acting as a superuser staff member."""
    user = staff_in(is_superuser=True)
    return ApiClient(token_for(user))


@pytest.fixture
def anon_api(db):
    return ApiClient(None)
