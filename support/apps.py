from opsplatform import registry

_AGENT = [
    "support.view_ticket",
    "support.change_ticket",
    "support.add_ticket",
    "support.view_ticketmessage",
    "support.add_ticketmessage",
    "support.view_escalation",
    "support.view_slapolicy",
    "support.view_csatrating",
    # The review queue of inbound email from unverified senders.
    "support.view_heldemail",
    "support.change_heldemail",
]
_READ = [
    "support.view_ticket",
    "support.view_ticketmessage",
    "support.view_escalation",
    "support.view_slapolicy",
    "support.view_csatrating",
    "support.view_heldemail",
]


class SupportConfig(registry.PlatformAppConfig):
    """Cross-channel support tickets, SLA clocks and escalation."""

    name = "support"
    api_router = "support.api.router"
    api_prefix = "/support/"
    account_urls = "support.urls"
    account_url_prefix = "support/"
    verbose_name = "Support"
    admin_icon = "support_agent"
    admin_links = [
        ("Support dashboard", "monitoring", "admin:support_ticket_dashboard", "view_ticket"),
    ]
    group_permissions = {
        "support_l1": _AGENT,
        "support_l2": _AGENT,
        "support_l3": _AGENT,
        # L4 leads also own the SLA targets.
        "support_l4": [*_AGENT, "support.change_slapolicy"],
        "operations": _READ,
        "compliance": _READ,
    }
    account_nav = [("Support", "support:ticket_list")]

    def ensure_reference_data(self):
        from support.services import ensure_sla_policies

        ensure_sla_policies()
