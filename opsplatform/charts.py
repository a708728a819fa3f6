"""Small line charts drawn on the server as inline SVG: no JavaScript, no CDN, nothing for the
Content-Security-Policy to block, and readable without a browser (the CSV has the numbers)."""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2"]


def line_chart(
    lines: dict[str, list[float | None]],
    x_labels: list[str],
    *,
    title: str,
    width: int = 640,
    height: int = 240,
) -> SafeString:
    """One SVG: a line per entry of `lines` over `x_labels`; a missing value breaks the line."""
    left, right, top, bottom = 64, 16, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for series in lines.values() for v in series if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    low = min(low, 0.0)
    if high == low:
        high = low + 1.0
    count = max(len(x_labels), 1)

    def x(i: int) -> float:
        return left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - (value - low) / (high - low) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="line-chart study-chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="16" font-size="12" fill="currentColor">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#9ca3af"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#9ca3af"/>',
    ]
    for value in (low, (low + high) / 2, high):
        parts.append(
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="currentColor">{value:.4g}</text>'
        )
    step = max(1, count // 8)
    for i, label in enumerate(x_labels):
        if i % step == 0 or i == count - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 22}" font-size="10" text-anchor="middle" '
                f'fill="currentColor">{escape(label)}</text>'
            )
    for n, (name, series) in enumerate(lines.items()):
        colour = COLOURS[n % len(COLOURS)]
        segment: list[str] = []
        segments = []
        for i, value in enumerate(series):
            if value is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(value):.1f}")
        if segment:
            segments.append(segment)
        for points in segments:
            if len(points) == 1:
                cx, cy = points[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                    f'points="{" ".join(points)}"/>'
                )
        legend_x = left + (n % 5) * 110
        legend_y = height - 6
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y - 8}" width="10" height="3" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{legend_y - 4}" font-size="10" '
            f'fill="currentColor">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text inside is escaped above
