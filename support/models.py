"""Support tickets from every channel, their threads, escalations, SLA policies and CSAT."""

import datetime as dt
import re

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from opsplatform.models import Account
from opsplatform.transitions import StatusMachine

REFERENCE_PREFIX = "SUP-"
REFERENCE_RE = re.compile(r"\bSUP-?(\d{1,12})\b", re.IGNORECASE)
TAG_RE = r"[a-z0-9][a-z0-9_-]{0,39}"
TAGS_VALIDATOR = RegexValidator(
    rf"^({TAG_RE}(,{TAG_RE})*)?$",
    "Tags are lowercase words (letters, digits, - and _) separated by commas.",
)
MAX_LEVEL = 4


def format_reference(ticket_id: int) -> str:
    return f"{REFERENCE_PREFIX}{ticket_id:06d}"


def parse_reference(text: str) -> int | None:
    """The ticket id in `SUP-000123` (also `sup123`, or inside a subject), or None."""
    match = REFERENCE_RE.search(text or "")
    if match is None:
        return None
    value = int(match.group(1))
    return value if 0 < value < 2**63 else None


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    CHAT = "chat", "Chat"
    WEB = "web", "Web form"
    IN_APP = "in_app", "In-app"
    API = "api", "API"


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class SLAPolicy(models.Model):
    """First-response and resolution targets for one priority (edited by support leads)."""

    priority = models.CharField(max_length=10, choices=Priority.choices, unique=True)
    first_response_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(60 * 24 * 90)]
    )
    resolution_minutes = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(60 * 24 * 365)]
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        ordering = ["priority"]

    def __str__(self):
        return f"{self.get_priority_display()}: first response {self.first_response_minutes} min"

    @property
    def first_response(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.first_response_minutes)

    @property
    def resolution(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.resolution_minutes)


