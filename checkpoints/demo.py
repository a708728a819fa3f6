"""Demo scaling checkpoints: one on the first of each of the last three months over the demo
history (90 days each), oldest first, so the KPI trends have points and the failing KPIs have
their tickets, backlog items and — for reliability KPIs — a rollout freeze."""

import datetime as dt

from checkpoints import services

MONTHS = 3


def _first_of_month(day: dt.date, back: int) -> dt.date:
    year, month = day.year, day.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return dt.date(year, month, 1)


def seed_demo(ctx) -> None:
    actor = ctx.staff.get("ops")
    now = ctx.now
    runs = 0
    for back in range(MONTHS - 1, -1, -1):
        day = _first_of_month(now.date(), back)
        as_of = min(dt.datetime.combine(day, dt.time(5, 0), tzinfo=dt.UTC), now)
        services.run_checkpoint(
            f"monthly {day - dt.timedelta(days=1):%Y-%m}",
            90,
            as_of=as_of,
            actor=actor,
            triggered_by="demo",
        )
        runs += 1
    ctx.counts["checkpoints"] = runs
