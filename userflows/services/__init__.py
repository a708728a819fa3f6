"""Writes of the self-serve flows, one module per flow; the seed's operation names are
re-exported here."""

from userflows.services.billing import (
    cancel_subscription,
    change_plan,
    get_billing_info,
    resume_subscription,
    update_payment_method,
)
from userflows.services.deletion import cancel_deletion, execute_deletion, request_deletion
from userflows.services.exports import create_export_request, get_export

__all__ = [
    "cancel_deletion",
    "cancel_subscription",
    "change_plan",
    "create_export_request",
    "execute_deletion",
    "get_billing_info",
    "get_export",
    "request_deletion",
    "resume_subscription",
    "update_payment_method",
]
