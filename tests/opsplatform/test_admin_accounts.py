"""Account admin: no staff group (superusers included) can change an account's owner, plan
or creation date; other edits go through `services.update_account`, which checks permission."""

import datetime as dt

import pytest
from django.urls import reverse

from opsplatform import services
from opsplatform.errors import Forbidden
from opsplatform.models import Account, Persona
from tests.factories import AccountFactory, StaffFactory, staff_in

pytestmark = pytest.mark.django_db
CREATED = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
MAY_CHANGE = {"support_l4", "operations", "superuser"}


def actor_for(group: str):
    if group == "superuser":
        return staff_in(is_superuser=True)
    return staff_in(group)


def snapshot(account):
    row = Account.objects.get(pk=account.pk)
    return (row.user_id, row.plan, row.created_at, row.name, row.persona.slug, row.country)


@pytest.mark.parametrize("group", [*services.STAFF_GROUPS, "superuser"])
def test_no_staff_group_can_reassign_the_owner_plan_or_creation_date(client, group):
    account = AccountFactory(created_at=CREATED, plan="starter", name="Original")
    taker = actor_for(group)
    client.force_login(taker)
    before = snapshot(account)

    response = client.post(
        reverse("admin:opsplatform_account_change", args=[account.pk]),
        {
            "user": taker.pk,  # the takeover: the customer's login becomes the staff user's
            "plan": "enterprise",
            "created_at_0": "2020-01-01",
            "created_at_1": "00:00:00",
            "name": "Renamed",
            "persona": Persona.objects.get(slug="agency").pk,
            "country": "FR",
            "_save": "Save",
        },
    )

    after = snapshot(account)
    assert after[:3] == before[:3] == (account.user_id, "starter", CREATED)
    if group in MAY_CHANGE:
        assert response.status_code == 302
        assert after[3:] == ("Renamed", "agency", "FR")
        assert Account.objects.get(pk=account.pk).history.first().history_user_id == taker.pk
    else:
        assert response.status_code == 403
        assert after == before


def test_the_change_form_shows_the_protected_fields_read_only(client):
    account = AccountFactory()
    client.force_login(staff_in(is_superuser=True))

    page = client.get(reverse("admin:opsplatform_account_change", args=[account.pk]))

    form = page.context["adminform"].form
    assert set(form.fields) == {"name", "persona", "country"}
    assert client.get(reverse("admin:opsplatform_account_add")).status_code == 403


def test_update_account_checks_permission_and_refuses_protected_fields():
    account = AccountFactory(name="Original")
    before = snapshot(account)

    with pytest.raises(Forbidden):
        services.update_account(account_id=account.pk, actor=staff_in("support_l1"), name="X")
    with pytest.raises(Forbidden):
        services.update_account(account_id=account.pk, actor=account.user, name="X")
    operations = staff_in("operations")
    with pytest.raises(Forbidden) as caught:
        services.update_account(
            account_id=account.pk, actor=operations, user=StaffFactory(), plan="enterprise"
        )
    assert caught.value.code == "read_only_field"
    assert snapshot(account) == before

    services.update_account(account_id=account.pk, actor=operations, name="Renamed")
    assert snapshot(account)[3] == "Renamed"
