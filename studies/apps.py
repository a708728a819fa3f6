from opsplatform import registry

_READ = ["studies.view_study"]
_RUN = ["studies.view_study", "studies.add_study"]


class StudiesConfig(registry.PlatformAppConfig):
    """Longitudinal studies: renewal rate, revenue growth, campaign efficiency, persona impact
    and revenue cohorts, with pinned definitions (docs/metrics.md)."""

    name = "studies"
    verbose_name = "Studies"
    admin_icon = "query_stats"
    api_router = "studies.api.router"
    # Operations run studies and schedules; leadership reads them through the same group.
    group_permissions = {"operations": _RUN, "compliance": _READ}
