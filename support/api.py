"""Support API under /api/v1/support/: tickets from customers and integrations, agent actions,
chat, inbound email and the dashboard metrics."""

import base64
import binascii
import datetime as dt
import hmac
from typing import Annotated

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import FileResponse
from django.urls import reverse
from django.utils.http import urlencode
from ninja import Field, Path, Query, Router, Schema
from ninja.errors import HttpError
from ninja.pagination import paginate
from ninja.responses import Status
from ninja.security import APIKeyHeader
from pydantic import EmailStr, StringConstraints

from opsplatform.auth import api_auth
from opsplatform.errors import Forbidden, InvalidInput, NotFound
from opsplatform.schemas import ErrorOut, Id, Input, NoNul, Pagination, RangeDate, responses
from opsplatform.selectors import account_get
from opsplatform.tenancy import account_of, is_staff, require_account, require_perm
from opsplatform.throttling import note_failed_credential, refuse_if_guessing
from support import attachments as rules
from support import inbound, selectors, services
from support.attachments import IncomingFile
from support.models import Channel, Priority, Ticket, TicketMessage

router = Router(tags=["support"])

CUSTOMER_CHANNELS = {Channel.WEB, Channel.IN_APP, Channel.API}
Subject = Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]
Body = Annotated[str, StringConstraints(min_length=1, max_length=50_000), NoNul]
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$"), NoNul]
Reference = Annotated[str, StringConstraints(max_length=40)]


Base64 = Annotated[str, StringConstraints(min_length=1, max_length=15_000_000), NoNul]


class AttachmentIn(Input):
    """A file sent with a message: its bytes base64-encoded (the body limit of the API
    bounds the total; SUPPORT_ATTACHMENT_MAX_BYTES each, SUPPORT_ATTACHMENT_MAX_COUNT per
    message, an allowed content type matching the bytes)."""

    filename: Annotated[str, StringConstraints(min_length=1, max_length=255), NoNul]
    content_type: Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]
    content_base64: Base64

    def incoming(self) -> IncomingFile:
        try:
            data = base64.b64decode(self.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(
                f"{self.filename}: content_base64 is not valid base64.", field="attachments"
            ) from None
        return IncomingFile(filename=self.filename, content_type=self.content_type, data=data)


class AttachmentOut(Schema):
    id: int
    filename: str
    content_type: str
    size: int
    url: str = Field(description="A signed download link that expires (see the docs)")

    @staticmethod
    def resolve_url(obj):
        return api_download_url(obj)


class TicketIn(Input):
    subject: Subject
    description: Body
    channel: Channel = Channel.API
    priority: Priority = Priority.NORMAL
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    account_id: Id | None = Field(None, description="Staff only: the customer's account")
    requester_email: EmailStr | None = Field(
        None, max_length=254, description="Staff only: a requester without an account"
    )
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=50)


class TicketOut(Schema):
    reference: str
    subject: str
    status: Ticket.Status
    priority: Priority
    channel: Channel
    escalation_level: int
    account_id: int | None
    requester_email: str
    assignee: str | None
    tags: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    first_response_due_at: dt.datetime
    resolution_due_at: dt.datetime
    breached: bool

    @staticmethod
    def resolve_assignee(obj, context):
        request = context["request"] if context else None
        if obj.assignee is None or request is None or not is_staff(request.user):
            return None
        return obj.assignee.get_username()

    @staticmethod
    def resolve_tags(obj):
        return obj.tag_list

    @staticmethod
    def resolve_breached(obj):
        return obj.is_breached()


class MessageOut(Schema):
    id: int
    author_kind: TicketMessage.Author
    author: str | None
    body: str
    signature: str
    full_body: str = Field(description="An email reply as received, quoted text included")
    internal: bool
    channel: Channel
    created_at: dt.datetime
    attachments: list[AttachmentOut]

    @staticmethod
    def resolve_attachments(obj):
        return getattr(obj, "files", [])

    @staticmethod
    def resolve_author(obj, context):
        request = context["request"] if context else None
        if obj.author_kind == TicketMessage.Author.AGENT and not (
            request is not None and is_staff(request.user)
        ):
            return "Support team"
        return obj.author.get_username() if obj.author else (obj.author_email or None)


