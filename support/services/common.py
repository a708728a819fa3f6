"""Helpers every support service shares: the ticket row lock, the history-writing save,
tasks queued on commit, and the text rules of subjects, tags and addresses."""

import datetime as dt
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from opsplatform import queueing
from opsplatform.errors import InvalidInput, NotFound
from opsplatform.validation import clean_text
from support import inbound
from support.models import TAGS_VALIDATOR, Ticket

MAX_BODY = inbound.MAX_BODY_CHARS + 100


def normalize_tags(tags: Iterable[str]) -> str:
    cleaned = sorted({t.strip().lower() for t in tags if t and t.strip()})
    value = ",".join(cleaned)
    if len(cleaned) > 20:
        raise InvalidInput("At most 20 tags.", field="tags")
    try:
        TAGS_VALIDATOR(value)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], field="tags") from None
    return value


def clean_subject(value: str) -> str:
    """A subject on one line: CR, LF, tabs and runs of spaces become one space (a line break
    in a subject makes Django refuse every email header built from it)."""
    value = " ".join((value or "").split())
    return clean_text(value, field="subject", max_length=200, label="Subject")


def clean_email(value: str, *, field: str = "requester_email") -> str:
    value = (value or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise InvalidInput("Enter a valid email address.", field=field) from None
    return value


def locked_ticket(ticket: Ticket | int) -> Ticket:
    """The ticket row under `select_for_update`, with the requester loaded for notices."""
    pk = ticket.pk if isinstance(ticket, Ticket) else ticket
    try:
        return (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("account__user")
            .get(pk=pk)
        )
    except Ticket.DoesNotExist:
        raise NotFound("Ticket not found.") from None


def acting_user(actor):
    return actor if actor is not None and actor.is_authenticated else None


def agent_display_name(user) -> str:
    """How an agent signs replies and is named to customers: full name, else username."""
    return (user.get_full_name() or "").strip() or user.get_username()


def save_ticket(ticket: Ticket, *, actor, reason: str, now: dt.datetime) -> None:
    ticket.updated_at = now
    ticket._history_user = acting_user(actor)
    ticket._change_reason = reason[:100]
    ticket.full_clean(validate_constraints=False)
    ticket.save()


def on_commit_task(func: str, *args) -> None:
    """After commit; parked in the database while the broker is down (opsplatform.queueing)."""
    queueing.on_commit_enqueue(func, *args)
