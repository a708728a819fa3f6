"""Email replies without the clutter: the new text of a reply separated from the quoted
history and the signature (mail-parser-reply, which knows the quote headers of Gmail,
Outlook, Apple Mail and other clients in many languages). No database access here."""

import logging
from dataclasses import dataclass

from django.conf import settings
from mailparser_reply import EmailReplyParser

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs", "ja"]
# Replies longer than this are kept whole: quote detection is regex work on the whole text.
MAX_PARSE_CHARS = 50_000


@dataclass(frozen=True)
class SplitReply:
    text: str  # what the sender wrote now
    full: str  # the message as received, or "" when nothing was cut


def split_reply(body: str) -> SplitReply:
    """The new text of an email body and, when quoted history or a signature was cut, the
    whole body (kept for agents and the requester to view). Falls back to the whole body
    when the parser finds nothing, fails, or the body is very long."""
    if not body or len(body) > MAX_PARSE_CHARS:
        return SplitReply(body, "")
    languages = list(getattr(settings, "SUPPORT_REPLY_LANGUAGES", DEFAULT_LANGUAGES))
    try:
        message = EmailReplyParser(languages=languages).read(body)
        first = message.replies[0] if message.replies else None
        text = (first.body if first is not None else "") or message.latest_reply or ""
    except Exception:  # a parser bug must never lose a customer's message
        logger.exception("reply parsing failed; keeping the whole message")
        return SplitReply(body, "")
    text = text.strip()
    if not text or text == body.strip():
        return SplitReply(body, "")
    return SplitReply(text, body)
