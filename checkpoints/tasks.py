"""django-q2 entry points of the scaling checkpoints (safe to run twice)."""

import datetime as dt

from django.utils import timezone

from checkpoints import notifications, services
from checkpoints.models import Checkpoint

SCHEDULE_ACTOR = "schedule:checkpoints.monthly"


def monthly_checkpoint() -> int:
    """The monthly schedule: a checkpoint named after the month just ended, over 90 days.
    Safe to run twice: the month's scheduled checkpoint is run once."""
    ended = timezone.now().date().replace(day=1) - dt.timedelta(days=1)
    name = f"monthly {ended:%Y-%m}"
    done = Checkpoint.objects.filter(name=name, triggered_by=SCHEDULE_ACTOR).first()
    if done is not None:
        return done.id
    return services.run_checkpoint(name, 90, triggered_by=SCHEDULE_ACTOR).id


def notify_checkpoint(checkpoint_id: int) -> bool:
    return notifications.notify_checkpoint(checkpoint_id=checkpoint_id)
