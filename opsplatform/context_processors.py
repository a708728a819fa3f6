from django.urls import reverse

from opsplatform.registry import platform_apps
from opsplatform.tenancy import account_of


def account(request):
    """The signed-in customer's account, the account menu and page banners for the layout.

    Apps contribute through their `PlatformAppConfig`: `account_nav` adds menu entries,
    `account_banners(request, account)` adds banners (e.g. a pending deletion).
    """
    user = getattr(request, "user", None)
    current = account_of(user) if user is not None else None
    nav, banners = [], []
    if current is not None:
        for config in platform_apps():
            for label, url_name in config.account_nav:
                nav.append({"label": label, "url": reverse(url_name)})
            banners.extend(config.account_banners(request, current))
    return {"current_account": current, "account_nav": nav, "page_banners": banners}
