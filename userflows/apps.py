from opsplatform import registry


def deletion_banner(request, account) -> list[str]:
    """While the account's deletion is pending, every page says when it will happen and links
    to the page where it can be canceled."""
    from django.urls import reverse
    from django.utils.html import format_html

    from userflows.selectors import pending_deletion_get

    pending = pending_deletion_get(account)
    if pending is None:
        return []
    if pending.status == pending.Status.FAILED or pending.scheduled_for <= pending.requested_at:
        return ["Your account is being deleted."]
    return [
        format_html(
            "Your account is scheduled for deletion on {}. You can cancel this on the "
            '<a href="{}">deletion page</a> until then.',
            f"{pending.scheduled_for:%B %-d, %Y}",
            reverse("userflows:delete"),
        )
    ]


class UserflowsConfig(registry.PlatformAppConfig):
    """Customer self-service: data export, billing, account deletion."""

    name = "userflows"
    api_router = "userflows.api.router"
    api_prefix = ""
    account_urls = "userflows.urls"
    account_url_prefix = ""
    verbose_name = "Self-serve flows"
    admin_icon = "manage_accounts"
    admin_links = [
        (
            "Cancellation reasons",
            "insights",
            "admin:userflows_subscription_cancellation_reasons",
            "view_subscription",
        ),
    ]
    account_nav = [
        ("Exports", "userflows:exports"),
        ("Billing", "userflows:billing"),
        ("Delete account", "userflows:delete"),
    ]
    group_permissions = {
        "operations": [
            "userflows.view_exportrequest",
            "userflows.view_subscription",
            "userflows.view_invoice",
            "userflows.view_plan",
            "userflows.view_paymentmethod",
            "userflows.view_deletionrequest",
            # Actions on a customer's behalf from the account page (userflows.account_admin).
            "userflows.change_subscription",
            "userflows.change_deletionrequest",
        ],
        "compliance": [
            "userflows.view_exportrequest",
            "userflows.view_deletionrequest",
            "userflows.view_deletioncertificate",
        ],
        "support_l2": ["userflows.view_subscription", "userflows.view_invoice"],
        "support_l3": [
            "userflows.view_subscription",
            "userflows.view_invoice",
            "userflows.view_exportrequest",
        ],
        "support_l4": [
            "userflows.view_subscription",
            "userflows.view_invoice",
            "userflows.view_exportrequest",
            "userflows.view_deletionrequest",
        ],
    }

    def account_banners(self, request, account) -> list[str]:
        return deletion_banner(request, account)

    def ensure_reference_data(self):
        from userflows.services.billing import ensure_plans

        ensure_plans()

    def account_panels(self, account, *, user, compact=False):
        from userflows.account_admin import account_panels

        return account_panels(account, user=user, compact=compact)

    def account_actions(self):
        from userflows.account_admin import account_actions

        return account_actions()
