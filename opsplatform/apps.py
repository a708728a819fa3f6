from django.db.models.signals import post_migrate

from opsplatform import registry


class OpsplatformConfig(registry.PlatformAppConfig):
    """The shared domain, auth, API root and the conventions every component follows."""

    name = "opsplatform"
    verbose_name = "Accounts and campaigns"
    admin_icon = "podcasts"
    api_router = "opsplatform.api_core.router"
    # Permissions each staff group gets from this app ("app_label.codename").
    group_permissions = {
        "support_l1": ["opsplatform.view_account", "opsplatform.view_campaign"],
        "support_l2": [
            "opsplatform.view_account",
            "opsplatform.view_campaign",
            "opsplatform.view_campaignmetric",
            "opsplatform.view_usageevent",
        ],
        "support_l3": [
            "opsplatform.view_account",
            "opsplatform.view_campaign",
            "opsplatform.view_campaignmetric",
            "opsplatform.view_usageevent",
        ],
        "support_l4": [
            "opsplatform.view_account",
            "opsplatform.change_account",
            "opsplatform.view_campaign",
            "opsplatform.view_campaignmetric",
            "opsplatform.view_usageevent",
        ],
        "operations": [
            "opsplatform.view_account",
            "opsplatform.change_account",
            "opsplatform.view_campaign",
            "opsplatform.view_campaignmetric",
            "opsplatform.view_usageevent",
            "opsplatform.view_sponsor",
            "opsplatform.view_persona",
            # The account page's token panel and revoking a token at the customer's request.
            "opsplatform.view_apitoken",
            "opsplatform.change_apitoken",
        ],
        "compliance": [
            "opsplatform.view_account",
            "opsplatform.view_usageevent",
            "opsplatform.view_apitoken",
        ],
    }

    def ensure_reference_data(self):
        from opsplatform.services import ensure_personas

        ensure_personas()

    def ready(self):
        from opsplatform import services

        # Groups need the permission rows that post_migrate creates, so they follow it.
        post_migrate.connect(services.post_migrate_ensure_groups, dispatch_uid="ensure_groups")