class TicketDetailOut(TicketOut):
    merged_into: str | None
    messages: list[MessageOut]

    @staticmethod
    def resolve_merged_into(obj):
        return obj.merged_into.reference if obj.merged_into_id else None

    @staticmethod
    def resolve_messages(obj, context):
        user = context["request"].user
        thread = list(selectors.ticket_message_list(user=user, ticket=obj))
        files = selectors.attachments_by_message(user=user, ticket=obj)
        for message in thread:
            message.files = files.get(message.pk, [])
        return thread


class TicketFilters(Schema):
    status: Ticket.Status | None = None
    priority: Priority | None = None
    channel: Channel | None = None
    level: int | None = Field(None, ge=1, le=4)
    assignee: Annotated[str, StringConstraints(pattern=r"^(me|none|[1-9]\d{0,17})$")] | None = (
        Field(None, description='Staff: an agent\'s user id, "me" or "none"')
    )
    tag: Tag | None = None
    breached: bool | None = None
    account_id: Id | None = Field(None, description="Staff only: one account's tickets")
    q: Annotated[str, StringConstraints(max_length=200), NoNul] | None = Field(
        None, description="Search reference, subject, requester email, account name"
    )


class MessageIn(Input):
    body: Body
    internal: bool = False
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=50)


class EscalateIn(Input):
    level: int = Field(ge=1, le=4)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul]


class StatusIn(Input):
    status: Ticket.Status
    notes: Annotated[str, StringConstraints(max_length=10_000), NoNul] = ""


class AssignIn(Input):
    assignee_id: Id | None = Field(description="The agent's user id, or null to unassign")


class MergeIn(Input):
    into: Annotated[str, StringConstraints(min_length=1, max_length=40), NoNul]


class CsatIn(Input):
    rating: int = Field(ge=1, le=5)
    comment: Annotated[str, StringConstraints(max_length=2000), NoNul] = ""


class CsatOut(Schema):
    reference: str
    rating: int
    comment: str

    @staticmethod
    def resolve_reference(obj):
        return obj.ticket.reference


class ChatIn(Input):
    session_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$"), NoNul]
    body: Body
    subject: Subject | None = None


class ChatOut(Schema):
    reference: str
    created: bool
    message_id: int
    status: Ticket.Status


class EscalationOut(Schema):
    reference: str
    from_level: int
    to_level: int
    reason: str
    escalated_by: str | None
    automatic: bool
    created_at: dt.datetime

    @staticmethod
    def resolve_reference(obj):
        return obj.ticket.reference

    @staticmethod
    def resolve_escalated_by(obj):
        return obj.escalated_by.get_username() if obj.escalated_by else None


class InboundOut(Schema):
    result: str = Field(description="created, appended, held, queued, duplicate or ignored")
    reference: str | None
    detail: str


class PercentilesOut(Schema):
    count: int
    median_seconds: float | None
    p90_seconds: float | None


class DurationsOut(Schema):
    all: PercentilesOut
    channel: dict[str, PercentilesOut]
    priority: dict[str, PercentilesOut]


class BreachedOut(Schema):
    reference: str
    subject: str
    priority: str
    status: str
    escalation_level: int
    due_at: dt.datetime | None = Field(alias="next_due_at")


class MetricsOut(Schema):
    date_from: dt.date
    date_to: dt.date
    created: int
    open_total: int
    open_by_status: dict[str, dict[str, int]]
    open_by_level: dict[str, int]
    breached_total: int
    breached: list[BreachedOut]
    first_response_attainment: float | None
    resolution_attainment: float | None
    csat_count: int
    csat_average: float | None
    first_response: DurationsOut
    resolution: DurationsOut


class MetricsFilters(Schema):
    date_from: RangeDate | None = None
    date_to: RangeDate | None = None


def _detail(request, ticket: Ticket) -> Ticket:
    return selectors.ticket_get(user=request.user, reference=ticket.reference)


