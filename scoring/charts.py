"""Server-drawn SVG charts for the scoring admin (no JavaScript, no CDN, nothing for the
Content-Security-Policy to block): a bar per dimension, and predicted against actual."""

from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = ["#2563eb", "#16a34a", "#d97706", "#7c3aed", "#dc2626", "#0891b2"]
HUNDRED = Decimal(100)


def _n(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1'))}"


def bar_chart(values: dict[str, Decimal], *, title: str, width: int = 560) -> SafeString:
    """One horizontal bar per entry on a 0-100 axis, the value written at the bar's end."""
    left, right, top, row = 150, 56, 28, 26
    height = top + row * len(values) + 24
    plot_w = Decimal(width - left - right)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="scoring-chart scoring-bars">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="12" fill="currentColor">{escape(title)}</text>',
    ]
    for tick in (0, 50, 100):
        x = Decimal(left) + plot_w * tick / HUNDRED
        parts.append(
            f'<line x1="{_n(x)}" y1="{top - 4}" x2="{_n(x)}" y2="{height - 20}" '
            'stroke="#e5e7eb"/>'
            f'<text x="{_n(x)}" y="{height - 6}" font-size="10" text-anchor="middle" '
            f'fill="currentColor">{tick}</text>'
        )
    for n, (label, value) in enumerate(values.items()):
        y = top + n * row
        bar = plot_w * max(Decimal(0), min(HUNDRED, Decimal(value))) / HUNDRED
        colour = COLOURS[n % len(COLOURS)]
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="11" text-anchor="end" '
            f'fill="currentColor">{escape(label)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{_n(bar)}" height="{row - 8}" '
            f'fill="{colour}" data-value="{escape(str(value))}"/>'
            f'<text x="{_n(Decimal(left) + bar + 4)}" y="{y + 15}" font-size="11" '
            f'fill="currentColor">{escape(str(value))}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text inside is escaped above


def scatter_chart(
    points: list[tuple[Decimal, Decimal, str]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 480,
    height: int = 360,
) -> SafeString:
    """Points (x, y, label) on 0-100 axes with the diagonal y = x for reference."""
    left, right, top, bottom = 52, 16, 28, 44
    plot_w, plot_h = Decimal(width - left - right), Decimal(height - top - bottom)

    def px(value: Decimal) -> Decimal:
        return Decimal(left) + plot_w * max(Decimal(0), min(HUNDRED, value)) / HUNDRED

    def py(value: Decimal) -> Decimal:
        return Decimal(top) + plot_h - plot_h * max(Decimal(0), min(HUNDRED, value)) / HUNDRED

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="scoring-chart scoring-scatter">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="12" fill="currentColor">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#9ca3af"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#9ca3af"/>',
        f'<line x1="{_n(px(Decimal(0)))}" y1="{_n(py(Decimal(0)))}" x2="{_n(px(HUNDRED))}" '
        f'y2="{_n(py(HUNDRED))}" stroke="#d1d5db" stroke-dasharray="4 4"/>',
        f'<text x="{left + plot_w / 2}" y="{height - 8}" font-size="11" text-anchor="middle" '
        f'fill="currentColor">{escape(x_label)}</text>',
        f'<text x="14" y="{top + plot_h / 2}" font-size="11" text-anchor="middle" '
        f'fill="currentColor" transform="rotate(-90 14 {top + plot_h / 2})">'
        f"{escape(y_label)}</text>",
    ]
    for tick in (0, 50, 100):
        parts.append(
            f'<text x="{left - 6}" y="{_n(py(Decimal(tick)) + 4)}" font-size="10" '
            f'text-anchor="end" fill="currentColor">{tick}</text>'
            f'<text x="{_n(px(Decimal(tick)))}" y="{top + plot_h + 14}" font-size="10" '
            f'text-anchor="middle" fill="currentColor">{tick}</text>'
        )
    for x, y, label in points:
        parts.append(
            f'<circle cx="{_n(px(x))}" cy="{_n(py(y))}" r="5" fill="{COLOURS[0]}" '
            f'class="scoring-point"><title>{escape(label)}: predicted {escape(str(x))}, '
            f"actual {escape(str(y))}</title></circle>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text inside is escaped above
