"""django-q2 entry points of the scaling checkpoints (safe to run twice)."""

from checkpoints import notifications, services

SCHEDULE_ACTOR = "schedule:checkpoints.monthly"


def monthly_checkpoint() -> int:
    """The monthly schedule: a checkpoint named after the month just ended, over 90 days."""
    from django.utils import timezone

    now = timezone.now()
    checkpoint = services.run_checkpoint(f"monthly {now:%Y-%m}", 90, triggered_by=SCHEDULE_ACTOR)
    return checkpoint.id


def notify_checkpoint(checkpoint_id: int) -> bool:
    return notifications.notify_checkpoint(checkpoint_id=checkpoint_id)