class Ticket(models.Model):
    """One customer request, whatever channel it came from; `reference` is `SUP-000123`."""

    class Status(models.TextChoices):
        NEW = "new", "New"
        OPEN = "open", "Open"
        PENDING = "pending", "Pending (waiting on customer)"
        ON_HOLD = "on_hold", "On hold"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    ACTIVE_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)
    # Statuses whose SLA clocks run (pending pauses them).
    CLOCK_STATUSES = (Status.NEW, Status.OPEN, Status.ON_HOLD)
    # Current status -> statuses it may move to; every move goes through
    # opsplatform.transitions.transition (support.services.tickets adds the SLA clocks).
    STATUS_MACHINE = StatusMachine(
        noun="ticket",
        table={
            "new": {"open", "pending", "on_hold", "resolved", "closed"},
            "open": {"pending", "on_hold", "resolved", "closed"},
            "pending": {"open", "on_hold", "resolved", "closed"},
            "on_hold": {"open", "pending", "resolved", "closed"},
            "resolved": {"open", "closed"},
            "closed": set(),
        },
        stamps={"resolved": "resolved_at", "closed": "closed_at"},
    )

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets"
    )
    requester_email = models.EmailField(blank=True)
    requester_name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=200)
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEW)
    escalation_level = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(MAX_LEVEL)]
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tickets",
    )
    tags = models.CharField(max_length=500, blank=True, validators=[TAGS_VALIDATOR])
    chat_session_id = models.CharField(max_length=64, blank=True)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_tickets"
    )
    follow_up_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    first_response_due_at = models.DateTimeField()
    resolution_due_at = models.DateTimeField()
    # Set while pending on the customer: the clocks resume shifted by the paused time.
    sla_paused_at = models.DateTimeField(null=True, blank=True)
    # When the breach sweep escalated this ticket for each kind of breach (once per breach).
    first_response_breach_escalated_at = models.DateTimeField(null=True, blank=True)
    resolution_breach_escalated_at = models.DateTimeField(null=True, blank=True)
    # When the requester was emailed that we received the ticket, and that it was resolved
    # (bookkeeping of the notification tasks, which makes them safe to run twice).
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolution_notified_at = models.DateTimeField(null=True, blank=True)
    history = HistoricalRecords(
        excluded_fields=["updated_at", "acknowledged_at", "resolution_notified_at"]
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("ingest_email", "Can submit inbound email")]
        indexes = [
            models.Index(fields=["status", "escalation_level"]),
            models.Index(fields=["account", "created_at"]),
            models.Index(fields=["assignee", "status"]),
            models.Index(fields=["requester_email"]),
            models.Index(fields=["status", "first_response_due_at"]),
            models.Index(fields=["status", "resolution_due_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(escalation_level__gte=1) & Q(escalation_level__lte=MAX_LEVEL),
                name="ticket_level_1_to_4",
                violation_error_message=f"The escalation level must be between 1 and {MAX_LEVEL}.",
            ),
            models.CheckConstraint(
                condition=Q(account__isnull=False) | ~Q(requester_email=""),
                name="ticket_has_requester",
                violation_error_message=(
                    "A ticket needs a requester: choose an account or enter the requester's email."
                ),
            ),
            models.UniqueConstraint(
                fields=["account", "chat_session_id"],
                condition=~Q(chat_session_id=""),
                name="ticket_unique_chat_session",
                violation_error_message="This account already has a ticket for this chat session.",
            ),
        ]

    def __str__(self):
        return f"{self.reference} {self.subject}"

    @property
    def reference(self) -> str:
        return format_reference(self.pk) if self.pk else ""

    @property
    def tag_list(self) -> list[str]:
        return [t for t in self.tags.split(",") if t]

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    def first_response_breached(self, now: dt.datetime | None = None) -> bool:
        if self.first_response_at is not None or not self.is_active:
            return False
        return self.first_response_due_at < (self.sla_paused_at or now or timezone.now())

    def resolution_breached(self, now: dt.datetime | None = None) -> bool:
        if self.resolved_at is not None or not self.is_active:
            return False
        return self.resolution_due_at < (self.sla_paused_at or now or timezone.now())

    def is_breached(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.first_response_breached(now) or self.resolution_breached(now)

    @property
    def next_due_at(self) -> dt.datetime | None:
        """The SLA deadline an agent should look at: first response, then resolution."""
        if not self.is_active:
            return None
        if self.first_response_at is None:
            return self.first_response_due_at
        return self.resolution_due_at

    @classmethod
    def first_response_breached_q(cls, now: dt.datetime) -> Q:
        """Active, not yet answered, past its first-response due time; a pending ticket's
        clock stopped at `sla_paused_at`."""
        return Q(first_response_at__isnull=True) & (
            Q(status__in=cls.CLOCK_STATUSES, first_response_due_at__lt=now)
            | Q(status=cls.Status.PENDING, first_response_due_at__lt=F("sla_paused_at"))
        )

    @classmethod
    def resolution_breached_q(cls, now: dt.datetime) -> Q:
        return Q(resolved_at__isnull=True) & (
            Q(status__in=cls.CLOCK_STATUSES, resolution_due_at__lt=now)
            | Q(status=cls.Status.PENDING, resolution_due_at__lt=F("sla_paused_at"))
        )

    @classmethod
    def breached_q(cls, now: dt.datetime) -> Q:
        return cls.first_response_breached_q(now) | cls.resolution_breached_q(now)


class TicketMessage(models.Model):
    """One message of a thread: a requester's message, an agent's public reply or an
    internal note (never shown nor sent to the customer)."""

    class Author(models.TextChoices):
        REQUESTER = "requester", "Requester"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages")
    author_kind = models.CharField(max_length=10, choices=Author.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="ticket_messages",
    )
    author_email = models.EmailField(blank=True)
    body = models.TextField()
    internal = models.BooleanField(default=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # RFC 5322 Message-ID (inbound, or the one we sent), for threading and deduplication.
    message_id = models.CharField(max_length=255, blank=True)
    # An email reply as received, quoted history and signature included, when `body` keeps
    # only the new text (support.replies); empty when nothing was cut.
    full_body = models.TextField(blank=True)
    # The display name a public agent reply is signed with (emailed and shown after the body).
    signature = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="ticket_message_unique_message_id",
                violation_error_message="Another message already has this email Message-ID.",
            ),
            models.CheckConstraint(
                condition=Q(internal=False) | ~Q(author_kind="requester"),
                name="ticket_message_requester_never_internal",
                violation_error_message="A message from the requester cannot be an internal note.",
            ),
        ]

    def __str__(self):
        kind = "note" if self.internal else self.author_kind
        return f"{kind} on {format_reference(self.ticket_id)} @ {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def signed_body(self) -> str:
        return f"{self.body}\n\n— {self.signature}" if self.signature else self.body


class Escalation(models.Model):
    """A move up the support levels, by an agent (with a reason) or by the SLA sweep."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="escalations")
    from_level = models.PositiveSmallIntegerField()
    to_level = models.PositiveSmallIntegerField()
    reason = models.TextField()
    escalated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    automatic = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["automatic", "notified_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(to_level__gt=F("from_level")),
                name="escalation_upward_only",
                violation_error_message=(
                    "An escalation must go to a higher level than the one it comes from."
                ),
            ),
        ]

    def __str__(self):
        who = "automatic" if self.automatic else (self.escalated_by or "agent")
        return f"{format_reference(self.ticket_id)} L{self.from_level}→L{self.to_level} ({who})"


class CSATRating(models.Model):
    """The requester's satisfaction rating (1 to 5) after resolution; one per ticket."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat")
    rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "CSAT rating"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__gte=1) & Q(rating__lte=5),
                name="csat_rating_1_to_5",
                violation_error_message="The rating must be between 1 and 5.",
            ),
        ]

    def __str__(self):
        return f"{format_reference(self.ticket_id)}: {self.rating}/5"


