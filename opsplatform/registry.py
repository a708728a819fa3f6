"""How apps contribute to shared machinery without the core importing them (ADR 0001).

Every component's AppConfig derives from `PlatformAppConfig`, whose attributes and methods
are the declared hooks (each with a default that contributes nothing):
- `api_router` / `api_prefix`: the app's ninja Router, mounted under /api/v1/<prefix>;
- `account_urls` / `account_url_prefix`: its customer pages, included under /account/<prefix>;
- `account_nav`: menu entries on customer pages; `account_banners(request, account)`;
- `group_permissions`: what each staff group may do with the app's models;
- `admin_icon` / `admin_links`: the app's icon and extra pages in the admin sidebar;
- `ensure_reference_data()`: idempotent reference rows, run after every migrate;
- `account_panels(account, *, user, compact)`: read-only panels about an account for staff
  (the account page's customer 360, and — compact — the ticket page's requester panel);
- `account_actions()`: what staff may do on behalf of a customer from the account page, each
  through the owning app's service with a required reason (see `AccountAction`).

And it may provide any of these modules, found by name:
- `<app>/schedules.py`: `SCHEDULES`, a list of `ScheduleSpec` upserted by `sync_schedules`;
- `<app>/demo.py`: `seed_demo(ctx: DemoContext)`, called by `seed_demo` after the shared domain;
- `<app>/privacy.py`: `erase_account(account, *, actor)` returning a list of `ErasureResult`,
  called when an account is deleted;
- `<app>/accounts.py`: `on_account_created(account, *, actor)`, called by
  `services.create_account` in its transaction (billing starts the account's subscription).
"""

from collections.abc import Callable
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

    def account_panels(self, account, *, user, compact: bool = False) -> list["AccountPanel"]:
        """Read-only facts about `account` for a staff `user` (only what the user may view).
        `compact` asks for the short form the ticket page's side panel shows."""
        return []

    def account_actions(self) -> list["AccountAction"]:
        """Actions on behalf of the customer that this app's services perform."""
        return []


@dataclass(frozen=True)
class PanelItem:
    """One line of a panel: a text, optionally linked, with a short detail and a tone
    (a badge colour of admin_base: "success", "info", "warning", "danger" or "")."""

    text: str
    url: str = ""
    detail: str = ""
    tone: str = ""


@dataclass(frozen=True)
class AccountPanel:
    """A read-only block of facts about an account, contributed by the app that owns them.
    `facts` are (label, value) pairs; `items` a list (invoices, tokens, exports...)."""

    key: str
    title: str
    order: int = 100
    facts: tuple[tuple[str, str], ...] = ()
    items: tuple[PanelItem, ...] = ()
    empty: str = "Nothing yet."
    more_url: str = ""


@dataclass(frozen=True)
class AccountAction:
    """Something staff do for a customer (the customer asked, by phone or ticket).

    `form` is a form class deriving from `opsplatform.account_admin.ActionForm` (built with
    `account=`; the core adds the required `reason` field); `preview(
    account, data)` returns the lines shown before confirming (e.g. a proration), or is None;
    `run(account, data, actor=, reason=)` calls the owning service and returns what happened
    (one sentence); `available(account)` says whether the button applies now; `permission`
    is the "app_label.codename" a staff user needs."""

    name: str
    label: str
    permission: str
    form: type
    run: Callable[..., str]
    preview: Callable[..., list[str]] | None = None
    available: Callable[..., bool] = field(default=lambda account: True)
    destructive: bool = False
    order: int = 100


def account_panels(account, *, user, compact: bool = False) -> list[AccountPanel]:
    """Every installed app's panels about `account`, ordered."""
    panels: list[AccountPanel] = []
    for config in platform_apps():
        panels.extend(config.account_panels(account, user=user, compact=compact))
    return sorted(panels, key=lambda p: (p.order, p.key))


def account_actions() -> dict[str, AccountAction]:
    """Every installed app's on-behalf actions by name (a name declared twice is a mistake)."""
    found: dict[str, AccountAction] = {}
    for config in platform_apps():
        for act in config.account_actions():
            if act.name in found:
                raise ValueError(f"Account action {act.name!r} is declared twice.")
            found[act.name] = act
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


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