def _staff_only(request, perm: str) -> None:
    if not is_staff(request.user):
        raise Forbidden("Only support agents can do this.", code="permission_denied")
    require_perm(request.user, perm)


@router.post("/tickets", response=responses({201: TicketDetailOut}), summary="Open a ticket")
def create_ticket(request, payload: TicketIn):
    """Customers open tickets on their own account (channel web, in_app or api). Staff open
    them for an account (`account_id`) or an email requester (`requester_email`)."""
    user = request.user
    if is_staff(user):
        require_perm(user, "support.add_ticket")
        account = account_get(account_id=payload.account_id) if payload.account_id else None
        if account is None and not payload.requester_email:
            raise InvalidInput("Give account_id or requester_email.", field="account_id")
    else:
        account = require_account(user)
        if payload.account_id is not None or payload.requester_email is not None:
            raise InvalidInput(
                "account_id and requester_email are for staff only.", field="account_id"
            )
        if payload.channel not in CUSTOMER_CHANNELS:
            raise InvalidInput(
                "Customers open tickets through web, in_app or api; chat has its own endpoint.",
                field="channel",
            )
    ticket = services.create_ticket(
        subject=payload.subject,
        description=payload.description,
        channel=payload.channel,
        priority=payload.priority,
        tags=payload.tags,
        account=account,
        requester_email=payload.requester_email or "",
        actor=user,
        author_kind=TicketMessage.Author.AGENT
        if is_staff(user)
        else TicketMessage.Author.REQUESTER,
        files=[a.incoming() for a in payload.attachments],
    )
    return Status(201, _detail(request, ticket))


@router.get("/tickets", response=responses({200: list[TicketOut]}), summary="List tickets")
@paginate(Pagination)
def list_tickets(request, filters: Query[TicketFilters]):
    if filters.assignee not in (None, "none") and not is_staff(request.user):
        raise InvalidInput("assignee is a staff filter.", field="assignee")
    return selectors.ticket_listing(
        user=request.user,
        account_id=filters.account_id,
        status=filters.status,
        priority=filters.priority,
        channel=filters.channel,
        level=filters.level,
        assignee=filters.assignee,
        tag=filters.tag,
        breached=filters.breached,
        search=filters.q,
    )


@router.get(
    "/tickets/{reference}",
    response=responses({200: TicketDetailOut}),
    summary="One ticket with its thread",
)
def get_ticket(request, reference: Path[Reference]):
    """Customers get public messages only; agents also see internal notes."""
    return selectors.ticket_get(user=request.user, reference=reference)


@router.post(
    "/tickets/{reference}/messages",
    response=responses({201: MessageOut}),
    summary="Add a reply or an internal note",
)
def add_message(request, reference: Path[Reference], payload: MessageIn):
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    if is_staff(request.user):
        require_perm(request.user, "support.add_ticketmessage")
        kind = TicketMessage.Author.AGENT
    else:
        if payload.internal:
            raise Forbidden("Internal notes are for support agents.", code="permission_denied")
        kind = TicketMessage.Author.REQUESTER
    message = services.add_message(
        ticket=ticket,
        body=payload.body,
        author=request.user,
        author_kind=kind,
        internal=payload.internal,
        channel=None,
        files=[a.incoming() for a in payload.attachments],
    )
    message.files = list(message.attachments.order_by("id"))
    return Status(201, message)


@router.post(
    "/tickets/{reference}/escalate",
    response=responses({200: EscalationOut}),
    summary="Escalate to a higher level (staff)",
)
def escalate(request, reference: Path[Reference], payload: EscalateIn):
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    _staff_only(request, "support.change_ticket")
    return services.escalate_ticket(
        ticket=ticket, level=payload.level, reason=payload.reason, actor=request.user
    )


