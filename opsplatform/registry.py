"""How apps contribute to shared machinery without the core importing them (ADR 0001).

Every component's AppConfig derives from `PlatformAppConfig`, whose attributes and methods
are the declared hooks (each with a default that contributes nothing):
- `api_router` / `api_prefix`: the app's ninja Router, mounted under /api/v1/<prefix>;
- `account_urls` / `account_url_prefix`: its customer pages, included under /account/<prefix>;
- `account_nav`: menu entries on customer pages; `account_banners(request, account)`;
- `group_permissions`: what each staff group may do with the app's models;
- `admin_icon` / `admin_links`: the app's icon and extra pages in the admin sidebar;
- `ensure_reference_data()`: idempotent reference rows, run after every migrate.

And it may provide any of these modules, found by name:
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

from django.apps import AppConfig, apps


class PlatformAppConfig(AppConfig):
    """The contribution interface of a component (see the module docstring). A new app
    subclasses it and sets what it contributes; the core never names the app.

    In `<app>/apps.py` write `from opsplatform import registry` and subclass
    `registry.PlatformAppConfig`: importing the class itself would put a second AppConfig
    in the module and Django would no longer pick the app's own config."""

    # Dotted path of a `ninja.Router`, mounted at /api/v1/ + api_prefix ("" or "/support/").
    api_router: str | None = None
    api_prefix: str = ""
    # Dotted path of a urls module (with app_name), included at /account/ + account_url_prefix.
    account_urls: str | None = None
    account_url_prefix: str = ""
    # Menu entries on customer pages: (label, url name).
    account_nav: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()
    # Permission codenames ("app_label.codename") each staff group gets from this app.
    group_permissions: dict[str, list[str]] = {}
    # The admin sidebar: the app's icon (a Material Symbols name) and its pages that are not
    # changelists, as (title, icon, url name, permission codename of this app).
    admin_icon: str = "table"
    admin_links: tuple[tuple[str, str, str, str], ...] | list[tuple[str, str, str, str]] = ()

    def account_banners(self, request, account) -> list[str]:
        """Messages shown on every customer page (e.g. a scheduled deletion)."""
        return []

    def ensure_reference_data(self) -> None:
        """Create the reference rows every install needs; must be idempotent."""
        return None


def platform_apps() -> list[PlatformAppConfig]:
    """The installed components, in INSTALLED_APPS order."""
    return [c for c in apps.get_app_configs() if isinstance(c, PlatformAppConfig)]


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
