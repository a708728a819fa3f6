"""Template helpers for the support pages and the admin dashboard."""

from django import template

register = template.Library()


@register.filter
def duration(seconds):
    """Seconds as a short human duration: "45 min", "3 h 05 min", "2.5 d"."""
    if seconds is None:
        return "—"
    total = round(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    if hours >= 48:
        return f"{total / 86400:.1f} d"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{total} s"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
