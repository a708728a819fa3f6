"""Telling operations about an automatic or manual rollback: email to the `operations`
group and the Slack-compatible webhook (DEPLOYMENTS_WEBHOOK_URL). Safe to run twice."""

import json
import logging
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from deployments.models import Deployment

logger = logging.getLogger(__name__)
OPERATIONS_GROUP = "operations"
WEBHOOK_TIMEOUT_SECONDS = 5


def operations_recipients() -> list[str]:
    return list(
        get_user_model()
        .objects.filter(groups__name=OPERATIONS_GROUP, is_active=True)
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )


def post_webhook(text: str) -> bool:
    """POST `{"text": ...}` to DEPLOYMENTS_WEBHOOK_URL when set; failures are logged only."""
    url = getattr(settings, "DEPLOYMENTS_WEBHOOK_URL", "")
    if not url:
        return False
    if urlsplit(url).scheme not in ("http", "https"):
        logger.error("DEPLOYMENTS_WEBHOOK_URL must be an http(s) URL; not posting.")
        return False
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=json.dumps({"text": text}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read(1024)
        return True
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("Deployments webhook POST failed: %s", exc)
        return False


def notify_rollback(*, deployment_id: int) -> bool:
    """One notice per rollback; False when already sent or not rolled back."""
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("release")
            .filter(pk=deployment_id)
            .first()
        )
        if (
            deployment is None
            or deployment.status != Deployment.Status.ROLLED_BACK
            or deployment.rollback_notified_at is not None
        ):
            return False
        subject = f"Deployment of {deployment.release.version} rolled back"
        link = settings.SITE_URL + reverse(
            "admin:deployments_deployment_change", args=[deployment.id]
        )
        text = f"{subject}.\nReason: {deployment.rollback_reason}\n{link}"
        recipients = operations_recipients()
        if recipients:
            EmailMessage(
                subject=subject,
                body=text,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=recipients,
                headers={"Auto-Submitted": "auto-generated"},
            ).send()
        # Bookkeeping, not a change a person made: no history row.
        Deployment.objects.filter(pk=deployment.pk).update(rollback_notified_at=timezone.now())
    post_webhook(text)
    return True
