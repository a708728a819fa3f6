"""Storing attachments: the files of one message, checked (support.attachments) and written
to the configured storage (`default_storage`), with a row per file."""

from collections.abc import Sequence

from django.core.files.base import ContentFile
from django.db import transaction

from opsplatform.errors import InvalidInput
from support import attachments as rules
from support.attachments import IncomingFile
from support.models import Attachment, Ticket, TicketMessage


def screen_files(files: Sequence[IncomingFile]) -> tuple[list[IncomingFile], list[str]]:
    """For inbound email, where a bad file must not lose the message: the files that pass
    the checks (up to the count limit) and a note for each one that does not."""
    accepted, notes = [], []
    for file in files:
        name = rules.clean_filename(file.filename)
        if len(accepted) >= rules.max_count():
            notes.append(f"[attachment {name} not stored: more than {rules.max_count()} files]")
            continue
        try:
            rules.check_file(file)
        except InvalidInput as exc:
            notes.append(f"[attachment {name} not stored: {exc.detail}]")
            continue
        accepted.append(file)
    return accepted, notes


@transaction.atomic
def store_attachments(
    *, ticket: Ticket, message: TicketMessage | None, files: Sequence[IncomingFile]
) -> list[Attachment]:
    """Check every file first (all or nothing: one bad file refuses them all, 422), then
    store each one under a random name; the sender's file name is kept on the row."""
    rules.check_count(len(files))
    checked = [(file, rules.check_file(file)) for file in files]
    stored: list[Attachment] = []
    try:
        for file, content_type in checked:
            attachment = Attachment(
                ticket=ticket,
                message=message,
                filename=rules.clean_filename(file.filename),
                content_type=content_type,
                size=len(file.data),
                sha256=rules.sha256(file.data),
            )
            attachment.file.save("upload", ContentFile(file.data), save=False)
            stored.append(attachment)
            attachment.full_clean()
            attachment.save()
    except Exception:
        # The rows roll back with the transaction; the files written so far go too.
        delete_files(stored)
        raise
    return stored


def delete_files(attachments: Sequence[Attachment]) -> int:
    """Remove the stored files of these attachments (the rows are the caller's)."""
    removed = 0
    for attachment in attachments:
        if attachment.file and attachment.file.storage.exists(attachment.file.name):
            attachment.file.storage.delete(attachment.file.name)
            removed += 1
    return removed
