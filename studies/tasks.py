"""django-q2 entry points of studies: take ids or plain values, call one service, safe twice."""

from opsplatform import telemetry
from studies import services


def run_study(study_id: int) -> str:
    telemetry.TASKS_RUN.labels("studies.run_study").inc()
    return services.run_study(study_id=study_id).status


def run_scheduled_study(study_type: str, frequency_days: int) -> int | None:
    """Daily: a study of the last `frequency_days` days when one is due (see the service)."""
    telemetry.TASKS_RUN.labels("studies.run_scheduled_study").inc()
    study = services.run_scheduled_study(study_type=study_type, frequency_days=frequency_days)
    return study.pk if study else None
