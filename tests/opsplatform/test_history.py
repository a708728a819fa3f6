"""Every model a person changes keeps its history with the acting user."""

import pytest

from opsplatform.models import Sponsor

pytestmark = pytest.mark.django_db


def test_a_sponsor_made_through_the_api_has_a_history_row_naming_the_caller(api, account):
    response = api.post(
        "campaigns",
        {
            "name": "Spring read",
            "sponsor": "Acme Mattresses",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-31",
            "deal_value": "2500.00",
        },
    )

    assert response.status_code == 201, response.content
    sponsor = Sponsor.objects.get(account=account, name="Acme Mattresses")
    rows = list(sponsor.history.all())
    assert [(row.history_type, row.name) for row in rows] == [("+", "Acme Mattresses")]
    assert rows[0].history_user == account.user
