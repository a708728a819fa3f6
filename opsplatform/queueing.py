"""Queueing background jobs so that a broker outage loses none.

With REDIS_URL the jobs go through Redis. While Redis does not answer, `enqueue` parks the
job in the database (django-q2's ORM queue, under its own key, which no cluster reads) and
the web request goes on; the `opsplatform.drain_parked_jobs` schedule moves parked jobs to
Redis once it answers again, so they run late but run. Without REDIS_URL the broker is the
database itself and there is nothing to fall back to.
"""

import logging

from django.db import transaction
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

PARKED_KEY = "opsplatform-parked"


def enqueue(func: str, *args, **kwargs):
    """`async_task`, parking the job in the database when the Redis broker is down."""
    try:
        return async_task(func, *args, **kwargs)
    except Exception:
        if not Conf.REDIS:
            raise
        logger.warning("broker down: job %s parked in the database", func, exc_info=True)
        return async_task(func, *args, broker=ORM(list_key=PARKED_KEY), **kwargs)


def on_commit_enqueue(func: str, *args, **kwargs) -> None:
    transaction.on_commit(lambda: enqueue(func, *args, **kwargs))


def drain_parked_jobs(batch_size: int = 500) -> int:
    """Move parked jobs to the broker, oldest first; returns how many moved. A job pushed
    but not yet deleted when this fails half-way runs twice: every job is idempotent."""
    broker = get_broker()
    moved = 0
    while True:
        with transaction.atomic():
            rows = list(
                OrmQ.objects.select_for_update(skip_locked=True)
                .filter(key=PARKED_KEY)
                .order_by("id")[:batch_size]
            )
            if not rows:
                return moved
            for row in rows:
                broker.enqueue(row.payload)
            OrmQ.objects.filter(pk__in=[row.pk for row in rows]).delete()
        moved += len(rows)
