"""How apps contribute to shared machinery without the core importing them.

An installed app may provide any of these modules, found by name:
- `<app>/schedules.py`: `SCHEDULES`, a list of `ScheduleSpec` upserted by `sync_schedules`;
- `<app>/demo.py`: `seed_demo(ctx: DemoContext)`, called by `seed_demo` after the shared domain;
- `<app>/privacy.py`: `erase_account(account, *, actor)` returning a list of `ErasureResult`,
  called when an account is deleted;
- `<app>/accounts.py`: `on_account_created(account, *, actor)`, called by
  `services.create_account` in its transaction (billing starts the account's subscription).
"""

from dataclasses import dataclass, field
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

from django.apps import apps


def app_modules(name: str) -> list[ModuleType]:
    """The `<app>.<name>` modules of installed apps, in INSTALLED_APPS order."""
    found = []
    for config in apps.get_app_configs():
        dotted = f"{config.name}.{name}"
        if find_spec(dotted) is not None:
            found.append(import_module(dotted))
    return found


@dataclass(frozen=True)
class ScheduleSpec:
    """One django-q2 schedule, upserted by its unique `name`."""

    name: str
    func: str
    schedule_type: str  # django_q.models.Schedule.MINUTES, HOURLY, DAILY, CRON...
    minutes: int | None = None
    cron: str | None = None
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ErasureResult:
    """What one app erased or kept for a deleted account; holds counts, never personal data."""

    category: str
    action: str  # "erased", "anonymized" or "kept"
    count: int
    legal_ground: str = ""
