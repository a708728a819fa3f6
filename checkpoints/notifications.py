"""Telling people about a checkpoint: a failed one goes to the Slack-compatible webhook
(CHECKPOINTS_WEBHOOK_URL, else DEPLOYMENTS_WEBHOOK_URL) and, when PAGERDUTY_ROUTING_KEY is
set, to PagerDuty's Events API v2 — a trigger per failing KPI and a resolve per KPI that passes
again, each with the dedup key `checkpoint-kpi-<key>`. Sent once per checkpoint (notified_at,
under the row lock); PagerDuty's dedup key makes a repeated event harmless anyway."""

import json
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from checkpoints.models import Checkpoint

logger = logging.getLogger(__name__)
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
TIMEOUT_SECONDS = 5
PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


def dedup_key(kpi_key: str) -> str:
    return f"checkpoint-kpi-{kpi_key}"


def _post(url: str, payload: dict, what: str) -> bool:
    if urlsplit(url).scheme not in ("http", "https"):
        logger.error("%s URL must be http(s); not posting.", what)
        return False
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read(1024)
        return True
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("%s POST failed: %s", what, exc)
        return False


def webhook_url() -> str:
    return getattr(settings, "CHECKPOINTS_WEBHOOK_URL", "") or getattr(
        settings, "DEPLOYMENTS_WEBHOOK_URL", ""
    )


def pagerduty_events(checkpoint: Checkpoint, routing_key: str, link: str) -> list[dict]:
    pages = checkpoint.pages or {}
    events = []
    for page in pages.get("trigger", []):
        events.append(
            {
                "routing_key": routing_key,
                "event_action": "trigger",
                "dedup_key": dedup_key(page["kpi"]),
                "payload": {
                    "summary": page["summary"][:1024],
                    "source": "opsplatform-checkpoints",
                    "severity": PD_SEVERITY.get(page["severity"], "warning"),
                    "component": page["kpi"],
                    "custom_details": {"checkpoint": checkpoint.name, "link": link},
                },
                "links": [{"href": link, "text": f"Checkpoint {checkpoint.name}"}],
            }
        )
    for kpi_key in pages.get("resolve", []):
        events.append(
            {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(kpi_key)}
        )
    return events


def notify_checkpoint(*, checkpoint_id: int) -> bool:
    """Send the checkpoint's notices once; False when already sent or nothing to send."""
    with transaction.atomic():
        checkpoint = Checkpoint.objects.select_for_update().filter(pk=checkpoint_id).first()
        if checkpoint is None or checkpoint.notified_at is not None:
            return False
        link = settings.SITE_URL + reverse(
            "admin:checkpoints_checkpoint_change", args=[checkpoint.id]
        )
        sent = False
        url = webhook_url()
        if checkpoint.status == Checkpoint.Status.FAILED and url:
            lines = [f"Scaling checkpoint '{checkpoint.name}' failed.", checkpoint.summary]
            for escalation in checkpoint.escalations:
                lines.append(f"{escalation['level']} {escalation['ticket']}: {escalation['title']}")
            lines.append(link)
            sent = _post(url, {"text": "\n".join(lines)}, "Checkpoints webhook") or sent
        routing_key = getattr(settings, "PAGERDUTY_ROUTING_KEY", "")
        if routing_key:
            for event in pagerduty_events(checkpoint, routing_key, link):
                sent = _post(PAGERDUTY_URL, event, "PagerDuty") or sent
        checkpoint.notified_at = timezone.now()
        checkpoint.save(update_fields=["notified_at"])
    return sent
