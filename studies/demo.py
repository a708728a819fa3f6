"""Demo studies: a year of monthly runs of every study over the demo data (the twelve whole
months before `as_of`), so the longitudinal charts show a trend, plus one cohort study over
the year. Computed by the real services, so the figures are the demo data's true figures."""

import datetime as dt

from studies import services
from studies.metrics import months_between
from studies.models import Study

MONTHLY = [
    Study.Type.RENEWAL_RATE,
    Study.Type.REVENUE_GROWTH,
    Study.Type.CAMPAIGN_EFFICIENCY,
    Study.Type.PERSONA_IMPACT,
]


def seed_demo(ctx) -> None:
    last_month_end = ctx.as_of.replace(day=1) - dt.timedelta(days=1)
    # The month after last_month_end's month, one year earlier: twelve whole months.
    if last_month_end.month == 12:
        year_start = dt.date(last_month_end.year, 1, 1)
    else:
        year_start = dt.date(last_month_end.year - 1, last_month_end.month + 1, 1)
    months = months_between(year_start, last_month_end)
    studies = 0
    for first, last in months:
        for study_type in MONTHLY:
            services.request_study(
                study_type=study_type,
                period_start=first,
                period_end=last,
                schedule_name="seed_demo",
            )
            studies += 1
    services.request_study(
        study_type=Study.Type.REVENUE_COHORTS,
        period_start=months[0][0],
        period_end=last_month_end,
        schedule_name="seed_demo",
    )
    ctx.counts["studies"] = studies + 1
    ctx.write(f"studies: {studies + 1} (monthly for {len(months)} months)")
