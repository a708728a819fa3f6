"""What the support app contributes to shared machinery: staff group permissions, the
customer menu entry, schedules, privacy and export hooks."""

import pytest
from django.contrib.auth.models import Group

from opsplatform.registry import app_modules

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_support_levels_work_tickets(level):
    perms = {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=f"support_l{level}").permissions.all()
    }
    assert {
        "support.view_ticket",
        "support.change_ticket",
        "support.add_ticketmessage",
        "support.view_ticketmessage",
    } <= perms
    assert ("support.change_slapolicy" in perms) == (level == 4)


@pytest.mark.parametrize("group", ["operations", "compliance"])
def test_operations_and_compliance_only_read(group):
    perms = {
        p.codename
        for p in Group.objects.get(name=group).permissions.all()
        if p.content_type.app_label == "support"
    }
    assert "view_ticket" in perms
    assert not {p for p in perms if not p.startswith("view_")}


def test_hooks_are_found_by_convention():
    names = (
        {m.__name__ for m in app_modules("schedules")}
        | {m.__name__ for m in app_modules("privacy")}
        | {m.__name__ for m in app_modules("demo")}
    )
    assert {"support.schedules", "support.privacy", "support.demo"} <= names
    from django.apps import apps

    assert apps.get_app_config("support").account_nav == [("Support", "support:ticket_list")]
