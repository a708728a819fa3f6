from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from opsplatform import views
from opsplatform.api import api
from opsplatform.registry import platform_apps

admin.site.site_header = "opsplatform"
admin.site.site_title = "opsplatform admin"
admin.site.index_title = "Operations back office"

handler500 = "opsplatform.views.server_error"

urlpatterns = [
    # First: the API takes most requests, and Django tries the patterns in order.
    path("api/v1/", api.urls),
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(
            template_name="registration/password_reset_done.html"
        ),
        name="password_reset_done",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/password_reset_complete.html"
        ),
        name="password_reset_complete",
    ),
    path("account/", views.account_home, name="account_home"),
    re_path(
        r"^account/campaigns/(?P<campaign_id>[0-9]{1,18})/$",
        views.campaign_detail,
        name="campaign_detail",
    ),
    path("account/profile/", views.profile, name="profile"),
    path("account/password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", views.password_change_done, name="password_change_done"),
    path("account/email/", views.email_change, name="email_change"),
    re_path(
        r"^account/email/confirm/(?P<token>[A-Za-z0-9_:.-]{1,400})/$",
        views.email_change_confirm,
        name="email_change_confirm",
    ),
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
]

# MEDIA_ROOT is never served, in development neither: it holds customers' export files, which
# only the signed, expiring link (`api:export_download`) may hand out.
