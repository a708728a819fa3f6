"""The admin on django-unfold: the shared base, the token button with its confirmation page,
tabs on the account page, third-party models in the same look, and no asset from another
origin (the browser test checks the requests themselves)."""

import re

import pytest
from axes.models import AccessAttempt
from django.contrib import admin
from django.urls import reverse
from django_q.models import Schedule
from unfold.admin import ModelAdmin as UnfoldModelAdmin

from opsplatform import services
from opsplatform.admin_base import tabbed_fieldsets
from opsplatform.models import ApiToken
from tests.factories import StaffFactory, staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(StaffFactory(is_superuser=True))
    return client


def test_every_registered_model_admin_is_an_unfold_admin():
    plain = [
        f"{model._meta.label}: {type(model_admin).__name__}"
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, UnfoldModelAdmin)
    ]
    assert plain == []
    assert type(admin.site).__name__ == "UnfoldAdminSite"


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:auth_user_changelist",
        "admin:auth_group_changelist",
        "admin:django_q_schedule_changelist",
        "admin:django_q_success_changelist",
        "admin:django_q_failure_changelist",
        "admin:axes_accessattempt_changelist",
    ],
)
def test_third_party_pages_render_in_unfold(superuser_client, url_name):
    Schedule.objects.create(func="math.floor", name="demo")
    AccessAttempt.objects.create(username="x", ip_address="127.0.0.1", failures_since_start=1)

    response = superuser_client.get(reverse(url_name))

    assert response.status_code == 200
    assert "unfold/css/styles.css" in response.content.decode()


def test_user_change_page_renders(superuser_client):
    user = StaffFactory()
    response = superuser_client.get(reverse("admin:auth_user_change", args=[user.pk]))
    assert response.status_code == 200
    assert user.username in response.content.decode()


def test_revoke_button_asks_then_revokes(superuser_client):
    owner = StaffFactory()
    token, _ = services.issue_api_token(user=owner, label="ci")
    button = reverse("admin:opsplatform_apitoken_revoke_this", args=[token.pk])
    change = reverse("admin:opsplatform_apitoken_change", args=[token.pk])

    assert f'href="{button}"' in superuser_client.get(change).content.decode()
    asked = superuser_client.get(button)
    assert asked.status_code == 200 and "Revoke the token ci?" in asked.content.decode()
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None

    done = superuser_client.post(button, {"confirm": "yes"})

    assert done.status_code == 302 and done["Location"] == change
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None


def test_revoke_button_needs_the_change_permission(client):
    owner = StaffFactory()
    token, _ = services.issue_api_token(user=owner, label="ci")
    client.force_login(staff_in("support_l1"))

    response = client.post(
        reverse("admin:opsplatform_apitoken_revoke_this", args=[token.pk]), {"confirm": "yes"}
    )

    assert response.status_code == 403
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_account_page_has_tabs(superuser_client, account):
    page = superuser_client.get(
        reverse("admin:opsplatform_account_change", args=[account.pk])
    ).content.decode()

    for tab in ("account", "plan", "dates"):
        assert f"activeFieldsetTab = '{tab}'" in page


def test_tabbed_fieldsets_put_unnamed_fields_on_the_first_tab():
    fieldsets = tabbed_fieldsets(
        ["name", "user", "plan", "new_field"], {"Plan": ["plan", "absent"]}, first="Main"
    )
    assert fieldsets == [
        ("Main", {"classes": ["tab"], "fields": ["name", "user", "new_field"]}),
        ("Plan", {"classes": ["tab"], "fields": ["plan"]}),
    ]


ASSET = re.compile(r'(?:src|href)="([^"#]+)"')


@pytest.mark.parametrize(
    "url_name", ["admin:index", "admin:support_ticket_changelist", "admin:support_ticket_dashboard"]
)
def test_admin_pages_load_nothing_from_another_origin(superuser_client, url_name):
    html = superuser_client.get(reverse(url_name)).content.decode()

    links = ASSET.findall(html)
    assert any(link.endswith("unfold/js/chart/chart.js") for link in links)
    assert [link for link in links if "//" in link] == []


def _sidebar(client) -> dict[str, list[str]]:
    from opsplatform.admin_base import sidebar_navigation

    request = client.get(reverse("admin:index")).wsgi_request
    return {g["title"]: [i["title"] for i in g["items"]] for g in sidebar_navigation(request)}


def test_the_sidebar_shows_each_apps_declared_pages_to_those_allowed(client):
    """Apps declare their extra admin pages on their config (admin_links); a page shows only
    to a user with its permission, under the app's own group."""
    client.force_login(staff_in("compliance"))
    sidebar = _sidebar(client)
    assert sidebar["Compliance"][:3] == [
        "Compliance dashboard",
        "Audit trail",
        "Record of processing",
    ]

    client.force_login(staff_in("support_l1"))
    sidebar = _sidebar(client)
    assert sidebar["Support"][0] == "Support dashboard"
    assert "Compliance" not in sidebar  # an agent holds no compliance permission

    client.force_login(staff_in("operations"))
    sidebar = _sidebar(client)
    assert "Roadmap board" in sidebar["Feature scoring"]
