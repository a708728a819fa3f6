import pytest

from tests.e2e.conftest import admin_sign_in, sign_in
from tests.factories import PASSWORD, AccountFactory, CampaignFactory, StaffFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_customer_signs_in_and_reaches_account_page(page):
    account = AccountFactory(name="Backyard Science")
    CampaignFactory(account=account, name="Acme spring read")

    sign_in(page, account.user.username, PASSWORD)

    page.wait_for_url("**/account/")
    assert page.get_by_role("heading", name="Backyard Science").is_visible()
    assert page.get_by_text("Acme spring read").is_visible()


def test_wrong_password_shows_a_form_error(page):
    account = AccountFactory()

    sign_in(page, account.user.username, "wrong-password")

    assert page.get_by_role("alert").is_visible()
    assert "/login/" in page.url


def test_staff_signs_in_to_admin(page):
    staff = StaffFactory(username="carol", is_superuser=True)

    admin_sign_in(page, staff.username, PASSWORD)

    page.wait_for_url("**/admin/")
    assert page.get_by_role("link", name="Accounts", exact=True).is_visible()
