"""Property-based API conformance: schemathesis generates requests from our OpenAPI schema.

Every operation, for a customer and for a staff token: no 5xx, only documented status codes,
JSON where JSON is promised, and bodies that match the documented schema.
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import AccountFactory, CampaignFactory, staff_in, token_for

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calling the WSGI app directly fires request_started/finished, whose
    close_old_connections would close the connection holding the test's transaction on
    PostgreSQL. Django's test client disconnects it the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@pytest.mark.django_db
def test_every_operation_conforms_and_never_fails(case):
    account = AccountFactory()
    CampaignFactory(account=account)
    staff = staff_in("operations", "support_l2", "compliance", is_superuser=True)
    for user in (account.user, staff):
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {token_for(user)}"}, checks=CHECKS
        )
        assert response.status_code < 500


def test_every_api_schema_has_its_own_name():
    """The OpenAPI document names each schema by its class name: two classes with one name
    make the document describe one operation with the other's schema (this happened to
    health's and compliance's CheckOut)."""
    import importlib

    from ninja import Schema

    from opsplatform.registry import platform_apps

    for config in platform_apps():
        if config.api_router:
            importlib.import_module(config.api_router.rsplit(".", 1)[0])
    seen, clashes, stack = {}, [], list(Schema.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] not in {c.name for c in platform_apps()}:
            continue
        other = seen.setdefault(cls.__name__, cls)
        if other is not cls and other.__module__ != cls.__module__:
            clashes.append(f"{cls.__name__}: {other.__module__} and {cls.__module__}")
    assert clashes == []
