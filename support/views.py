"""Customer support pages under /account/support/: my tickets, open one, a thread with a
reply form, close/reopen, and the satisfaction rating after resolution."""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from opsplatform.errors import DomainError, NotFound
from opsplatform.pages import customer_page
from support import attachments as rules
from support import selectors, services
from support.forms import RatingForm, ReplyForm, TicketForm
from support.models import Channel, Ticket, TicketMessage

PAGE_SIZE = 25


def _ticket(request, reference) -> Ticket:
    try:
        return selectors.ticket_get(user=request.user, reference=reference)
    except NotFound:
        raise Http404("Ticket not found") from None


@customer_page
def ticket_list(request, account):
    show = request.GET.get("show", "active")
    qs = selectors.ticket_list(user=request.user, account_id=account.id)
    if show == "active":
        qs = qs.exclude(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED])
    elif show == "done":
        qs = qs.filter(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED])
    else:
        show = "all"
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "support/ticket_list.html", {"page": page, "show": show})


@customer_page
def ticket_create(request, account):
    form = TicketForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            ticket = services.create_ticket(
                subject=form.cleaned_data["subject"],
                description=form.cleaned_data["description"],
                priority=form.cleaned_data["priority"],
                channel=Channel.WEB,
                account=account,
                actor=request.user,
                files=form.cleaned_data["attachments"],
            )
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.detail)
        else:
            messages.success(
                request,
                f"Ticket {ticket.reference} opened. We will reply by email and on this page.",
            )
            return redirect("support:ticket_detail", reference=ticket.reference)
    status = 400 if request.method == "POST" else 200
    return render(request, "support/ticket_form.html", {"form": form}, status=status)


def _detail_context(request, ticket, **forms):
    thread = list(selectors.ticket_message_list(user=request.user, ticket=ticket))
    files = selectors.attachments_by_message(user=request.user, ticket=ticket)
    for message in thread:
        message.files = files.get(message.pk, [])
    context = {
        "ticket": ticket,
        "thread": thread,
        "reply_form": ReplyForm(),
        "rating_form": RatingForm(),
        "can_reply": ticket.status != Ticket.Status.CLOSED,
        "can_close": ticket.status != Ticket.Status.CLOSED,
        "can_reopen": ticket.status == Ticket.Status.RESOLVED,
        "can_rate": ticket.status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)
        and ticket.merged_into_id is None
        and not hasattr(ticket, "csat"),
    }
    context.update(forms)
    return context


@customer_page
def ticket_detail(request, account, reference):
    ticket = _ticket(request, reference)
    survivor = selectors.merged_survivor(user=request.user, ticket=ticket)
    if survivor is not None:
        # A merged ticket's thread moved: the conversation continues on the surviving one.
        messages.info(
            request,
            f"{ticket.reference} was merged into {survivor.reference}; "
            "the conversation continues here.",
        )
        return redirect("support:ticket_detail", reference=survivor.reference)
    return render(request, "support/ticket_detail.html", _detail_context(request, ticket))


@customer_page
@require_POST
def ticket_reply(request, account, reference):
    ticket = _ticket(request, reference)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.add_message(
                ticket=ticket,
                body=form.cleaned_data["body"],
                author=request.user,
                author_kind=TicketMessage.Author.REQUESTER,
                channel=Channel.WEB,
                files=form.cleaned_data["attachments"],
            )
        except DomainError as exc:
            field = exc.field if exc.field in ("body", "attachments") else None
            form.add_error(field, exc.detail)
        else:
            messages.success(request, "Reply sent.")
            return redirect("support:ticket_detail", reference=ticket.reference)
    return render(
        request,
        "support/ticket_detail.html",
        _detail_context(request, ticket, reply_form=form),
        status=400,
    )


@customer_page
@require_POST
def ticket_status(request, account, reference):
    ticket = _ticket(request, reference)
    wanted = {"close": Ticket.Status.CLOSED, "reopen": Ticket.Status.OPEN}.get(
        request.POST.get("action", "")
    )
    if wanted is None:
        messages.error(request, "Unknown action.")
        return redirect("support:ticket_detail", reference=ticket.reference)
    try:
        services.update_ticket_status(
            ticket=ticket, status=wanted, actor=request.user, by_customer=True
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(
            request, "Ticket closed." if wanted == Ticket.Status.CLOSED else "Ticket reopened."
        )
    return redirect("support:ticket_detail", reference=ticket.reference)


@customer_page
@require_POST
def ticket_rate(request, account, reference):
    ticket = _ticket(request, reference)
    form = RatingForm(request.POST)
    if form.is_valid():
        try:
            services.rate_ticket(
                ticket=ticket,
                rating=form.cleaned_data["rating"],
                comment=form.cleaned_data["comment"],
            )
        except DomainError as exc:
            messages.error(request, exc.detail)
        else:
            messages.success(request, "Thank you for your rating.")
        return redirect("support:ticket_detail", reference=ticket.reference)
    return render(
        request,
        "support/ticket_detail.html",
        _detail_context(request, ticket, rating_form=form),
        status=400,
    )


def attachment_download(request, attachment_id):
    """A file through its signed, expiring link, for whoever may see it: the requester's
    account (never a file on an internal note) or support staff. Anything else is a 404."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        attachment = selectors.attachment_get(user=request.user, attachment_id=attachment_id)
    except NotFound:
        raise Http404("Not found") from None
    problem = rules.check_token(attachment, request.GET.get("token", ""))
    if problem == "expired":
        # 410 with a page saying what to do (a 404 page would not tell the person why).
        return render(
            request,
            "error.html",
            {"detail": "This download link has expired; open the ticket again for a fresh one."},
            status=410,
        )
    if problem or not attachment.file.storage.exists(attachment.file.name):
        raise Http404("Not found")
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.filename,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
