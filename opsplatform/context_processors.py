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
        nav.append({"label": "Account", "url": reverse("account_home"), "exact": True})
        for config in platform_apps():
            for label, url_name in config.account_nav:
                nav.append({"label": label, "url": reverse(url_name)})
            banners.extend(config.account_banners(request, current))
        nav.append({"label": "API tokens", "url": reverse("api_tokens")})
        nav.append({"label": "Profile", "url": reverse("profile")})
        for item in nav:
            # A section is current on its own page and every page under it (a ticket's
            # page highlights Support); the account home only on itself.
            path = request.path
            item["current"] = (
                path == item["url"] if item.pop("exact", False) else (path.startswith(item["url"]))
            )
        if request.path.startswith(("/account/password/", "/account/email/")):
            nav[-1]["current"] = True
        if request.path.startswith("/account/campaigns/"):
            nav[0]["current"] = True
    return {"current_account": current, "account_nav": nav, "page_banners": banners}