class HeldEmail(models.Model):
    """An inbound email whose sender our MTA did not authenticate (no DMARC pass, nor an
    aligned DKIM or SPF pass): kept out of every ticket, and unacknowledged, until an agent
    accepts the sender; then it is threaded like any verified email."""

    class Status(models.TextChoices):
        HELD = "held", "Held for review"
        ACCEPTED = "accepted", "Accepted"
        DISCARDED = "discarded", "Discarded"

    from_email = models.EmailField()
    from_name = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    message_id = models.CharField(max_length=255, blank=True)
    # Message-IDs the email answers (In-Reply-To, then References), space-separated.
    thread_ids = models.TextField(blank=True)
    reason = models.CharField(max_length=200, help_text="Why the sender is unverified")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.HELD)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "unverified inbound email"
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["status", "received_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="held_email_unique_message_id",
                violation_error_message="An email with this Message-ID is already held.",
            ),
        ]

    def __str__(self):
        return f"{self.from_email}: {self.subject}"


class QueuedEmail(models.Model):
    """A large inbound email accepted by the webhook and parsed by a worker, so a web worker
    is not tied up decoding megabytes of attachments; the raw bytes are dropped once done."""

    raw = models.BinaryField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=20, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    ticket = models.ForeignKey(
        Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self):
        return f"inbound email #{self.pk} ({self.result or 'queued'})"


PLACEHOLDER_RE = re.compile(r"{{\s*([a-z_]+)\s*}}")
MACRO_PLACEHOLDERS = ("requester_name", "reference", "agent_name")


class Macro(models.Model):
    """A saved reply agents insert into the reply box; `{{ requester_name }}`,
    `{{ reference }}` and `{{ agent_name }}` are filled in for the ticket. Applying it may
    also move the ticket to `status`."""

    name = models.CharField(max_length=100, unique=True)
    body = models.TextField(max_length=20_000)
    status = models.CharField(
        max_length=10,
        choices=Ticket.Status.choices,
        blank=True,
        help_text="Optional: the status the ticket moves to when the macro is sent.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        unknown = sorted(set(PLACEHOLDER_RE.findall(self.body)) - set(MACRO_PLACEHOLDERS))
        if unknown:
            raise ValidationError(
                {
                    "body": "Unknown placeholder(s): "
                    + ", ".join(unknown)
                    + ". Use "
                    + ", ".join(f"{{{{ {p} }}}}" for p in MACRO_PLACEHOLDERS)
                    + "."
                }
            )
        if "\x00" in self.body or "\x00" in self.name:
            raise ValidationError("Text cannot contain NUL characters.")


def attachment_path(instance, filename) -> str:
    # A random name: the customer's file name is kept in `filename`, never in the path.
    import uuid

    return f"support/attachments/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"


class Attachment(models.Model):
    """A file attached to a ticket message (inbound email, the web form or the API), stored
    in the configured storage and served only through signed, expiring links."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        TicketMessage,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="attachments",
    )
    file = models.FileField(upload_to=attachment_path, max_length=200)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["ticket", "created_at"])]

    def __str__(self):
        return f"{self.filename} on {format_reference(self.ticket_id)}"
