from django.db import migrations


def load(apps, schema_editor):
    from checkpoints.defaults import ensure_default_kpis

    ensure_default_kpis(
        apps.get_model("checkpoints", "KPIDefinition"),
        apps.get_model("checkpoints", "HistoricalKPIDefinition"),
    )


class Migration(migrations.Migration):
    dependencies = [("checkpoints", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
