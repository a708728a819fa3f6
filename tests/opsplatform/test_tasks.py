"""django-q2: a task runs through the queue, and a schedule fires it (sync mode in tests)."""

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule, Success
from django_q.scheduler import scheduler
from django_q.tasks import async_task, result

from opsplatform.models import Heartbeat

pytestmark = pytest.mark.django_db


def test_worker_runs_a_queued_task_and_stores_its_result():
    task_id = async_task("opsplatform.tasks.record_worker_heartbeat")

    beat = Heartbeat.objects.get(name="worker")
    assert result(task_id) == beat.beat_at.isoformat()
    assert Success.objects.filter(id=task_id).exists()


def test_due_schedule_runs_its_task_and_moves_next_run_forward(capsys):
    call_command("sync_schedules")
    schedule = Schedule.objects.get(name="opsplatform.worker_heartbeat")
    schedule.next_run = timezone.now() - timezone.timedelta(minutes=1)
    schedule.save()

    scheduler()

    schedule.refresh_from_db()
    assert Heartbeat.objects.filter(name="worker").exists()
    assert schedule.next_run > timezone.now()
    assert schedule.task is not None


def test_heartbeat_task_is_safe_to_run_twice():
    async_task("opsplatform.tasks.record_worker_heartbeat")
    async_task("opsplatform.tasks.record_worker_heartbeat")

    assert Heartbeat.objects.filter(name="worker").count() == 1


def test_worker_connection_settings_are_persistent_and_bounded():
    from django.conf import settings

    from opsplatform import settings as prod

    assert prod.Q_CLUSTER["retry"] > prod.Q_CLUSTER["timeout"]
    assert prod.Q_CLUSTER["max_attempts"] >= 1
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] > 0
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
