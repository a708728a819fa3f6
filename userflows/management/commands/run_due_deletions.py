from django.core.management.base import BaseCommand

from userflows.services.deletion import run_due_deletions


class Command(BaseCommand):
    help = (
        "Execute every account deletion whose grace period is over (and retry failed "
        "ones) now — the same service the daily schedule runs."
    )

    def handle(self, *args, **options):
        outcome = run_due_deletions()
        self.stdout.write(
            f"deletions: {outcome['completed']} completed, {outcome['failed']} failed"
        )
