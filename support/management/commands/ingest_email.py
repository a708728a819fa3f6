import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from opsplatform.errors import DomainError
from support import services


class Command(BaseCommand):
    help = (
        "Store one raw RFC 822 email as a support ticket or a reply (from FILE, or from "
        "standard input when no file is given), e.g. from an MTA pipe or an IMAP poller."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="a .eml file; standard input when omitted")

    def handle(self, *args, file=None, **options):
        if file:
            try:
                raw = Path(file).read_bytes()
            except OSError as exc:
                raise CommandError(f"Cannot read {file}: {exc.strerror}") from None
        else:
            raw = sys.stdin.buffer.read()
        try:
            result = services.ingest_email(raw=raw)
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        reference = result.ticket.reference if result.ticket else "-"
        detail = f" ({result.detail})" if result.detail else ""
        self.stdout.write(f"{result.result} {reference}{detail}")
