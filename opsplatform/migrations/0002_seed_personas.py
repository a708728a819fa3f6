from django.db import migrations

PERSONAS = [
    ("solo_podcaster", "Solo podcaster", "An independent show selling its own ad slots."),
    ("podcast_network", "Podcast network", "Many shows under one roof, selling inventory across them."),
    ("agency", "Agency", "Buys and manages sponsorships on behalf of brands."),
    ("brand", "Brand", "Sponsors podcasts directly to reach listeners."),
]


def seed(apps, schema_editor):
    Persona = apps.get_model("opsplatform", "Persona")
    for slug, name, description in PERSONAS:
        Persona.objects.update_or_create(slug=slug, defaults={"name": name, "description": description})


class Migration(migrations.Migration):
    dependencies = [("opsplatform", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
