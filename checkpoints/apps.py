from opsplatform import registry

_READ = [
    "checkpoints.view_checkpoint",
    "checkpoints.view_kpidefinition",
    "checkpoints.view_kpiresult",
    "checkpoints.view_kpistate",
    "checkpoints.view_backlogitem",
]
_OPERATE = [
    *_READ,
    "checkpoints.run_checkpoint",
    "checkpoints.add_kpidefinition",
    "checkpoints.change_kpidefinition",
    "checkpoints.change_backlogitem",
    "deployments.view_rolloutfreeze",
    "deployments.lift_rolloutfreeze",
]


class CheckpointsConfig(registry.PlatformAppConfig):
    """Scaling checkpoints: every persona, business function and critical journey against its
    KPI targets, escalated and backlogged at once, with an error budget that freezes rollouts
    (docs/checkpoints.md). Reads the other apps through their selectors and services only."""

    name = "checkpoints"
    verbose_name = "Scaling checkpoints"
    admin_icon = "flag"
    admin_links = [
        (
            "Latest checkpoint",
            "fact_check",
            "admin:checkpoints_checkpoint_latest",
            "view_checkpoint",
        ),
    ]
    api_router = "checkpoints.api.router"
    api_prefix = ""
    # Operations run checkpoints and own the targets; support leads and compliance read them.
    group_permissions = {
        "operations": _OPERATE,
        "support_l3": _READ,
        "support_l4": _READ,
        "compliance": _READ,
    }

    def ensure_reference_data(self):
        from checkpoints.defaults import ensure_default_kpis
        from checkpoints.models import KPIDefinition

        ensure_default_kpis(KPIDefinition, KPIDefinition.history.model)
