"""Personal data of deployments for an account deletion: the account's health checks and
current health (how often the person signed in, what they paid, what they asked support)."""

from deployments.health.models import AccountHealth, AccountHealthCheck
from opsplatform.registry import ErasureResult


def erase_account(account, *, actor) -> list[ErasureResult]:
    health = AccountHealth.objects.filter(account=account).delete()[0]
    checks = AccountHealthCheck.objects.filter(account=account).delete()[0]
    return [
        ErasureResult("account health", "erased", health),
        ErasureResult("account health checks", "erased", checks),
    ]
