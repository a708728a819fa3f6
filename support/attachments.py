"""Attachment rules shared by every way a file arrives (inbound email, the web form, the
API): limits from settings, the content-type check against the file's first bytes, and the
signed, expiring download links. No database writes here (see services/attachments.py)."""

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.http import urlencode

from opsplatform.errors import InvalidInput

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_COUNT = 10
DEFAULT_LINK_MINUTES = 15
DEFAULT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
)
# What the first bytes of a file must be for the types a browser would render or run.
MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (b"PK\x03\x04",),
}
TEXT_TYPES = ("text/plain", "text/csv")
SIGNING_SALT = "support.attachment"
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\\\:*?\"<>|]+")


def max_bytes() -> int:
    return settings.SUPPORT_ATTACHMENT_MAX_BYTES


def max_count() -> int:
    return settings.SUPPORT_ATTACHMENT_MAX_COUNT


def allowed_types() -> tuple[str, ...]:
    return tuple(getattr(settings, "SUPPORT_ATTACHMENT_TYPES", DEFAULT_TYPES))


def link_minutes() -> int:
    return settings.SUPPORT_ATTACHMENT_LINK_MINUTES


@dataclass(frozen=True)
class IncomingFile:
    """A file as it arrived: the name and type the sender gave, and its bytes."""

    filename: str
    content_type: str
    data: bytes


def clean_filename(value: str) -> str:
    name = _UNSAFE_NAME.sub("_", (value or "").strip()).strip(". ")
    return (name or "attachment")[-150:]


def check_file(file: IncomingFile) -> str:
    """The file's content type once it passes the limits, else InvalidInput (`field` =
    "attachments"): an allowed type, within the size limit, not empty, and bytes that are
    what the type says (images, PDF and ZIP by their signature; text decodes as UTF-8)."""
    name = clean_filename(file.filename)
    content_type = (file.content_type or "").split(";")[0].strip().lower()
    if not file.data:
        raise InvalidInput(f"{name} is empty.", field="attachments", code="attachment_empty")
    if len(file.data) > max_bytes():
        raise InvalidInput(
            f"{name} is larger than {max_bytes() // (1024 * 1024)} MB.",
            field="attachments",
            code="attachment_too_large",
        )
    if content_type not in allowed_types():
        raise InvalidInput(
            f"{name}: files of type {content_type or 'unknown'} are not accepted.",
            field="attachments",
            code="attachment_type",
        )
    signatures = MAGIC.get(content_type)
    if signatures is not None and not file.data.startswith(signatures):
        raise InvalidInput(
            f"{name} is not a {content_type} file.", field="attachments", code="attachment_type"
        )
    if content_type in TEXT_TYPES:
        try:
            file.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"{name} is not UTF-8 text.", field="attachments", code="attachment_type"
            ) from None
    return content_type


def check_count(count: int) -> None:
    if count > max_count():
        raise InvalidInput(
            f"At most {max_count()} attachments per message.",
            field="attachments",
            code="too_many_attachments",
        )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SIGNING_SALT)


def _link_value(attachment) -> str:
    # Bound to the file's checksum: a link never serves another file.
    return f"{attachment.pk}:{attachment.sha256[:16]}"


def sign(attachment) -> str:
    """The token of a download link, valid for SUPPORT_ATTACHMENT_LINK_MINUTES."""
    return _signer().sign(_link_value(attachment))


def download_url(attachment) -> str:
    """The pages' link to a file; the viewer must also be allowed to see the ticket (the
    requester's account or support staff)."""
    token = sign(attachment)
    path = reverse("support:attachment_download", kwargs={"attachment_id": attachment.pk})
    return f"{path}?{urlencode({'token': token})}"


def check_token(attachment, token: str) -> str:
    """'' when the token is genuine, fresh and for this file; else why not ("expired" or
    "invalid")."""
    try:
        value = _signer().unsign(token or "", max_age=dt.timedelta(minutes=link_minutes()))
    except signing.SignatureExpired:
        return "expired"
    except signing.BadSignature:
        return "invalid"
    return "" if value == _link_value(attachment) else "invalid"
