from django.apps import AppConfig


class SupportConfig(AppConfig):
    """Cross-channel support tickets, SLA clocks and escalation."""

    name = "support"
    verbose_name = "Support"
