from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from opsplatform import views
from opsplatform.api import api
from opsplatform.registry import platform_apps

admin.site.site_header = "opsplatform"
admin.site.site_title = "opsplatform admin"
admin.site.index_title = "Operations back office"

handler500 = "opsplatform.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", views.account_home, name="account_home"),
    path("account/tokens/", views.api_tokens, name="api_tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    *[
        path(f"account/{config.account_url_prefix}", include(config.account_urls))
        for config in platform_apps()
        if config.account_urls
    ],
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]

# MEDIA_ROOT is never served, in development neither: it holds customers' export files, which
# only the signed, expiring link (`api:export_download`) may hand out.