@router.post(
    "/tickets/{reference}/status",
    response=responses({200: TicketOut}),
    summary="Change status along the transition table",
)
def change_status(request, reference: Path[Reference], payload: StatusIn):
    """Staff make any move the table allows (409 otherwise); a customer may close their
    ticket or reopen a resolved one."""
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    staff = is_staff(request.user)
    if staff:
        require_perm(request.user, "support.change_ticket")
    ticket = services.update_ticket_status(
        ticket=ticket,
        status=payload.status,
        notes=payload.notes,
        actor=request.user,
        by_customer=not staff,
    )
    return _detail(request, ticket)


@router.post(
    "/tickets/{reference}/assign",
    response=responses({200: TicketOut}),
    summary="Assign to an agent (staff)",
)
def assign(request, reference: Path[Reference], payload: AssignIn):
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    _staff_only(request, "support.change_ticket")
    assignee = None
    if payload.assignee_id is not None:
        assignee = get_user_model().objects.filter(pk=payload.assignee_id).first()
        if assignee is None:
            raise InvalidInput("No such agent.", field="assignee_id")
    ticket = services.assign_ticket(ticket=ticket, assignee=assignee, actor=request.user)
    return _detail(request, ticket)


@router.post(
    "/tickets/{reference}/merge",
    response=responses({200: TicketOut}),
    summary="Merge a duplicate into another ticket (staff)",
)
def merge(request, reference: Path[Reference], payload: MergeIn):
    source = selectors.ticket_get(user=request.user, reference=reference)
    _staff_only(request, "support.change_ticket")
    target = selectors.ticket_get(user=request.user, reference=payload.into)
    target = services.merge_tickets(source=source, target=target, actor=request.user)
    return _detail(request, target)


@router.post(
    "/tickets/{reference}/csat",
    response=responses({201: CsatOut}),
    summary="Rate a resolved ticket (customer)",
)
def rate(request, reference: Path[Reference], payload: CsatIn):
    ticket = selectors.ticket_get(user=request.user, reference=reference)
    if is_staff(request.user) or account_of(request.user) is None:
        raise Forbidden("Only the requester can rate a ticket.", code="permission_denied")
    return Status(
        201, services.rate_ticket(ticket=ticket, rating=payload.rating, comment=payload.comment)
    )


@router.post(
    "/chat/messages", response=responses({200: ChatOut}), summary="Send a chat message (customer)"
)
def chat_message(request, payload: ChatIn):
    """All messages of one chat session (`session_id`) form one ticket thread; the first
    opens the ticket."""
    if is_staff(request.user):
        raise Forbidden(
            "Agents answer chats with POST tickets/{reference}/messages.", code="permission_denied"
        )
    account = require_account(request.user)
    result = services.post_chat_message(
        account=account,
        session_id=payload.session_id,
        body=payload.body,
        author=request.user,
        subject=payload.subject or "",
    )
    return {
        "reference": result.ticket.reference,
        "created": result.created,
        "message_id": result.message.id,
        "status": result.ticket.status,
    }


@router.get(
    "/metrics", response=responses({200: MetricsOut}), summary="Support dashboard figures (staff)"
)
def metrics(request, filters: Query[MetricsFilters]):
    _staff_only(request, "support.view_ticket")
    m = selectors.support_metrics_get(
        user=request.user, date_from=filters.date_from, date_to=filters.date_to
    )
    return {
        "date_from": m.date_from,
        "date_to": m.date_to,
        "created": m.created,
        "open_total": m.open_total,
        "open_by_status": {
            s: {str(k): v for k, v in row.items()} for s, row in m.open_by_status.items()
        },
        "open_by_level": {str(k): v for k, v in m.open_by_level.items()},
        "breached_total": m.breached_total,
        "breached": [
            {
                **{f: getattr(t, f) for f in ("subject", "priority", "status", "escalation_level")},
                "reference": t.reference,
                "next_due_at": t.next_due_at,
            }
            for t in m.breached
        ],
        "first_response_attainment": m.first_response_attainment,
        "resolution_attainment": m.resolution_attainment,
        "csat_count": m.csat_count,
        "csat_average": m.csat_average,
        "first_response": _durations(m.first_response),
        "resolution": _durations(m.resolution),
    }


