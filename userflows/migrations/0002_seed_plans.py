from django.db import migrations

# Monthly prices in cents, one plan per Account.Plan choice.
PLANS = [
    ("free", "Free", 0, 10),
    ("starter", "Starter", 1900, 20),
    ("growth", "Growth", 4900, 30),
    ("enterprise", "Enterprise", 19900, 40),
]


def seed_plans(apps, schema_editor):
    Plan = apps.get_model("userflows", "Plan")
    for code, name, price, order in PLANS:
        Plan.objects.update_or_create(code=code, defaults={
            "name": name, "price_cents": price, "currency": "usd", "sort_order": order})


def unseed_plans(apps, schema_editor):
    apps.get_model("userflows", "Plan").objects.filter(
        code__in=[p[0] for p in PLANS], subscriptions__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("userflows", "0001_initial")]

    operations = [migrations.RunPython(seed_plans, unseed_plans)]
