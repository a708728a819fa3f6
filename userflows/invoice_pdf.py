"""An invoice as a one-page PDF (PDF 1.4), written directly: the page's text in the standard
Helvetica and Courier fonts (WinAnsi encoding, so no font files are embedded), amounts
right-aligned in Courier, whose glyphs are all 600/1000 em wide. No dependency and no
system library; the same figures as the printable invoice page.

    pdf_bytes = render_invoice_pdf(invoice, seller_email="billing@example.com")
"""

from django.utils import timezone

from userflows.models import Invoice, format_cents

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
LEFT, RIGHT = 56, 539
COURIER_ADVANCE = 0.6  # every Courier glyph is 600/1000 em


def _pdf_text(value: str) -> bytes:
    """A PDF string literal in WinAnsi (cp1252): characters outside it become "?", the
    delimiters and backslash are escaped, control characters dropped."""
    encoded = value.encode("cp1252", errors="replace")
    out = bytearray(b"(")
    for byte in encoded:
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif byte >= 32:
            out.append(byte)
    return bytes(out + b")")


def _date(moment) -> str:
    if moment is None:
        return ""
    local = timezone.localtime(moment)
    return f"{local:%b} {local.day}, {local.year}"


class _Page:
    def __init__(self):
        self.ops: list[bytes] = []

    def text(self, x: float, y: float, value: str, *, font="F1", size=10) -> None:
        self.ops.append(
            b"BT /%s %d Tf %.2f %.2f Td %s Tj ET" % (font.encode(), size, x, y, _pdf_text(value))
        )

    def right(self, x_right: float, y: float, value: str, *, size=10) -> None:
        """Courier text ending at x_right."""
        width = len(value.encode("cp1252", errors="replace")) * COURIER_ADVANCE * size
        self.text(x_right - width, y, value, font="F3", size=size)

    def rule(self, y: float) -> None:
        self.ops.append(b"0.8 G 0.5 w %d %.2f m %d %.2f l S 0 G" % (LEFT, y, RIGHT, y))

    def stream(self) -> bytes:
        return b"\n".join(self.ops)


def _lines(invoice: Invoice, seller_email: str) -> _Page:
    page = _Page()
    money = lambda cents: format_cents(cents, invoice.currency)  # noqa: E731
    y = PAGE_HEIGHT - 72
    page.text(LEFT, y, f"Invoice {invoice.number}", font="F2", size=20)
    page.text(RIGHT - 120, y, invoice.get_status_display(), font="F2", size=12)
    y -= 22
    page.text(LEFT, y, f"Issued {_date(invoice.issued_at)}  ·  Due {_date(invoice.due_at)}")
    y -= 36
    page.text(LEFT, y, "From", font="F2", size=11)
    page.text(300, y, "Bill to", font="F2", size=11)
    y -= 16
    if invoice.bill_to_name:
        bill_to = [invoice.bill_to_name, invoice.bill_to_email]
    else:
        bill_to = [f"Customer {invoice.customer_reference}"]
    if invoice.bill_to_country:
        bill_to.append(invoice.bill_to_country)
    seller = ["opsplatform", seller_email]
    for i in range(max(len(seller), len(bill_to))):
        if i < len(seller):
            page.text(LEFT, y, seller[i])
        if i < len(bill_to) and bill_to[i]:
            page.text(300, y, bill_to[i])
        y -= 14
    y -= 24
    page.text(LEFT, y, "Description", font="F2")
    page.text(300, y, "Period", font="F2")
    page.text(RIGHT - 42, y, "Amount", font="F2")
    y -= 8
    page.rule(y)
    y -= 16
    page.text(LEFT, y, invoice.description[:42])
    page.text(300, y, f"{_date(invoice.period_start)} - {_date(invoice.period_end)}")
    page.right(RIGHT, y, money(invoice.amount_due_cents))
    y -= 10
    page.rule(y)
    y -= 20
    page.text(300, y, "Total", font="F2", size=12)
    page.right(RIGHT, y, money(invoice.amount_due_cents), size=12)
    y -= 18
    paid_label = f"Paid on {_date(invoice.paid_at)}" if invoice.paid_at else "Paid"
    page.text(300, y, paid_label)
    page.right(RIGHT, y, money(invoice.amount_paid_cents))
    y -= 18
    page.text(300, y, "Amount due", font="F2")
    page.right(RIGHT, y, money(invoice.amount_due_cents - invoice.amount_paid_cents))
    if invoice.provider_reference and invoice.status == Invoice.Status.PAID:
        y -= 36
        page.text(LEFT, y, f"Payment reference: {invoice.provider_reference}", size=9)
    return page


def render_invoice_pdf(invoice: Invoice, *, seller_email: str) -> bytes:
    """The invoice as PDF bytes: catalog, page tree, one page, three standard fonts and the
    content stream, with an exact cross-reference table."""
    content = _lines(invoice, seller_email).stream()
    title = _pdf_text(f"Invoice {invoice.number}")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R /F2 6 0 R /F3 7 0 R >> >> >>"
        % (PAGE_WIDTH, PAGE_HEIGHT),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
        b"<< /Title %s /Producer (opsplatform) >>" % title,
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)
