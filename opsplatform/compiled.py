"""Hot queries compiled to SQL once per process and run many times.

Building the SQL of a queryset (joins, select_related columns, converters) costs more CPU
than PostgreSQL spends running a primary-key or unique-index lookup: the bearer-token
lookup every API request makes took about a quarter of a request's Django time under load
(docs/performance.md). A `CompiledQuery` builds its queryset once, with a marker in place of
each parameter, keeps the SQL, and from then on only swaps the values in and turns the rows
into model instances the way Django's own iterator does (`from_db`, the select_related
populators, the field converters).

Parameters are strings or integers compared for equality (a marker must reach the SQL
parameters unchanged: no `__icontains`); compiling checks every marker appears exactly
once. A query built without a slice can also be counted and read a page at a time
(`count`, `page`; `Listing` hands both to ninja's pagination)."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Plan:
    sql: str
    count_sql: str | None  # None for a sliced query
    params: tuple  # a parameter name (str) or ("value", v) for a fixed value
    count_params: tuple
    model: type
    start: int
    end: int
    attnames: list[str]
    populators: list
    converters: list[tuple[int, list, object]]


class CompiledQuery:
    """`CompiledQuery(lambda key: Model.objects.filter(key=key)[:1], key=str)`, then
    `.first(key="…")`: the first row's instance (with its select_related objects) or None;
    `.all(key="…")`: every row's; for an unsliced query `.count(…)` and `.page(offset, limit,
    …)`."""

    def __init__(self, build: Callable[..., QuerySet], **types: type):
        self.build = build
        self.names = tuple(types)
        self.types = types
        self._plans: dict[str, _Plan] = {}

    def _marker(self, name: str):
        if self.types[name] is int:  # far outside any id or count the queries compare with
            return -(2**62) - secrets.randbelow(2**40)
        return f"\x1fparam:{name}:{secrets.token_hex(8)}\x1f"

    def _slots(self, params, by_marker: dict) -> tuple:
        slots = tuple(
            by_marker[p] if isinstance(p, str | int) and p in by_marker else ("value", p)
            for p in params
        )
        for name in self.names:
            if slots.count(name) != 1:
                raise ValueError(f"parameter {name!r} must reach the SQL once, unchanged")
        return slots

    def _compile(self, alias: str) -> _Plan:
        markers = {name: self._marker(name) for name in self.names}
        by_marker = {marker: name for name, marker in markers.items()}
        queryset = self.build(**markers)
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()
        count_sql, count_params = None, ()
        if not queryset.query.is_sliced:
            # COUNT over the primary keys of the same rows: PostgreSQL and SQLite flatten
            # the subquery (an index-only count where there is one).
            inner, inner_params = (
                queryset.order_by().values("pk").query.get_compiler(using=alias).as_sql()
            )
            count_sql = f"SELECT COUNT(*) FROM ({inner}) counted"  # noqa: S608 (compiled SQL)
            count_params = self._slots(inner_params, by_marker)
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        converters = [
            (position, convs, expression)
            for position, (convs, expression) in compiler.get_converters(
                [s[0] for s in select[: compiler.col_count]]
            ).items()
        ]
        return _Plan(
            sql=sql,
            count_sql=count_sql,
            params=self._slots(params, by_marker),
            count_params=count_params,
            model=klass_info["model"],
            start=start,
            end=end,
            attnames=[f[0].target.attname for f in select[start:end]],
            populators=get_related_populators(klass_info, select, alias),
            converters=converters,
        )

    def _plan(self, using: str, values: dict) -> _Plan:
        plan = self._plans.get(using)
        if plan is None:
            plan = self._plans[using] = self._compile(using)
        for name in self.names:
            if not isinstance(values[name], self.types[name]):
                raise TypeError(f"{name} must be {self.types[name].__name__}")
        return plan

    @staticmethod
    def _params(slots: tuple, values: dict) -> list:
        return [values[slot] if isinstance(slot, str) else slot[1] for slot in slots]

    def first(self, using: str = "default", **values):
        rows = self._rows(using, values, many=False)
        return rows[0] if rows else None

    def all(self, using: str = "default", **values) -> list:
        return self._rows(using, values, many=True)

    def page(self, offset: int, limit: int, using: str = "default", **values) -> list:
        """Rows offset … offset + limit - 1 of the unsliced query, in its order."""
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        return self._rows(using, values, many=True, window=(limit, offset))

    def count(self, using: str = "default", **values) -> int:
        plan = self._plan(using, values)
        if plan.count_sql is None:
            raise TypeError("a sliced query cannot be counted")
        with connections[using].cursor() as cursor:
            cursor.execute(plan.count_sql, self._params(plan.count_params, values))
            return cursor.fetchone()[0]

    def _rows(self, using: str, values: dict, *, many: bool, window=None) -> list:
        plan = self._plan(using, values)
        sql, params = plan.sql, self._params(plan.params, values)
        if window is not None:
            if plan.count_sql is None:
                raise TypeError("a sliced query cannot be paged")
            sql, params = f"{sql} LIMIT %s OFFSET %s", [*params, *window]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if many else cursor.fetchmany(1)
        return [self._instance(plan, row, connection, using) for row in rows]

    @staticmethod
    def _instance(plan: _Plan, row, connection, using: str):
        if plan.converters:
            row = list(row)
            for position, convs, expression in plan.converters:
                value = row[position]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[position] = value
        obj = plan.model.from_db(using, plan.attnames, row[plan.start : plan.end])
        for populator in plan.populators:
            populator.populate(row, obj)
        return obj


class Listing:
    """A compiled, unsliced query with its values, as ninja's pagination reads a queryset:
    `.all().count()` and `[offset:offset + limit]`."""

    def __init__(self, query: CompiledQuery, **values):
        self.query = query
        self.values = values

    def all(self) -> "Listing":
        return self

    def count(self) -> int:
        return self.query.count(**self.values)

    def __getitem__(self, window: slice) -> list:
        start = window.start or 0
        if window.step is not None or window.stop is None or window.stop < start:
            raise ValueError("a listing is read by [offset:offset + limit]")
        return self.query.page(start, window.stop - start, **self.values)
