"""Deployments figures on PostgreSQL: gate evaluation over 100k accounts and 1M usage events in
the window (time and queries), and onboarding assignments per second through the service and
through the API."""

import datetime as dt
import time

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments import services
from deployments.models import OnboardingAssignment
from opsplatform.models import Account, Persona, UsageEvent
from tests.bench.conftest import report
from tests.conftest import ApiClient
from tests.factories import staff_in, token_for

ACCOUNTS = 100_000
EVENTS = 1_000_000
ASSIGNMENTS = 2_000


def insert_accounts(count: int) -> list[int]:
    """Users and accounts with INSERT … SELECT over generate_series."""
    user_table = get_user_model()._meta.db_table
    persona_ids = list(Persona.objects.order_by("id").values_list("id", flat=True))
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {user_table} (password, is_superuser, username, first_name,
                    last_name, email, is_staff, is_active, date_joined)
                SELECT '!', false, 'bench' || g || '@example.test', '', '',
                       'bench' || g || '@example.test', false, true, %s
                FROM generate_series(1, %s) AS g""",
            [now, count],
        )
        cursor.execute(
            f"""INSERT INTO {Account._meta.db_table} (user_id, name, persona_id, plan, country,
                    created_at)
                SELECT u.id, 'Bench ' || u.id, (%s::bigint[])[1 + u.id %% %s], 'starter', 'US', %s
                FROM {user_table} u WHERE u.username LIKE 'bench%%@example.test'""",
            [persona_ids, len(persona_ids), now],
        )
        cursor.execute(f"ANALYZE {Account._meta.db_table}")
    return list(Account.objects.order_by("id").values_list("id", flat=True))


def insert_events(count: int, first_account: int, accounts: int, since) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {UsageEvent._meta.db_table} (account_id, type, occurred_at,
                    properties, idempotency_key, received_at)
                SELECT %s + g %% %s, CASE WHEN g %% 97 = 0 THEN 'error' ELSE 'report.exported'
                       END, %s + make_interval(secs => g %% 3000), '{{}}', 'bench-' || g, %s
                FROM generate_series(1, %s) AS g""",
            [first_account, accounts, since, since, count],
        )
        cursor.execute(f"ANALYZE {UsageEvent._meta.db_table}")


def test_gate_evaluation_100k_accounts_1m_events(postgres_only):
    ids = insert_accounts(ACCOUNTS)
    deployment = services.create_deployment(
        version="9.0.0", strategy="rolling", rollout_percentage=25, min_events_per_arm=1000
    )
    services.execute_deployment(deployment_id=deployment.id)
    deployment.refresh_from_db()
    insert_events(EVENTS, ids[0], len(ids), deployment.stage_started_at)
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        # An hour into the stage: every event (spread over 50 minutes) is in the window.
        evaluation = services.evaluate_gates(
            deployment_id=deployment.id,
            now=deployment.stage_started_at + dt.timedelta(hours=1),
        )
    elapsed = time.perf_counter() - started
    error_gate = evaluation.gates[0]
    assert error_gate["exposed_n"] + error_gate["control_n"] == EVENTS
    assert len(ctx.captured_queries) <= 10
    started = time.perf_counter()
    plan = services.execute_deployment(
        deployment_id=services.create_deployment(
            version="9.1.0", strategy="rolling", rollout_percentage=5
        ).id,
        dry_run=True,
    )
    dry_run = time.perf_counter() - started
    assert plan["stages"][-1]["accounts"] == ACCOUNTS
    report(
        "deployments: gate evaluation",
        accounts=f"{ACCOUNTS:,}",
        events_in_window=f"{EVENTS:,}",
        seconds=f"{elapsed:.2f}",
        queries=len(ctx.captured_queries),
        outcome=evaluation.outcome,
        dry_run_plan_seconds=f"{dry_run:.2f}",
    )


def test_onboarding_assignments_per_second(postgres_only):
    ids = insert_accounts(ASSIGNMENTS * 2)
    version = services.create_onboarding_version(version_name="bench", rollout_percentage=50)
    services.activate_version(version_id=version.id)
    started = time.perf_counter()
    for account_id in ids[:ASSIGNMENTS]:
        services.assign_user_to_version(user_id=account_id)
    service_rate = ASSIGNMENTS / (time.perf_counter() - started)
    api = ApiClient(token_for(staff_in("operations")))
    n_api = ASSIGNMENTS // 4
    started = time.perf_counter()
    for account_id in ids[ASSIGNMENTS : ASSIGNMENTS + n_api]:
        assert api.post("onboarding/assignments", {"account_id": account_id}).status_code == 200
    api_rate = n_api / (time.perf_counter() - started)
    started = time.perf_counter()
    for account_id in ids[:n_api]:  # already assigned: the sticky read path
        services.assign_user_to_version(user_id=account_id)
    repeat_rate = n_api / (time.perf_counter() - started)
    assert OnboardingAssignment.objects.count() == ASSIGNMENTS + n_api
    report(
        "deployments: onboarding assignment",
        new_per_second_service=f"{service_rate:,.0f}",
        new_per_second_api=f"{api_rate:,.0f}",
        repeat_per_second_service=f"{repeat_rate:,.0f}",
    )
