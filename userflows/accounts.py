"""What the self-serve flows attach to a new account, called by the core's `create_account`
in its transaction (found by module name, see `opsplatform.registry`)."""

from userflows.services.billing import start_subscription


def on_account_created(account, *, actor) -> None:
    """Every account has exactly one subscription from the moment it exists."""
    start_subscription(account=account, actor=actor)
