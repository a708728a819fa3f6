"""Reads of the scaling checkpoints: lists, one checkpoint, the matrix, a KPI's trend."""

from django.db.models import QuerySet

from checkpoints.models import BacklogItem, Checkpoint, KPIDefinition, KPIResult
from opsplatform.errors import NotFound


def checkpoint_get(*, checkpoint_id: int) -> Checkpoint:
    checkpoint = Checkpoint.objects.filter(pk=checkpoint_id).first()
    if checkpoint is None:
        raise NotFound("Checkpoint not found.")
    return checkpoint


def kpi_list() -> QuerySet[KPIDefinition]:
    return KPIDefinition.objects.order_by("scope_kind", "scope", "key")


def backlog_list(*, status: str | None = None) -> QuerySet[BacklogItem]:
    qs = BacklogItem.objects.select_related("kpi").order_by("priority", "-updated_at", "-id")
    return qs.filter(status=status) if status else qs


def persona_matrix(checkpoint: Checkpoint) -> tuple[list[str], list[dict]]:
    """(KPI keys as columns, a row per persona with each KPI's cell or None)."""
    keys: list[str] = []
    for section in checkpoint.persona_results.values():
        for kpi in section["kpis"]:
            if kpi["key"] not in keys:
                keys.append(kpi["key"])
    rows = []
    for slug, section in sorted(checkpoint.persona_results.items()):
        cells = {kpi["key"]: kpi for kpi in section["kpis"]}
        rows.append(
            {"persona": slug, "status": section["status"], "cells": [cells.get(k) for k in keys]}
        )
    return keys, rows


def kpi_trends(*, limit: int = 12) -> tuple[list[str], dict[str, dict[str, list]]]:
    """The last `limit` checkpoints (oldest first) as x labels, and per KPI key its value per
    scope item across them (None where it had no reading): two queries."""
    checkpoints = list(Checkpoint.objects.order_by("-created_at", "-id")[:limit])[::-1]
    index = {c.id: i for i, c in enumerate(checkpoints)}
    series: dict[str, dict[str, list]] = {}
    rows = KPIResult.objects.filter(checkpoint_id__in=list(index)).values_list(
        "checkpoint_id", "kpi__key", "scope", "value"
    )
    for checkpoint_id, key, scope, value in rows:
        line = series.setdefault(key, {}).setdefault(scope, [None] * len(checkpoints))
        line[index[checkpoint_id]] = None if value is None else float(value)
    return [c.name for c in checkpoints], dict(sorted(series.items()))
