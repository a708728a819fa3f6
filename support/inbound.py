"""Parsing of inbound RFC 822 email into what a ticket needs (no database access here):
bounded MIME parsing, and the sender check from our MTA's Authentication-Results."""

import html
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesFeedParser
from email.utils import parseaddr

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.html import strip_tags

from opsplatform.errors import InvalidInput
from opsplatform.validation import strip_nul
from support.attachments import IncomingFile

# Mail providers accept messages of 25-35 MB with attachments (base64 adds a third): a
# customer's message with a large screenshot must still open a ticket, not bounce.
MAX_RAW_BYTES = 40 * 1024 * 1024
MAX_BODY_CHARS = 200_000
# Larger messages (attachments) are parsed by a worker: decoding them takes seconds.
PARSE_IN_REQUEST_BYTES = 1024 * 1024
MESSAGE_ID_RE = re.compile(r"<[^<>\s]{1,250}>")
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply", "auto-reply"}
BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


# MIME structure limits (settings INBOUND_MAX_PARTS / INBOUND_MAX_DEPTH override them): a
# hostile message with thousands of parts or deep nesting must not tie up a worker.
DEFAULT_MAX_PARTS = 500
DEFAULT_MAX_DEPTH = 20
# Postfix's header_size_limit is 100 KB: a longer header block is not a real message.
MAX_HEADER_BYTES = 128 * 1024
_DELIMITER_RE = re.compile(rb"^--([^\r\n]{1,998}?)[ \t]*\r?$", re.MULTILINE)
_BLANK_LINE_RE = re.compile(rb"^\r?$", re.MULTILINE)
_FOLD_RE = re.compile(rb"\r?\n[ \t]+")
_CONTENT_TYPE_RE = re.compile(rb"^content-type:[ \t]*([^;\s]*)([^\r\n]*)", re.I | re.M)
_BOUNDARY_RE = re.compile(rb'boundary[ \t]*=[ \t]*(?:"([^"\r\n]*)"|([^;\s]+))', re.I)


@dataclass(frozen=True)
class SenderCheck:
    """Whether our MTA authenticated the From domain, and why (shown to agents)."""

    verified: bool
    reason: str


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
    sender: "SenderCheck" = field(default_factory=lambda: SenderCheck(False, "not checked"))
    attachments: list[IncomingFile] = field(default_factory=list)

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
    return strip_nul(str(value or "")).strip()


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
    text = strip_nul(text).replace("\r\n", "\n").strip()
    if len(text) > MAX_BODY_CHARS:
        text = text[:MAX_BODY_CHARS] + "\n[message truncated]"
    return text


def _attachments(msg: EmailMessage) -> list[IncomingFile]:
    """The message's attached files as sent (checked and stored by the services)."""
    files = []
    for attachment in msg.iter_attachments():
        try:
            name = attachment.get_filename() or ""
        except Exception:  # a malformed RFC 2231 name: keep the file, not the name
            name = ""
        files.append(
            IncomingFile(
                filename=strip_nul(name) or attachment.get_content_type(),
                content_type=attachment.get_content_type(),
                data=attachment.get_payload(decode=True) or b"",
            )
        )
    return files


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


