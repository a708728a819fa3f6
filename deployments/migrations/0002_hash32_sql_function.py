"""deployments_hash32(salt, account_id) on PostgreSQL (SQLite registers it per connection)."""

from django.db import migrations

# Kept in step with deployments/bucketing.py (a test compares the two on PostgreSQL).
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION deployments_hash32(salt text, account_id bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ('x' || substr(encode(sha256(convert_to(salt || ':' || account_id::text, 'UTF8')),
          'hex'), 1, 8))::bit(32)::bigint
$$;
"""
POSTGRES_DROP = "DROP FUNCTION IF EXISTS deployments_hash32(text, bigint);"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP)


class Migration(migrations.Migration):
    dependencies = [("deployments", "0001_rollouts_and_onboarding")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
