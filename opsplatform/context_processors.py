from django.apps import apps
from django.urls import reverse

from opsplatform.tenancy import account_of


def account(request):
    """The signed-in customer's account, the account menu and page banners for the layout.

    Apps contribute through their AppConfig: `account_nav = [(label, url_name), ...]` adds
    menu entries; `account_banners(request, account) -> list[str]` adds banners (e.g. a
    pending deletion).
    """
    user = getattr(request, "user", None)
    current = account_of(user) if user is not None else None
    nav, banners = [], []
    if current is not None:
        for config in apps.get_app_configs():
            for label, url_name in getattr(config, "account_nav", ()):
                nav.append({"label": label, "url": reverse(url_name)})
            hook = getattr(config, "account_banners", None)
            if hook is not None:
                banners.extend(hook(request, current))
    return {"current_account": current, "account_nav": nav, "page_banners": banners}
