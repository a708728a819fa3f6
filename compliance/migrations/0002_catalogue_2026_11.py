"""Loads the requirement catalogue's version 2026.11-1 (compliance/catalogue.py)."""

from django.db import migrations


def load(apps, schema_editor):
    from compliance import catalogue

    catalogue.load(
        apps.get_model("compliance", "Requirement"),
        "2026.11-1",
        overwrite=True,
        history_model=apps.get_model("compliance", "HistoricalRequirement"),
    )


def unload(apps, schema_editor):
    from compliance import catalogue

    codes = [row["code"] for row in catalogue.VERSIONS["2026.11-1"]]
    apps.get_model("compliance", "Requirement").objects.filter(code__in=codes).delete()


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(load, unload)]
