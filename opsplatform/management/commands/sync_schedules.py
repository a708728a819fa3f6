from django.core.management.base import BaseCommand

from opsplatform import services


class Command(BaseCommand):
    help = "Upsert every app's django-q2 schedules by name; running it twice changes nothing."

    def handle(self, *args, **options):
        counts = services.sync_schedules()
        self.stdout.write(
            f"schedules: {counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged"
        )
