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
    "deployments.view_rolloutfreeze",
    "deployments.lift_rolloutfreeze",
]
_HEALTH_OPERATE = [
    "deployments.view_accounthealth",
    "deployments.change_accounthealth",
    "deployments.view_atriskaccount",
    "deployments.view_accounthealthcheck",
    "deployments.add_accounthealthcheck",
    "deployments.view_scorecard",
    "deployments.change_scorecard",
    "deployments.view_scorecardfactor",
    "deployments.change_scorecardfactor",
]
# Support leads read health (the agent workspace) and may check an account now.
_HEALTH_SUPPORT = [
    "deployments.view_accounthealth",
    "deployments.view_atriskaccount",
    "deployments.view_accounthealthcheck",
    "deployments.add_accounthealthcheck",
    "deployments.view_scorecard",
    "deployments.view_scorecardfactor",
]
_HEALTH_READ = [
    "deployments.view_accounthealth",
    "deployments.view_atriskaccount",
    "deployments.view_accounthealthcheck",
    "deployments.view_scorecard",
    "deployments.view_scorecardfactor",
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
    admin_links = [
        (
            "Health summary",
            "monitor_heart",
            "admin:deployments_accounthealth_summary",
            "view_accounthealth",
        ),
    ]
    api_router = "deployments.api.router"
    group_permissions = {
        "operations": _OPERATE + _HEALTH_OPERATE,
        "support_l2": _HEALTH_READ,
        "support_l3": _READ + _HEALTH_SUPPORT,
        "support_l4": _READ + _HEALTH_SUPPORT,
        "compliance": _READ + _HEALTH_READ,
    }

    def ensure_reference_data(self):
        from deployments.health.services import ensure_scorecards

        ensure_scorecards()

    def account_panels(self, account, *, user, compact=False):
        from deployments.health.panels import account_panels

        return account_panels(account, user=user, compact=compact)

    def ready(self):
        from deployments.bucketing import register_sqlite_function

        # Gate aggregates call deployments_hash32() in SQL; SQLite gets it per connection.
        connection_created.connect(register_sqlite_function, dispatch_uid="deployments_hash32")

        from deployments import gates
        from deployments.health.selectors import arm_health

        # The health gate of every rollout reads real account health (issue 10).
        gates.set_health_source(arm_health)
