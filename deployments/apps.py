from django.db.backends.signals import connection_created

from opsplatform import registry

_OPERATE = [
    "deployments.view_release",
    "deployments.add_release",
    "deployments.change_release",
    "deployments.view_deployment",
    "deployments.add_deployment",
    "deployments.change_deployment",
    "deployments.view_gateevaluation",
    "deployments.view_onboardingversion",
    "deployments.add_onboardingversion",
    "deployments.change_onboardingversion",
    "deployments.view_onboardingassignment",
    "deployments.add_onboardingassignment",
]
_READ = [
    "deployments.view_release",
    "deployments.view_deployment",
    "deployments.view_gateevaluation",
    "deployments.view_onboardingversion",
    "deployments.view_onboardingassignment",
]


class DeploymentsConfig(registry.PlatformAppConfig):
    """Staged, metric-gated rollouts and onboarding experiments (docs/deployments.md)."""

    name = "deployments"
    verbose_name = "Rollouts and onboarding"
    admin_icon = "rocket_launch"
    api_router = "deployments.api.router"
    group_permissions = {
        "operations": _OPERATE,
        "support_l3": _READ,
        "support_l4": _READ,
        "compliance": _READ,
    }

    def ready(self):
        from deployments.bucketing import register_sqlite_function

        # Gate aggregates call deployments_hash32() in SQL; SQLite gets it per connection.
        connection_created.connect(register_sqlite_function, dispatch_uid="deployments_hash32")
