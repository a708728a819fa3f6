"""Every customer form, given bad input, answers in the page's words: no message shows a field
name (`date_to`, `payment_method_id`) or a database constraint name."""

import datetime as dt
import html as html_lib
import re

import pytest
from django.core.cache import cache
from django.utils import timezone

from tests.factories import PASSWORD
from tests.userflows.factories import PaymentMethodFactory, SubscriptionFactory
from userflows.models import ExportRequest

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
# Words a customer never types: snake_case identifiers and constraint wording.
INTERNAL = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b|[Cc]onstraint|violated|IntegrityError")

BAD_POSTS = [
    (
        "/account/exports/",
        {
            "format": "csv",
            "data_types": ["campaigns"],
            "date_from": str(TODAY),
            "date_to": str(TODAY - dt.timedelta(days=3)),
        },
    ),
    (
        "/account/exports/",
        {
            "format": "csv",
            "data_types": ["campaigns"],
            "date_from": "1999-01-01",
            "date_to": str(TODAY),
        },
    ),
    (
        "/account/exports/",
        {
            "format": "csv",
            "data_types": ["campaigns"],
            "date_from": str(TODAY),
            "date_to": str(TODAY + dt.timedelta(days=900)),
        },
    ),
    (
        "/account/exports/",
        {"format": "pdf", "data_types": [], "date_from": "yesterday", "date_to": ""},
    ),
    ("/account/billing/payment-method/", {"payment_method_id": "pm_bogus"}),
    ("/account/billing/cancel/", {"reason": "", "when": "sometime"}),
    ("/account/billing/plan/", {"plan": "platinum"}),
    ("/account/billing/plan/", {"plan": "growth", "confirm_cents": "-5"}),
    ("/account/delete/", {"confirm": "delete"}),
    ("/account/delete/", {"confirm": "DELETE", "immediate": "on", "password": "wrong"}),
    ("/account/profile/", {"first_name": "x" * 200, "last_name": ""}),
    ("/account/profile/", {"first_name": "", "last_name": "", "time_zone": "Mars/Olympus_Mons"}),
    ("/account/email/", {"email": "not-an-address", "password": ""}),
    ("/account/email/", {"email": "fresh@example.test", "password": "wrong"}),
    (
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "abc", "new_password2": "abd"},
    ),
    ("/account/tokens/", {"label": ""}),
    ("/account/support/new/", {"subject": "", "description": "", "priority": "whenever"}),
    ("/password-reset/", {"email": "nope"}),
]


def messages_in(page: str) -> list[str]:
    """The text of every error and notice on a page."""
    found = []
    pattern = (
        r'<(ul|div|p|li)[^>]*(?:class="[^"]*(?:errorlist|form-errors|messages)[^"]*"|'
        r'role="alert")[^>]*>(.*?)</\1>'
    )
    for _, inner in re.findall(pattern, page, re.S):
        text = html_lib.unescape(" ".join(re.sub(r"<[^>]+>", " ", inner).split()))
        if text:
            found.append(text)
    return found


@pytest.fixture
def customer(client, account):
    cache.clear()
    PaymentMethodFactory(account=account)
    SubscriptionFactory(account=account)
    client.force_login(account.user)
    return client


@pytest.mark.parametrize(
    ("path", "data"), BAD_POSTS, ids=[f"{p}#{i}" for i, (p, _) in enumerate(BAD_POSTS)]
)
def test_bad_input_is_answered_in_the_pages_words(customer, path, data):
    response = customer.post(path, data, follow=True)

    page = response.content.decode()
    shown = messages_in(page)
    assert response.status_code < 500
    assert shown, f"{path} showed no message for {data}"
    for message in shown:
        assert not INTERNAL.search(message), (path, message)


def test_the_export_range_message_reads_as_the_form_does(customer, account):
    response = customer.post(
        "/account/exports/",
        {
            "format": "csv",
            "data_types": ["campaigns"],
            "date_from": str(TODAY),
            "date_to": str(TODAY - dt.timedelta(days=1)),
        },
    )

    assert "The end date must be on or after the start date." in messages_in(
        response.content.decode()
    )
    assert not ExportRequest.objects.filter(account=account).exists()


def test_a_constraint_says_what_it_protects():
    from django.core.exceptions import ValidationError

    from tests.factories import AccountFactory

    export = ExportRequest(
        account=AccountFactory(),
        format="csv",
        data_types=["campaigns"],
        date_from=TODAY,
        date_to=TODAY - dt.timedelta(days=1),
    )
    with pytest.raises(ValidationError) as raised:
        export.full_clean()

    assert "The end date must be on or after the start date." in str(raised.value)
    assert "export_range_in_order" not in str(raised.value)
