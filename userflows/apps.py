from django.apps import AppConfig


class UserflowsConfig(AppConfig):
    """Customer self-service: data export, billing, account deletion."""

    name = "userflows"
    verbose_name = "Self-serve flows"
