"""Credentials for a load run: API tokens and signed-in sessions for customers and agents.

Run by loadtest/run.py inside the load database (never production: it revokes the previous
run's tokens and creates sessions without a password). Writes a JSON file the locustfile reads.
"""

import importlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opsplatform.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import (  # noqa: E402
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user_model,
)
from django.utils import timezone  # noqa: E402

from opsplatform import services  # noqa: E402
from opsplatform.models import Account, ApiToken, Campaign  # noqa: E402

LABEL = "loadtest"


def session_for(user) -> str:
    store = importlib.import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def credentials(user) -> dict:
    _token, raw = services.issue_api_token(user=user, label=LABEL)
    return {"username": user.get_username(), "token": raw, "session": session_for(user)}


def main(out: str, customers: int, agents: int, background: bool) -> None:
    ApiToken.objects.filter(label=LABEL, revoked_at__isnull=True).update(revoked_at=timezone.now())
    accounts = list(
        Account.objects.filter(user__is_active=True)
        .select_related("user")
        .order_by("id")[:customers]
    )
    campaigns = {}
    for account_id, campaign_id in Campaign.objects.filter(
        account_id__in=[a.id for a in accounts]
    ).values_list("account_id", "id"):
        campaigns.setdefault(account_id, []).append(campaign_id)
    staff = list(
        get_user_model()
        .objects.filter(is_staff=True, is_active=True, groups__name__startswith="support_")
        .distinct()
        .order_by("id")[:agents]
    )
    data = {
        "customers": [
            {**credentials(a.user), "campaigns": campaigns.get(a.id, [])[:20]} for a in accounts
        ],
        "agents": [credentials(u) for u in staff],
    }
    Path(out).write_text(json.dumps(data))
    queued = queue_schedules() if background else 0
    print(
        f"prepared {len(data['customers'])} customers and {len(data['agents'])} agents; "
        f"queued {queued} scheduled jobs"
    )


def queue_schedules() -> int:
    """Every app's schedule once now (SLA sweep, health checks, studies, billing…): the
    background work runs while the load does, instead of whenever its interval falls."""
    from django_q.tasks import async_task

    from opsplatform.registry import app_modules

    specs = [
        spec for module in app_modules("schedules") for spec in getattr(module, "SCHEDULES", [])
    ]
    for spec in specs:
        async_task(spec.func, **spec.kwargs)
    return len(specs)


if __name__ == "__main__":
    if sys.argv[1:] == ["--queue-schedules"]:
        print(f"queued {queue_schedules()} scheduled jobs")
    else:
        main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] != "0")
