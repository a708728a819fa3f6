from django.apps import AppConfig

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


class SupportConfig(AppConfig):
    """Cross-channel support tickets, SLA clocks and escalation."""

    name = "support"
    verbose_name = "Support"
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

    @staticmethod
    def ensure_reference_data():
        from support.services import ensure_sla_policies

        ensure_sla_policies()
