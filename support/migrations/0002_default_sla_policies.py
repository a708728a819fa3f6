from django.db import migrations

# Minutes: first response, resolution (calendar time).
DEFAULTS = {
    "low": (24 * 60, 5 * 24 * 60),
    "normal": (8 * 60, 3 * 24 * 60),
    "high": (2 * 60, 24 * 60),
    "urgent": (30, 8 * 60),
}


def create_policies(apps, schema_editor):
    SLAPolicy = apps.get_model("support", "SLAPolicy")
    for priority, (first, resolution) in DEFAULTS.items():
        SLAPolicy.objects.get_or_create(
            priority=priority,
            defaults={"first_response_minutes": first, "resolution_minutes": resolution},
        )


class Migration(migrations.Migration):
    dependencies = [("support", "0001_initial")]

    operations = [migrations.RunPython(create_policies, migrations.RunPython.noop)]
