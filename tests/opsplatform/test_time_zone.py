"""The customer's time zone: chosen on the profile (or PATCH /me), used on every page and in
every email to them, shown by /me, exported and erased with the account."""

import datetime as dt
import re

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from opsplatform import privacy
from opsplatform.models import Account
from support import notifications
from support.models import Ticket, TicketMessage
from tests.factories import AccountFactory, staff_in
from tests.support.factories import make_ticket
from userflows import emails
from userflows.models import DeletionRequest

pytestmark = pytest.mark.django_db
# 03:00 UTC on March 1st is 19:00 the evening before in Los Angeles (PST, UTC-8).
CREATED = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def la_account(db):
    return AccountFactory(time_zone="America/Los_Angeles")


@pytest.fixture
def customer(client, la_account):
    client.force_login(la_account.user)
    return client


def ticket_created_at(account, moment):
    ticket = make_ticket(account=account, subject="Downloads dropped")
    Ticket.objects.filter(pk=ticket.pk).update(created_at=moment, updated_at=moment)
    TicketMessage.objects.filter(ticket=ticket).update(created_at=moment)
    return Ticket.objects.get(pk=ticket.pk)


def test_a_new_account_is_in_the_sites_zone():
    assert AccountFactory().time_zone == "UTC"


def test_the_profile_offers_common_zones_first_and_saves_the_choice(customer, la_account):
    page = customer.get(reverse("profile")).content.decode()
    assert '<optgroup label="Common time zones">' in page
    assert page.index('value="America/Los_Angeles" selected') < page.index(
        '<optgroup label="All time zones">'
    )
    assert 'value="Asia/Kathmandu"' in page  # the full list, for everyone else

    response = customer.post(
        reverse("profile"), {"first_name": "Ada", "last_name": "", "time_zone": "Europe/Paris"}
    )

    assert response.status_code == 302
    la_account.refresh_from_db()
    assert la_account.time_zone == "Europe/Paris"
    assert la_account.history.first().time_zone == "Europe/Paris"


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "localtime", "europe/paris", "UTC\x00"])
def test_an_unknown_zone_is_a_form_error_and_changes_nothing(customer, la_account, bad):
    response = customer.post(
        reverse("profile"), {"first_name": "Ada", "last_name": "", "time_zone": bad}
    )

    assert response.status_code == 422
    page = response.content.decode()
    assert "Choose a time zone from the list, for example Europe/Paris." in page
    alerts = re.sub(r"<[^>]+>", " ", " ".join(re.findall(r'role="alert">(.*?)</div>', page, re.S)))
    assert "Choose a time zone" in alerts
    assert "time_zone" not in alerts and "Olympus" not in alerts and "europe/" not in alerts
    la_account.refresh_from_db()
    assert la_account.time_zone == "America/Los_Angeles"
    assert la_account.user.first_name == ""


def test_the_ticket_page_and_list_show_times_in_the_customers_zone(customer, la_account):
    ticket = ticket_created_at(la_account, CREATED)

    detail = customer.get(reverse("support:ticket_detail", args=[ticket.reference]))
    listing = customer.get(reverse("support:ticket_list"))

    assert "Feb 28, 2026, 19:00 PST" in detail.content.decode()
    assert "Feb 28, 2026, 19:00 PST" in listing.content.decode()
    assert "Mar 1, 2026" not in detail.content.decode()


def test_summer_time_shows_its_own_abbreviation(customer, la_account):
    ticket = ticket_created_at(la_account, dt.datetime(2026, 7, 1, 3, 0, tzinfo=dt.UTC))

    page = customer.get(reverse("support:ticket_detail", args=[ticket.reference]))

    assert "Jun 30, 2026, 20:00 PDT" in page.content.decode()


def test_a_customer_in_utc_sees_utc(client):
    account = AccountFactory()
    client.force_login(account.user)
    ticket = ticket_created_at(account, CREATED)

    page = client.get(reverse("support:ticket_detail", args=[ticket.reference]))

    assert "Mar 1, 2026, 03:00 UTC" in page.content.decode()


def test_the_acknowledgement_email_is_in_the_requesters_zone(la_account):
    ticket = ticket_created_at(la_account, CREATED)

    assert notifications.send_acknowledgement(ticket_id=ticket.pk) is True

    [ack] = mail.outbox
    assert "We received your request on Feb 28, 2026, 19:00 PST;" in ack.body


