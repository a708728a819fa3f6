"""History rows told as a story: "assignee: unassigned → agent2", "plan: starter → growth",
with related rows by name (never "Deleted user (pk=None)") and empty values named."""

from django.db import models

EMPTY = {"assignee": "unassigned", "merged_into": "none", "follow_up_of": "none"}


def _display(row, field: models.Field, value) -> str:
    if value in (None, ""):
        return EMPTY.get(field.name, "empty")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(field, models.ForeignKey):
        related = field.related_model._default_manager.filter(pk=value).first()
        return str(related) if related is not None else f"#{value} (deleted)"
    return str(value)


def change_story(row, previous) -> str:
    """What one history row changed, in words: the reason when there is one, then each
    changed field; the first row says the record was created."""
    reason = (getattr(row, "history_change_reason", "") or "").strip()
    if previous is None:
        return reason or ("Created" if row.history_type == "+" else "Recorded")
    delta = row.diff_against(previous)
    fields = {f.attname: f for f in row.instance_type._meta.concrete_fields}
    parts = []
    for change in delta.changes:
        field = fields.get(change.field) or next(
            (f for f in fields.values() if f.name == change.field), None
        )
        if field is None:
            continue
        parts.append(
            f"{field.verbose_name}: {_display(row, field, change.old)} → "
            f"{_display(row, field, change.new)}"
        )
    text = "; ".join(parts) or "No visible change"
    return f"{reason} ({text})" if reason else text


def note_reason(instance, reason: str) -> None:
    """Write `reason` on the history row a service just made for `instance` (the newest by
    id: timestamps may tie), e.g. why staff acted on a customer's behalf."""
    row = instance.history.order_by("-history_id").first()
    if row is not None:
        row.history_change_reason = reason[:100]
        row.save(update_fields=["history_change_reason"])
