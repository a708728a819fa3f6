"""The database cache table (the default cache without REDIS_URL) is made by `migrate`, so an
install that only ran `migrate` cannot answer 500 on every API call for want of it."""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # Idempotent: createcachetable skips tables that exist and caches that are not in the DB.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("opsplatform", "0002_user_session")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