def test_an_email_only_requester_reads_the_sites_zone():
    ticket = make_ticket(requester_email="walk-in@example.com")
    Ticket.objects.filter(pk=ticket.pk).update(created_at=CREATED)

    notifications.send_acknowledgement(ticket_id=ticket.pk)

    assert "We received your request on Mar 1, 2026, 03:00 UTC;" in mail.outbox[0].body


def test_billing_and_privacy_emails_are_rendered_in_the_accounts_zone(la_account):
    deletion = DeletionRequest(account=la_account, scheduled_for=CREATED)

    message = emails.build(
        "deletion_scheduled",
        to=la_account.user.email,
        subject="Your account is scheduled for deletion",
        context={"deletion": deletion, "grace_days": 14},
    )

    assert "will be deleted on February 28, 2026," in message.body
    # Rendering leaves the process's zone as it was.
    assert timezone.get_current_timezone_name() == "UTC"


def test_pages_do_not_leak_the_zone_to_the_next_request(customer, la_account, client):
    customer.get(reverse("profile"))
    assert timezone.get_current_timezone_name() == "UTC"


def test_the_middleware_costs_no_query_on_customer_pages(customer, settings):
    url = reverse("profile")
    customer.get(url)  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as with_zone:
        customer.get(url)
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if m != "opsplatform.middleware.UserTimeZoneMiddleware"
    ]
    with CaptureQueriesContext(connection) as without:
        customer.get(url)

    assert len(with_zone) == len(without)


def test_staff_pages_stay_in_the_sites_zone(client):
    client.force_login(staff_in(is_superuser=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert timezone.get_current_timezone_name() == "UTC"


# --- API ----------------------------------------------------------------------------------------


def test_me_shows_the_zone_and_patch_changes_it(la_account):
    from tests.conftest import ApiClient
    from tests.factories import token_for

    api = ApiClient(token_for(la_account.user))
    assert api.get("me").json()["time_zone"] == "America/Los_Angeles"

    response = api._call("patch", "me", {"time_zone": "Asia/Tokyo", "first_name": "Ada"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["time_zone"] == "Asia/Tokyo" and body["first_name"] == "Ada"
    la_account.refresh_from_db()
    assert la_account.time_zone == "Asia/Tokyo"
    assert api.get("me").json()["time_zone"] == "Asia/Tokyo"


@pytest.mark.parametrize(
    "body",
    [
        {"time_zone": "Mars/Olympus_Mons"},
        {"time_zone": "localtime"},
        {"time_zone": ""},
        {"time_zone": 5},
        {"time_zone": "UTC\u0000"},
        {"first_name": "x" * 151},
        {"nickname": "Ada"},
    ],
)
def test_a_bad_profile_body_is_422_and_changes_nothing(la_account, body):
    from tests.conftest import ApiClient
    from tests.factories import token_for

    api = ApiClient(token_for(la_account.user))
    response = api._call("patch", "me", body)

    assert response.status_code == 422
    assert "detail" in response.json()
    la_account.refresh_from_db()
    assert la_account.time_zone == "America/Los_Angeles"


def test_a_body_that_is_not_an_object_is_400(api):
    response = api._call("patch", "me", "America/Los_Angeles")

    assert response.status_code == 400
    assert "detail" in response.json()


def test_staff_read_the_sites_zone_and_cannot_patch(staff_api):
    assert staff_api.get("me").json()["time_zone"] == "UTC"
    response = staff_api._call("patch", "me", {"time_zone": "Asia/Tokyo"})
    assert response.status_code == 403


# --- privacy ------------------------------------------------------------------------------------


def test_the_zone_is_personal_data_exported_and_reset_on_erasure(la_account):
    [account_entry] = [e for e in privacy.PERSONAL_DATA if e["model"] == "opsplatform.Account"]
    assert "time_zone" in account_entry["fields"]
    assert "time_zone" in privacy.EXPORT_TYPES["account"].columns

    privacy._anonymize_account(la_account, actor=None)

    la_account.refresh_from_db()
    assert la_account.time_zone == "UTC"
    assert set(Account.history.filter(id=la_account.pk).values_list("time_zone", flat=True)) == {
        "UTC"
    }