def parse_email(
    raw: bytes,
    *,
    authserv_id: str = "",
    max_parts: int = DEFAULT_MAX_PARTS,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> ParsedEmail:
    """Parse raw RFC 822 bytes; raises InvalidInput when there is no usable sender or the
    MIME structure exceeds the limits. `authserv_id` names the trusted MTA whose
    Authentication-Results decide whether the sender is verified."""
    if not raw or not raw.strip():
        raise InvalidInput("The message is empty.", field="body")
    if len(raw) > MAX_RAW_BYTES:
        raise InvalidInput(
            f"The message is larger than {MAX_RAW_BYTES // (1024 * 1024)} MB.", field="body"
        )
    check_structure(raw, max_parts=max_parts, max_depth=max_depth)
    try:
        return _parsed(_bounded_parse(raw, max_parts=max_parts), authserv_id=authserv_id)
    except RecursionError:  # nesting check_structure could not see (the stdlib recurses)
        raise _too_deep(max_depth) from None


def _parsed(msg: EmailMessage, *, authserv_id: str) -> ParsedEmail:
    name, address = parseaddr(_header(msg, "From"))
    address = address.strip().lower()[:254]
    try:
        validate_email(address)
    except ValidationError:
        raise InvalidInput("The message has no valid From address.", field="from") from None
    subject = " ".join(_header(msg, "Subject").split())[:200] or "(no subject)"
    message_ids = _message_ids(_header(msg, "Message-ID"))
    return ParsedEmail(
        message_id=message_ids[0] if message_ids else "",
        from_email=address,
        from_name=strip_nul(name).strip()[:200],
        subject=subject,
        body=_body(msg),
        attachments=_attachments(msg),
        in_reply_to=_message_ids(_header(msg, "In-Reply-To")),
        references=_message_ids(_header(msg, "References")),
        automatic=_automatic(msg, address),
        sender=check_sender(
            _auth_results(msg), from_domain=_domain(address), authserv_id=authserv_id
        ),
    )


# --- bounded MIME parsing -------------------------------------------------------------------


def _too_many_parts(max_parts: int) -> InvalidInput:
    return InvalidInput(
        f"The message has more than {max_parts:,} MIME parts.", code="too_many_parts", field="body"
    )


def _too_deep(max_depth: int) -> InvalidInput:
    return InvalidInput(
        f"The message nests MIME parts more than {max_depth} levels deep.",
        code="too_deeply_nested",
        field="body",
    )


def _entity_headers(raw: bytes, pos: int) -> tuple[bytes, bytes, int | None]:
    """(content type, boundary, start of body) of the MIME entity whose headers start at
    `pos`; a header block longer than MAX_HEADER_BYTES is refused (it would also let the
    scan's work grow with the message size for every part)."""
    window_end = min(len(raw), pos + MAX_HEADER_BYTES)
    if pos >= len(raw):
        return b"", b"", None
    blank = _BLANK_LINE_RE.search(raw, pos, window_end)
    if blank is None and window_end < len(raw):
        raise InvalidInput(
            f"A header block of the message is longer than {MAX_HEADER_BYTES // 1024} KB.",
            code="headers_too_large",
            field="body",
        )
    block = raw[pos : blank.start() if blank else window_end]
    body = blank.end() + 1 if blank and blank.end() < len(raw) else None
    match = _CONTENT_TYPE_RE.search(_FOLD_RE.sub(b" ", block))
    if match is None:
        return b"", b"", body
    boundary = _BOUNDARY_RE.search(match.group(2))
    value = (boundary.group(1) or boundary.group(2) or b"") if boundary else b""
    return match.group(1).lower(), value, body


def check_structure(raw: bytes, *, max_parts: int, max_depth: int) -> None:
    """Count MIME entities and their nesting with a linear scan of boundary lines, before
    the (recursive, slow on many parts) stdlib parser sees the message. Raises InvalidInput
    (`too_many_parts`, `too_deeply_nested`) past the limits."""
    parts = 0
    open_multiparts: list[tuple[bytes, int]] = []  # (boundary, nesting depth), innermost last

    def enter(pos: int | None, depth: int) -> None:
        nonlocal parts
        while pos is not None:
            parts += 1
            if parts > max_parts:
                raise _too_many_parts(max_parts)
            content_type, boundary, body = _entity_headers(raw, pos)
            if content_type.startswith(b"multipart/") and boundary:
                if depth + 1 > max_depth:
                    raise _too_deep(max_depth)
                open_multiparts.append((boundary, depth + 1))
                return
            if content_type != b"message/rfc822":
                return
            depth += 1  # an attached message: its own headers start the body
            if depth > max_depth:
                raise _too_deep(max_depth)
            pos = body

    enter(0, 0)
    for match in _DELIMITER_RE.finditer(raw):
        if not open_multiparts:
            break
        line = match.group(1)
        for index in range(len(open_multiparts) - 1, -1, -1):
            boundary, depth = open_multiparts[index]
            if line == boundary:
                del open_multiparts[index + 1 :]  # an outer boundary closes inner parts
                enter(match.end() + 1 if match.end() < len(raw) else None, depth)
                break
            if line == boundary + b"--":
                del open_multiparts[index:]
                break


class _PartLimit(Exception):
    """Raised by the message factory once the parser has made `max_parts` entities."""


def _bounded_parse(raw: bytes, *, max_parts: int) -> EmailMessage:
    """The stdlib parser with a message factory that stops it after `max_parts` entities
    (a second guard behind check_structure, e.g. for RFC 2231 boundaries it does not read)."""
    created = 0

    def factory(policy=policy.default) -> EmailMessage:
        nonlocal created
        created += 1
        if created > max_parts:
            raise _PartLimit
        return EmailMessage(policy=policy)

    parser = BytesFeedParser(_factory=factory, policy=policy.default)
    created = 0  # the parser calls the factory once to probe it
    try:
        parser.feed(raw)
        return parser.close()
    except _PartLimit:
        raise _too_many_parts(max_parts) from None


# --- sender authentication (RFC 8601 Authentication-Results) --------------------------------


@dataclass(frozen=True)
class AuthResult:
    method: str
    result: str
    props: dict[str, str]


def _strip_comments(value: str) -> str:
    value = re.sub(r'"(?:[^"\\]|\\.)*"', '""', value)
    for _ in range(5):  # nested comments, innermost first
        stripped = re.sub(r"\([^()]*\)", " ", value)
        if stripped == value:
            break
        value = stripped
    return value


def parse_auth_results(value: str) -> tuple[str, list[AuthResult]]:
    """(authserv-id, results) of one Authentication-Results header value."""
    segments = _strip_comments(" ".join(value.split())).split(";")
    head = segments[0].split()
    authserv_id = head[0].lower() if head else ""
    results = []
    for segment in segments[1:]:
        tokens = segment.split()
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        props = {}
        for token in tokens[1:]:
            name, sep, prop = token.partition("=")
            if sep and "." in name:
                props[name.lower()] = prop.strip('"').lower()
        results.append(AuthResult(method.split("/")[0].lower(), result.lower(), props))
    return authserv_id, results


def _auth_results(msg: EmailMessage) -> list[str]:
    """Authentication-Results header values, topmost (added last, nearest us) first."""
    return [str(v) for k, v in msg.raw_items() if k.lower() == "authentication-results"]


def _domain(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip().strip(".").lower()


def aligned(domain: str, from_domain: str) -> bool:
    """Relaxed DMARC alignment, approximated without the public suffix list: the same
    domain, or one a subdomain of the other (the shorter having at least two labels)."""
    domain, from_domain = _domain(domain), _domain(from_domain)
    if not domain or not from_domain:
        return False
    if domain == from_domain:
        return True
    shorter, longer = sorted((domain, from_domain), key=len)
    return "." in shorter and longer.endswith("." + shorter)


def check_sender(headers: list[str], *, from_domain: str, authserv_id: str) -> SenderCheck:
    """Verified when the trusted MTA says DMARC passed for the From domain, or (no DMARC
    result, or dmarc=none) an aligned DKIM signature or aligned SPF passed.

    Trusted headers: the run of Authentication-Results headers at the top of the message
    that carry `authserv_id`; the first header with another authserv-id ends the run, and
    anything below it (which the sender could have written) is ignored. Within the run a
    DMARC or SPF result counts as pass only if no trusted header reports anything else."""
    if not authserv_id:
        return SenderCheck(False, "no trusted authserv-id is configured")
    trusted: list[AuthResult] = []
    trusted_headers = 0
    for value in headers:
        server, results = parse_auth_results(value)
        if server != authserv_id:
            break
        trusted_headers += 1
        trusted.extend(results)
    if not trusted_headers:
        return SenderCheck(False, f"no Authentication-Results from {authserv_id} at the top")
    dmarc = [r for r in trusted if r.method == "dmarc"]
    if dmarc and any(r.result != "none" for r in dmarc):
        if all(r.result == "pass" for r in dmarc) and all(
            aligned(r.props.get("header.from", from_domain), from_domain) for r in dmarc
        ):
            return SenderCheck(True, "dmarc=pass")
        failed = next((r for r in dmarc if r.result != "pass"), None)
        if failed is None:
            return SenderCheck(False, "dmarc=pass for another domain than From")
        return SenderCheck(False, f"dmarc={failed.result}")
    for r in trusted:
        if r.method == "dkim" and r.result == "pass":
            signer = r.props.get("header.d") or r.props.get("header.i", "")
            if aligned(signer, from_domain):
                return SenderCheck(True, f"dkim=pass (d={_domain(signer)})")
    spf = [r for r in trusted if r.method == "spf"]
    if spf and all(r.result == "pass" for r in spf):
        mailfrom = spf[0].props.get("smtp.mailfrom", "")
        if all(aligned(r.props.get("smtp.mailfrom", ""), from_domain) for r in spf):
            return SenderCheck(True, f"spf=pass (mailfrom {_domain(mailfrom)})")
    return SenderCheck(False, "no DMARC pass and no aligned DKIM or SPF pass")
