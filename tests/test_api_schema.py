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
        case.call_and_validate(
            headers={"Authorization": f"Bearer {token_for(user)}"}, checks=CHECKS
        )
