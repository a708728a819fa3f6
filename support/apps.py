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
    # Saved replies: every agent uses them; L4 leads manage them.
    "support.view_macro",
    "support.view_attachment",
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
        "support_l4": [
            *_AGENT,
            "support.change_slapolicy",
            "support.add_macro",
            "support.change_macro",
        ],
        "operations": _READ,
        "compliance": _READ,
    }
    account_nav = [("Support", "support:ticket_list")]

    def ensure_reference_data(self):
        from support.services import ensure_sla_policies

        ensure_sla_policies()

    def account_panels(self, account, *, user, compact=False):
        """The account's tickets (open first) on its 360 page; the ticket page lists the
        requester's other tickets itself, so the compact form is empty."""
        if compact or not user.has_perm("support.view_ticket"):
            return []
        from django.urls import reverse
        from django.utils.http import urlencode

        from opsplatform.registry import AccountPanel, PanelItem
        from support.selectors import account_ticket_list

        tickets = account_ticket_list(account_id=account.pk)
        changelist = reverse("admin:support_ticket_changelist")
        return [
            AccountPanel(
                key="tickets",
                title="Support tickets",
                order=40,
                items=tuple(
                    PanelItem(
                        text=f"{t.reference} {t.subject}",
                        url=reverse("admin:support_ticket_change", args=[t.pk]),
                        detail=f"{t.get_status_display()} · L{t.escalation_level}"
                        + (f" · {t.assignee.get_username()}" if t.assignee else ""),
                        tone="" if t.is_active else "success",
                    )
                    for t in tickets
                ),
                empty="No tickets.",
                more_url=f"{changelist}?{urlencode({'view': 'all', 'q': account.name})}",
            )
        ]
