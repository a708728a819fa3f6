"""Every write to support data, by subject: `tickets` (the status machine, threads,
escalation, the agent's page save), `intake` (chat and inbound email, held mail) and `sla`
(clocks and the breach sweep). Callers use `from support import services`."""

from support.services.attachments import delete_files, screen_files, store_attachments
from support.services.common import agent_display_name, clean_subject, normalize_tags
from support.services.intake import (
    ChatResult,
    IngestResult,
    accept_held_email,
    discard_held_email,
    ingest_email,
    ingest_queued_email,
    post_chat_message,
    queue_email,
)
from support.services.sla import (
    DEFAULT_TARGET_MINUTES,
    URGENT_MIN_LEVEL,
    ensure_sla_policies,
    initial_level,
    insert_history_rows,
    sla_targets,
    sweep_sla_breaches,
)
from support.services.tickets import (
    CUSTOMER_MOVES,
    add_message,
    assign_ticket,
    create_ticket,
    escalate_ticket,
    merge_tickets,
    rate_ticket,
    update_ticket,
    update_ticket_details,
    update_ticket_status,
)

__all__ = [
    "CUSTOMER_MOVES",
    "DEFAULT_TARGET_MINUTES",
    "URGENT_MIN_LEVEL",
    "ChatResult",
    "IngestResult",
    "accept_held_email",
    "add_message",
    "agent_display_name",
    "assign_ticket",
    "clean_subject",
    "create_ticket",
    "delete_files",
    "discard_held_email",
    "ensure_sla_policies",
    "escalate_ticket",
    "ingest_email",
    "ingest_queued_email",
    "initial_level",
    "insert_history_rows",
    "merge_tickets",
    "normalize_tags",
    "post_chat_message",
    "queue_email",
    "rate_ticket",
    "screen_files",
    "sla_targets",
    "store_attachments",
    "sweep_sla_breaches",
    "update_ticket",
    "update_ticket_details",
    "update_ticket_status",
]
