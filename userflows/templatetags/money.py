from django import template

from userflows.models import format_cents

register = template.Library()


@register.filter
def cents(value, currency="usd"):
    """Integer cents as money: 1900|cents:"usd" → $19.00."""
    if value is None:
        return "—"
    return format_cents(int(value), currency or "usd")
