"""seed_demo leaves checks, one DPIA in each sign-off state and monitors with failures; the
daily schedule and task refresh the monitors; the groups carry the app's permissions."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django_q.models import Schedule

from compliance import demo, tasks
from compliance.models import (
    CheckRun,
    Monitor,
    PatternValidation,
    PrivacyImpactAssessment,
    SecurityAssessment,
)
from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core

pytestmark = pytest.mark.django_db


def test_demo_leaves_checks_dpias_of_every_status_and_a_failing_monitor():
    ctx = DemoContext(seed=7, accounts_wanted=10, as_of=dt.date(2026, 6, 2), write=lambda *a: None)
    seed_core(ctx)
    demo.seed_demo(ctx)
    assert CheckRun.objects.count() == 2  # the segment and the pattern's checks
    assert SecurityAssessment.objects.count() == 2  # the feature and the pattern's
    assert PatternValidation.objects.count() == 1
    statuses = sorted(PrivacyImpactAssessment.objects.values_list("status", flat=True))
    assert statuses == ["approved", "draft", "in_review", "rejected"]
    rejected = PrivacyImpactAssessment.objects.get(status="rejected")
    assert rejected.reviewed_by.username == "compliance"
    assert rejected.submitted_by.username == "ops"
    assert rejected.dpia_required is True  # voiceprints are biometric data
    assert Monitor.objects.filter(checked_at__isnull=False).count() == 11
    assert Monitor.objects.filter(passed=False).count() == ctx.counts["compliance_monitors_failing"]
    assert ctx.counts["compliance_monitors_failing"] >= 1


def test_the_daily_schedule_is_synced_and_its_task_refreshes_the_monitors():
    call_command("sync_schedules", stdout=None)
    schedule = Schedule.objects.get(name="compliance.run_monitors")
    assert (schedule.func, schedule.schedule_type, schedule.cron) == (
        "compliance.tasks.run_monitors",
        Schedule.CRON,
        "30 4 * * *",
    )
    first = tasks.run_monitors()
    second = tasks.run_monitors()
    assert first == second
    assert len(first) == 11
    assert first["personal-data-history"] is False


def test_groups_carry_the_compliance_permissions():
    compliance = set(
        Group.objects.get(name="compliance").permissions.values_list("codename", flat=True)
    )
    assert {"review_dpia", "view_audit_trail", "run_monitors", "change_requirement"} <= compliance
    operations = set(
        Group.objects.get(name="operations").permissions.values_list("codename", flat=True)
    )
    assert "add_privacyimpactassessment" in operations
    assert not {"review_dpia", "view_audit_trail", "change_requirement"} & operations
