"""Apps plug in through their declared PlatformAppConfig: routers, customer pages, menus."""

from django.apps import apps
from django.urls import reverse

from opsplatform.api import api
from opsplatform.registry import PlatformAppConfig, platform_apps


def test_every_component_is_a_platform_app_with_its_own_config():
    # Importing the base class into apps.py would make Django fall back to a plain AppConfig.
    names = [config.name for config in platform_apps()]
    assert names[:3] == ["opsplatform", "support", "userflows"]
    for name in names:
        assert type(apps.get_app_config(name)) is not PlatformAppConfig


def test_routers_are_mounted_from_the_app_configs():
    paths = set(api.get_openapi_schema()["paths"])
    assert "/api/v1/me" in paths  # opsplatform, prefix ""
    assert "/api/v1/support/tickets" in paths  # support, prefix "/support/"
    assert "/api/v1/exports" in paths  # userflows, prefix ""


def test_customer_pages_are_included_from_the_app_configs():
    assert reverse("support:ticket_list") == "/account/support/"
    assert reverse("userflows:billing") == "/account/billing/"
