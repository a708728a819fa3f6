"""Every account has exactly one subscription: accounts created before `create_account`
started one get it here, on their current plan, for a month from now (nothing is invoiced
for the past); an account whose subscription is canceled is on the free plan."""

import calendar
import datetime as dt

from django.conf import settings
from django.db import migrations
from django.utils import timezone

PLANS = [
    ("free", "Free", 0, 10),
    ("starter", "Starter", 1900, 20),
    ("growth", "Growth", 4900, 30),
    ("enterprise", "Enterprise", 19900, 40),
]


def _next_month(moment: dt.datetime) -> dt.datetime:
    year, month = moment.year + moment.month // 12, moment.month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def forwards(apps, schema_editor):
    Account = apps.get_model("opsplatform", "Account")
    Plan = apps.get_model("userflows", "Plan")
    Subscription = apps.get_model("userflows", "Subscription")
    missing = Account.objects.filter(subscription__isnull=True)
    if missing.exists():
        for code, name, price, order in PLANS:
            Plan.objects.get_or_create(
                code=code,
                defaults={"name": name, "price_cents": price, "sort_order": order},
            )
        plans = {p.code: p for p in Plan.objects.all()}
        now = timezone.now()
        Subscription.objects.bulk_create(
            [
                Subscription(
                    account_id=account_id,
                    plan=plans[code],
                    status="active",
                    provider=getattr(settings, "BILLING_PROVIDER", "local"),
                    current_period_start=now,
                    current_period_end=_next_month(now),
                    created_at=now,
                )
                for account_id, code in missing.values_list("id", "plan").iterator()
            ],
            batch_size=1000,
        )
    Account.objects.filter(subscription__status="canceled").exclude(plan="free").update(
        plan="free"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("opsplatform", "0001_initial"),
        ("userflows", "0002_subscription_scheduled_plan"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
