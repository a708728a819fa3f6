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


@pytest.mark.parametrize(
    ("argv", "environ", "checked"),
    [
        (["manage.py", "qcluster"], {}, True),  # job workers check a reused connection
        (["gunicorn", "opsplatform.wsgi"], {}, False),  # the web does not (a round trip)
        (["manage.py", "runserver"], {}, False),
        (["gunicorn", "opsplatform.wsgi"], {"CONN_HEALTH_CHECKS": "1"}, True),
        (["manage.py", "qcluster"], {"CONN_HEALTH_CHECKS": "0"}, False),
    ],
)
@pytest.mark.parametrize("database_url", ["", "postgres://u@127.0.0.1:5432/x"])
def test_connection_health_checks_in_job_workers_only(
    monkeypatch, argv, environ, checked, database_url
):
    import runpy

    from opsplatform import settings as prod

    monkeypatch.setattr("sys.argv", argv)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("CONN_HEALTH_CHECKS", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    loaded = runpy.run_path(prod.__file__)
    assert loaded["DATABASES"]["default"]["CONN_HEALTH_CHECKS"] is checked
