from django.core.management.base import BaseCommand
from django.db import transaction
from django_q.models import Schedule

from opsplatform.registry import app_modules


class Command(BaseCommand):
    help = "Upsert every app's django-q2 schedules by name; running it twice changes nothing."

    @transaction.atomic
    def handle(self, *args, **options):
        created = updated = unchanged = 0
        for module in app_modules("schedules"):
            for spec in getattr(module, "SCHEDULES", []):
                wanted = {
                    "func": spec.func,
                    "schedule_type": spec.schedule_type,
                    "minutes": spec.minutes,
                    "cron": spec.cron,
                    # django-q2 keeps kwargs as the dict's literal text: compare that text.
                    "kwargs": repr(spec.kwargs) if spec.kwargs else None,
                    "repeats": -1,
                }
                schedule = Schedule.objects.filter(name=spec.name).first()
                if schedule is None:
                    Schedule.objects.create(name=spec.name, **wanted)
                    created += 1
                    continue
                changed = [k for k, v in wanted.items() if getattr(schedule, k) != v]
                if changed:
                    for key in changed:
                        setattr(schedule, key, wanted[key])
                    schedule.save()
                    updated += 1
                else:
                    unchanged += 1
        self.stdout.write(f"schedules: {created} created, {updated} updated, {unchanged} unchanged")
