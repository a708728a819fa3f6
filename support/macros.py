"""Macros (saved replies): their placeholders filled in for one ticket and one agent. Plain
substitution of the three known names, never a template language (a macro is data)."""

from support.models import MACRO_PLACEHOLDERS, PLACEHOLDER_RE, Macro, Ticket
from support.services.common import agent_display_name


def macro_values(ticket: Ticket, agent) -> dict[str, str]:
    requester = ticket.requester_name or (ticket.account.name if ticket.account else "")
    return {
        "requester_name": requester or "there",
        "reference": ticket.reference,
        "agent_name": agent_display_name(agent),
    }


def render_macro(macro: Macro, *, ticket: Ticket, agent) -> str:
    """The macro's text for this ticket; an unknown placeholder is left as written (the
    model refuses to save one, so this only guards rows written around it)."""
    values = macro_values(ticket, agent)

    def fill(match):
        name = match.group(1)
        return values[name] if name in MACRO_PLACEHOLDERS else match.group(0)

    return PLACEHOLDER_RE.sub(fill, macro.body)


def active_macros() -> list[Macro]:
    return list(Macro.objects.filter(active=True).order_by("name"))