def _durations(d: dict) -> dict:
    return {
        "all": vars(d["all"]),
        "channel": {k: vars(v) for k, v in d["channel"].items()},
        "priority": {k: vars(v) for k, v in d["priority"].items()},
    }


# --- inbound email ----------------------------------------------------------------------------

INBOUND_SECRET = "inbound-secret"  # noqa: S105 (a marker, not a secret)
INBOUND_TYPES = {"message/rfc822", "text/plain"}


class InboundSecretAuth(APIKeyHeader):
    """`X-Inbound-Secret: <SUPPORT_INBOUND_EMAIL_SECRET>` for the mail provider's webhook."""

    param_name = "X-Inbound-Secret"

    def authenticate(self, request, key):
        if not key:
            return None  # no secret offered: the staff bearer token may still authenticate
        refuse_if_guessing(request, "inbound_secret")
        secret = getattr(settings, "SUPPORT_INBOUND_EMAIL_SECRET", "")
        if secret and hmac.compare_digest(key.encode(), secret.encode()):
            return INBOUND_SECRET
        note_failed_credential(request, "inbound_secret")
        return None


@router.post(
    "/inbound-email",
    auth=[InboundSecretAuth(), *api_auth],
    response=responses({201: InboundOut, 200: InboundOut, 202: InboundOut, 415: ErrorOut}),
    summary="Receive one raw RFC 822 email",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "message/rfc822": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
def inbound_email(request):
    """The raw message is the body (`Content-Type: message/rfc822` or `text/plain`).
    Authenticate with `X-Inbound-Secret` or a staff token with `support.ingest_email`.
    A new message opens a ticket (201); a reply joins its ticket; a repeated Message-ID,
    an auto-reply or a bounce stores nothing (200); a message whose sender our MTA did not
    authenticate is held for an agent's review (202); a message over 1 MB is parsed by a
    background worker (202, `queued`) once its MIME structure passed the checks. Too many
    MIME parts or too deep a nesting answers 422 (`too_many_parts`, `too_deeply_nested`)."""
    if request.auth != INBOUND_SECRET:
        _staff_only(request, "support.ingest_email")
    if request.content_type not in INBOUND_TYPES:
        raise HttpError(415, "Send the raw message as message/rfc822 or text/plain.")
    # Read the stream ourselves: request.body would stop at DATA_UPLOAD_MAX_MEMORY_SIZE (5 MB),
    # and an email with attachments is often larger.
    raw = request.read(inbound.MAX_RAW_BYTES + 1)
    if len(raw) > inbound.MAX_RAW_BYTES:
        limit = inbound.MAX_RAW_BYTES // (1024 * 1024)
        raise HttpError(413, f"The message is larger than {limit} MB.")
    if len(raw) > inbound.PARSE_IN_REQUEST_BYTES:
        result = services.queue_email(raw=raw)
    else:
        result = services.ingest_email(raw=raw)
    body = {
        "result": result.result,
        "reference": result.ticket.reference if result.ticket else None,
        "detail": result.detail,
    }
    code = {"created": 201, "held": 202, "queued": 202}.get(result.result, 200)
    return Status(code, body)


def api_download_url(attachment) -> str:
    """The API's signed, expiring link to a file (the caller must still be allowed to see
    the ticket: bearer token or session)."""
    token = rules.sign(attachment)
    path = reverse("api:support_attachment_download", kwargs={"attachment_id": attachment.pk})
    return f"{path}?{urlencode({'token': token})}"


@router.get(
    "/attachments/{attachment_id}",
    response=responses({200: None}),
    url_name="support_attachment_download",
    summary="Download an attachment (signed link)",
)
def download_attachment(request, attachment_id: Path[Id], token: str = ""):
    attachment = selectors.attachment_get(user=request.user, attachment_id=attachment_id)
    problem = rules.check_token(attachment, token)
    if problem == "expired":
        raise NotFound(
            "This link has expired; read the ticket again for a fresh one.", code="link_expired"
        )
    if problem or not attachment.file.storage.exists(attachment.file.name):
        raise NotFound("Attachment not found.")
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
