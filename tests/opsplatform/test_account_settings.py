"""The customer's sign-in lifecycle: password reset by email, password change, email change
with confirmation, profile; the navigation and the API tokens page."""

import datetime as dt
import re
import time
from unittest import mock

import pytest
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings

from opsplatform import services
from opsplatform.models import ApiToken, UserSession
from tests.factories import PASSWORD, AccountFactory, StaffFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-42"


@pytest.fixture(autouse=True)
def fresh_limits():
    cache.clear()
    yield
    cache.clear()


def reset_link(message) -> str:
    found = re.search(r"https?://\S+/password-reset/\S+/\S+/", message.body)
    assert found, message.body
    return found.group(0)


def path_of(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def sign_in(client, username, password) -> bool:
    client.post("/login/", {"username": username, "password": password})
    return "_auth_user_id" in client.session


# --- password reset -----------------------------------------------------------------------------


@override_settings(SITE_URL="http://127.0.0.1:9100")
def test_password_reset_end_to_end_and_the_link_works_once(client, account):
    response = client.post("/password-reset/", {"email": account.user.email.upper()})

    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    (message,) = mail.outbox
    assert message.to == [account.user.email]
    assert message.subject == "Reset your opsplatform password"
    link = reset_link(message)
    assert link.startswith("http://127.0.0.1:9100/password-reset/")

    form_page = client.get(path_of(link), follow=True)
    assert b"Choose a new password" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"

    assert sign_in(Client(), account.user.username, NEW_PASSWORD)
    assert not sign_in(Client(), account.user.username, PASSWORD)
    again = Client().get(path_of(link), follow=True)
    assert b"This link no longer works" in again.content
    assert b'name="new_password1"' not in again.content


def test_the_answer_is_the_same_for_an_unknown_address(client, account):
    known = client.post("/password-reset/", {"email": account.user.email})
    unknown = client.post("/password-reset/", {"email": "nobody@example.test"})

    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert [m.to for m in mail.outbox] == [[account.user.email]]
    page = client.get(unknown["Location"]).content.decode()
    assert "If the address you entered belongs to an account" in page
    assert "nobody@example.test" not in page


def test_the_reset_link_expires(client, account):
    client.post("/password-reset/", {"email": account.user.email})
    link = path_of(reset_link(mail.outbox[0]))
    later = PasswordResetTokenGenerator()._now() + dt.timedelta(days=4)

    with mock.patch.object(PasswordResetTokenGenerator, "_now", return_value=later):
        page = client.get(link, follow=True)

    assert b"This link no longer works" in page.content
    account.user.refresh_from_db()
    assert account.user.check_password(PASSWORD)


def test_a_reset_signs_out_every_session(client, account):
    other = Client()
    assert sign_in(other, account.user.username, PASSWORD)
    client.post("/password-reset/", {"email": account.user.email})
    page = client.get(path_of(reset_link(mail.outbox[0])), follow=True)

    client.post(
        page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert not UserSession.objects.filter(user_id=account.user_id).exists()
    assert other.get("/account/").status_code == 302  # back to the login page


@override_settings(PASSWORD_RESET_LIMIT_PER_EMAIL=2, PASSWORD_RESET_LIMIT_PER_ADDRESS=100)
def test_mails_to_one_address_are_limited_without_changing_the_answer(client, account):
    answers = [client.post("/password-reset/", {"email": account.user.email}) for _ in range(4)]

    assert {(a.status_code, a["Location"]) for a in answers} == {(302, "/password-reset/sent/")}
    assert len(mail.outbox) == 2


@override_settings(PASSWORD_RESET_LIMIT_PER_ADDRESS=3)
def test_requests_from_one_client_address_are_limited(client, account):
    for i in range(3):
        assert client.post("/password-reset/", {"email": f"x{i}@example.test"}).status_code == 302

    refused = client.post("/password-reset/", {"email": account.user.email})

    assert refused.status_code == 429
    assert b"Too many requests" in refused.content
    assert mail.outbox == []


def test_a_weak_new_password_is_refused_in_words(client, account):
    client.post("/password-reset/", {"email": account.user.email})
    page = client.get(path_of(reset_link(mail.outbox[0])), follow=True)

    response = client.post(
        page.redirect_chain[-1][0], {"new_password1": "123", "new_password2": "123"}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "This password is too short" in html
    assert "new_password1" not in re.sub(r'(name|id|for)="[^"]*"', "", html)
    account.user.refresh_from_db()
    assert account.user.check_password(PASSWORD)


def test_the_login_page_links_to_the_reset(client):
    assert b'href="/password-reset/"' in client.get("/login/").content


# --- password change ----------------------------------------------------------------------------


def test_changing_the_password_ends_other_sessions_and_lists_tokens(client, account):
    other = Client()
    assert sign_in(other, account.user.username, PASSWORD)
    assert sign_in(client, account.user.username, PASSWORD)
    token, _ = services.issue_api_token(user=account.user, label="Zapier")

    response = client.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )

    html = response.content.decode()
    assert "1 other session was signed out" in html
    assert "Zapier" in html and f"/account/tokens/#token-{token.id}" in html
    assert client.get("/account/").status_code == 200  # this browser stays signed in
    assert other.get("/account/").status_code == 302
    assert UserSession.objects.filter(user_id=account.user_id).count() == 1


def test_a_wrong_current_password_changes_nothing(client, account):
    client.force_login(account.user)

    response = client.post(
        "/account/password/",
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    account.user.refresh_from_db()
    assert account.user.check_password(PASSWORD)


# --- email change -------------------------------------------------------------------------------


def confirm_link(outbox) -> str:
    (message,) = [m for m in outbox if m.subject == "Confirm your new email address"]
    return path_of(re.search(r"https?://\S+/account/email/confirm/\S+/", message.body).group(0))


def test_an_email_change_is_confirmed_from_the_new_address(
    client, account, django_capture_on_commit_callbacks
):
    client.force_login(account.user)
    old = account.user.email

    with django_capture_on_commit_callbacks(execute=True):
        with_password = client.post(
            "/account/email/", {"email": "New.Address@Example.test", "password": PASSWORD}
        )

    assert with_password.status_code == 302
    by_subject = {m.subject: m.to for m in mail.outbox}
    assert by_subject == {
        "Confirm your new email address": ["new.address@example.test"],
        "Your email address is about to change": [old],
    }
    account.user.refresh_from_db()
    assert account.user.email == old  # nothing changes before the confirmation
    link = confirm_link(mail.outbox)
    assert b"new.address@example.test" in client.get(link).content
    account.user.refresh_from_db()
    assert account.user.email == old  # a GET (a mail scanner) changes nothing

    client.post(link)

    account.user.refresh_from_db()
    assert account.user.email == account.user.username == "new.address@example.test"
    assert sign_in(Client(), "new.address@example.test", PASSWORD)
    used = client.post(link)
    assert used.status_code == 400 and b"invalid or has expired" in used.content


def test_an_email_change_needs_the_password_and_a_free_address(client, account, other_account):
    client.force_login(account.user)

    wrong = client.post("/account/email/", {"email": "fresh@example.test", "password": "nope"})
    taken = client.post(
        "/account/email/", {"email": other_account.user.email, "password": PASSWORD}
    )

    assert wrong.status_code == 422 and "The password is not correct." in wrong.content.decode()
    assert taken.status_code == 409
    assert "Another account already uses this email address." in taken.content.decode()
    assert mail.outbox == []


def test_a_forged_or_expired_confirmation_changes_nothing(
    client, account, django_capture_on_commit_callbacks
):
    client.force_login(account.user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/account/email/", {"email": "later@example.test", "password": PASSWORD})
    link = confirm_link(mail.outbox)

    forged = client.post(link[:-6] + "AAAAA/")
    two_days_later = time.time() + 2 * 86400
    with mock.patch("django.core.signing.time.time", return_value=two_days_later):
        expired = client.post(link)

    assert forged.status_code == expired.status_code == 400
    account.user.refresh_from_db()
    assert account.user.email != "later@example.test"


# --- profile and navigation ---------------------------------------------------------------------


def test_the_profile_saves_the_name_and_links_the_sign_in_settings(client, account):
    client.force_login(account.user)

    client.post("/account/profile/", {"first_name": " Ada ", "last_name": "Lovelace"})

    account.user.refresh_from_db()
    assert (account.user.first_name, account.user.last_name) == ("Ada", "Lovelace")
    html = client.get("/account/profile/").content.decode()
    for href in ("/account/email/", "/account/password/", "/account/tokens/"):
        assert f'href="{href}"' in html


def test_the_pages_need_a_customer(client):
    anonymous = client.get("/account/profile/")
    client.force_login(StaffFactory())

    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    for path in ("/account/profile/", "/account/password/", "/account/email/"):
        assert client.get(path).status_code == 403, path


def marked_in_menu(html: str) -> list[str]:
    menu = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    return re.findall(r'<a href="[^"]+" aria-current="[a-z]+">([^<]+)</a>', menu)


@pytest.mark.parametrize(
    ("path", "current"),
    [
        ("/account/", "Account"),
        ("/account/billing/", "Billing"),
        ("/account/exports/", "Exports"),
        ("/account/tokens/", "API tokens"),
        ("/account/profile/", "Profile"),
        ("/account/password/", "Profile"),
        ("/account/email/", "Profile"),
        ("/account/support/", "Support"),
    ],
)
def test_the_menu_marks_the_current_section(client, account, path, current):
    client.force_login(account.user)

    html = client.get(path).content.decode()

    assert marked_in_menu(html) == [current]


def test_a_support_ticket_page_marks_support(client, account):
    from tests.support.factories import make_ticket

    ticket = make_ticket(account=account)
    client.force_login(account.user)

    html = client.get(f"/account/support/{ticket.reference}/").content.decode()

    assert marked_in_menu(html) == ["Support"]


# --- API tokens page ----------------------------------------------------------------------------


def test_a_new_token_has_a_copy_button(client, account):
    client.force_login(account.user)

    html = client.post("/account/tokens/", {"label": "CI"}).content.decode()

    assert 'data-copy-target="new-token"' in html and "js/copy.js" in html
    assert "<script>" not in html  # static file only (CSP)


def test_revoking_asks_for_confirmation_first(client, account):
    token, _ = services.issue_api_token(user=account.user, label="Zapier")
    client.force_login(account.user)

    page = client.get(f"/account/tokens/{token.id}/revoke/")

    assert page.status_code == 200 and "Revoke “Zapier”?" in page.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None
    client.post(f"/account/tokens/{token.id}/revoke/")
    token.refresh_from_db()
    assert token.revoked_at is not None
    listed = client.get("/account/tokens/").content.decode()
    assert ">Revoked</span>" in listed


def test_another_accounts_token_revoke_page_is_404(client, account):
    theirs, _ = services.issue_api_token(user=AccountFactory().user, label="theirs")
    client.force_login(account.user)

    assert client.get(f"/account/tokens/{theirs.id}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None
