"""Parsing of inbound RFC 822 email into what a ticket needs (no database access here)."""

import email
import html
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.utils import parseaddr

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.html import strip_tags

from opsplatform.errors import InvalidInput

# Mail providers accept messages of 25-35 MB with attachments (base64 adds a third): a
# customer's message with a large screenshot must still open a ticket, not bounce.
MAX_RAW_BYTES = 40 * 1024 * 1024
MAX_BODY_CHARS = 200_000
MESSAGE_ID_RE = re.compile(r"<[^<>\s]{1,250}>")
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


@dataclass
class ParsedEmail:
    message_id: str
    from_email: str
    from_name: str
    subject: str
    body: str
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    automatic: str = ""  # why the message is an auto-reply or bounce, or ""

    @property
    def thread_ids(self) -> list[str]:
        """Message-IDs this message answers, most specific first."""
        seen, ordered = set(), []
        for mid in [*self.in_reply_to, *reversed(self.references)]:
            if mid not in seen:
                seen.add(mid)
                ordered.append(mid)
        return ordered[:50]


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a hostile or broken header: fall back to its raw text
        raw = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
        value = raw[0] if raw else ""
    return str(value or "").replace("\x00", "").strip()


def _message_ids(value: str) -> list[str]:
    return MESSAGE_ID_RE.findall(value or "")


def _part_text(part: EmailMessage) -> str:
    """A text part decoded with its declared charset; unknown charsets fall back safely."""
    try:
        return part.get_content()
    except (LookupError, UnicodeDecodeError, AssertionError, KeyError):
        payload = part.get_payload(decode=True) or b""
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("latin-1", errors="replace")


def _html_to_text(value: str) -> str:
    value = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", value)
    value = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>|</tr>|</h\d>", "\n", value)
    text = html.unescape(strip_tags(value))
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        text = ""
    elif part.get_content_type() == "text/html":
        text = _html_to_text(_part_text(part))
    else:
        text = _part_text(part)
    attachments = []
    for attachment in msg.iter_attachments():
        name = attachment.get_filename() or attachment.get_content_type()
        size = len(attachment.get_payload(decode=True) or b"")
        attachments.append(f"[attachment: {name} ({size:,} bytes) not stored]")
    text = text.replace("\x00", "").replace("\r\n", "\n").strip()
    if attachments:
        text = (text + "\n\n" + "\n".join(attachments)).strip()
    if len(text) > MAX_BODY_CHARS:
        text = text[:MAX_BODY_CHARS] + "\n[message truncated]"
    return text


def _automatic(msg: EmailMessage, from_email: str) -> str:
    auto_submitted = _header(msg, "Auto-Submitted").lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = _header(msg, "Precedence").lower()
    if precedence in AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if _header(msg, name):
            return name
    if msg.get_content_type() == "multipart/report":
        return "delivery report"
    if from_email.startswith(BOUNCE_SENDERS):
        return "bounce"
    # An empty envelope sender (`Return-Path: <>`) marks bounces and other notifications.
    if msg.get("Return-Path") is not None and not _header(msg, "Return-Path").strip("<> "):
        return "null sender"
    return ""


def parse_email(raw: bytes) -> ParsedEmail:
    """Parse raw RFC 822 bytes; raises InvalidInput when there is no usable sender."""
    if not raw or not raw.strip():
        raise InvalidInput("The message is empty.", field="body")
    if len(raw) > MAX_RAW_BYTES:
        raise InvalidInput(
            f"The message is larger than {MAX_RAW_BYTES // (1024 * 1024)} MB.", field="body"
        )
    msg = email.message_from_bytes(raw, policy=policy.default)
    from_header = _header(msg, "From")
    name, address = parseaddr(from_header)
    address = address.strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise InvalidInput("The message has no valid From address.", field="from") from None
    subject = " ".join(_header(msg, "Subject").split())[:200] or "(no subject)"
    message_ids = _message_ids(_header(msg, "Message-ID"))
    return ParsedEmail(
        message_id=message_ids[0] if message_ids else "",
        from_email=address[:254],
        from_name=name.replace("\x00", "").strip()[:200],
        subject=subject,
        body=_body(msg),
        in_reply_to=_message_ids(_header(msg, "In-Reply-To")),
        references=_message_ids(_header(msg, "References")),
        automatic=_automatic(msg, address),
    )
