"""The declared export type: what a customer can download about their account, per app.

Every installed app may list its types in `<app>/privacy.py` as `EXPORT_TYPES`, built with
`export_types(...)` from `ExportType`s; `registered_export_types()` collects them (by name, in
INSTALLED_APPS order) for the export job, the customer form and the API's description.

    EXPORT_TYPES = export_types(
        query_export(
            "invoices",
            "Invoices",
            columns=[("number", "number"), ("description", "description"), ...],
            query=lambda account, date_from, date_to: Invoice.objects.filter(...),
        ),
    )

`query_export` derives the header, the rows (`values_list` of the same fields, streamed), the
count and, with `formula_safe_copy`, the SQL for PostgreSQL's COPY from ONE column list, so a
header cannot drift from its columns. A type whose rows are computed in Python declares its
`columns` and a `rows` function directly.
"""

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import reduce
from operator import or_

from django.db.models import Case, CharField, F, Q, QuerySet, Value, When
from django.db.models.functions import Concat

from opsplatform.registry import app_modules

# Money is written with two places, ratios (ROI, ROAS) with RATIO_PLACES, halves rounded up.
CENT = Decimal("0.01")
RATIO_PLACES = 4
RATIO_STEP = Decimal(1).scaleb(-RATIO_PLACES)

# Cells starting with these are run as formulas by spreadsheet programs (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Rows = Iterator[tuple]
RowsBuilder = Callable[..., Iterable[tuple]]
QueryBuilder = Callable[..., QuerySet]


def money(value) -> Decimal:
    """An amount as exported: a Decimal with exactly two places (None and NULL sums are 0.00).
    SQLite sums decimals as floats: rounding to the cent removes that noise (5443.20000000001
    → 5443.20), exactly so while a sum's error stays under half a cent."""
    if value is None:
        return Decimal("0.00")
    if isinstance(value, float):
        value = Decimal(repr(value))
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator in Decimal, rounded to RATIO_PLACES (halves up); None when the
    denominator is zero (a ratio over no spend is undefined, not 0)."""
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_STEP, rounding=ROUND_HALF_UP)


def formula_safe(value: str) -> str:
    """A text cell a spreadsheet shows as text: a leading quote disarms formula characters."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def csv_text_sql(column: str) -> str:
    """PostgreSQL text of `column` as one CSV field, formula-safe: a leading = + - @ tab or
    carriage return gets a quote, then the field is double-quoted (quotes doubled) when it
    holds a comma, a quote or a line break, as csv.writer and COPY do."""
    return CSV_TEXT_TEMPLATE.replace("{column}", column)


def formula_safe_sql(field: str):
    """The same rule as `formula_safe`, as a SQL expression over a text column."""
    starts = reduce(or_, (Q(**{f"{field}__startswith": p}) for p in FORMULA_PREFIXES))
    return Case(
        When(starts, then=Concat(Value("'"), F(field))), default=F(field), output_field=CharField()
    )


@dataclass(frozen=True)
class ExportType:
    """One file of a data export.

    name: the key in requests and the file's name; label: what the customer reads in the form;
    columns: the header; rows(account, date_from, date_to): the rows, each as wide as
    `columns`; count(...): how many rows `rows` yields (a determinate progress bar), or None;
    copy_sql(...): (sql, params) of the same rows with formula-safe text for COPY, or None."""

    name: str
    label: str
    columns: tuple[str, ...]
    rows: RowsBuilder
    count: Callable[..., int] | None = None
    copy_sql: Callable[..., tuple[str, tuple]] | None = None
    csv_chunks: Callable[..., tuple[str, tuple]] | None = None

    @property
    def header(self) -> list[str]:
        return list(self.columns)

    def __call__(self, account, date_from: dt.date, date_to: dt.date) -> tuple[list[str], Rows]:
        """Header and rows together."""
        return self.header, iter(self.rows(account, date_from, date_to))


def query_export(
    name: str,
    label: str,
    *,
    columns: Sequence[tuple[str, str]],
    query: QueryBuilder,
    count_query: QueryBuilder | None = None,
    formula_safe_copy: Sequence[str] | None = None,
    csv_chunks: Callable[..., tuple[str, tuple]] | None = None,
    chunk_size: int = 2000,
) -> ExportType:
    """An export type backed by one queryset: `columns` pairs each header with the field (or
    annotation) of `query(account, date_from, date_to)` it shows. `formula_safe_copy` (the
    text fields to escape in SQL) makes the type exportable with COPY."""
    header = tuple(title for title, _ in columns)
    fields = [field for _, field in columns]
    count_from = count_query or query

    def rows(account, date_from, date_to):
        qs = query(account, date_from, date_to).values_list(*fields)
        return qs.iterator(chunk_size=chunk_size)

    def count(account, date_from, date_to) -> int:
        return count_from(account, date_from, date_to).count()

    copy_sql = None
    if formula_safe_copy is not None:
        escaped = set(formula_safe_copy)
        unknown = escaped - set(fields)
        if unknown:
            raise ValueError(f"{name}: formula_safe_copy names unknown fields {sorted(unknown)}")
        safe = {f"safe_{i}": formula_safe_sql(f) for i, f in enumerate(fields) if f in escaped}
        copy_fields = [f"safe_{i}" if f in escaped else f for i, f in enumerate(fields)]

        def copy_sql(account, date_from, date_to) -> tuple[str, tuple]:
            qs = query(account, date_from, date_to).annotate(**safe).values_list(*copy_fields)
            sql, params = qs.query.get_compiler(using=qs.db).as_sql()
            return sql, tuple(params)

    return ExportType(
        name=name,
        label=label,
        columns=header,
        rows=rows,
        count=count,
        copy_sql=copy_sql,
        csv_chunks=csv_chunks,
    )


def export_types(*types: ExportType) -> dict[str, ExportType]:
    """An app's `EXPORT_TYPES`: its types by name (a name listed twice is a mistake)."""
    by_name = {t.name: t for t in types}
    if len(by_name) != len(types):
        raise ValueError("Export type names must be unique.")
    return by_name


def registered_export_types() -> dict[str, ExportType]:
    """Every installed app's `privacy.EXPORT_TYPES`, by name, in INSTALLED_APPS order."""
    found: dict[str, ExportType] = {}
    for module in app_modules("privacy"):
        for name, export_type in getattr(module, "EXPORT_TYPES", {}).items():
            if name in found:
                raise ValueError(f"Two apps declare the export type {name!r}.")
            found[name] = export_type
    return found


# The template of `csv_text_sql` (kept apart: SQL quoting inside Python strings is unreadable).
CSV_TEXT_TEMPLATE = r"""(
  WITH f(v) AS (
    SELECT CASE WHEN left({column}, 1) IN ('=', '+', '-', '@', E'\t', E'\r')
                THEN '''' || {column} ELSE {column} END
  )
  SELECT CASE WHEN v ~ '[",\r\n]' THEN '"' || replace(v, '"', '""') || '"' ELSE v END FROM f
)"""
