"""One way to move a status: the model declares its table as data, one function applies a move.

    class Deployment(models.Model):
        class Status(models.TextChoices): ...
        status = models.CharField(...)
        STATUS_MACHINE = StatusMachine(
            noun="deployment",
            table={"pending": {"in_progress"}, "in_progress": {"paused", "completed"}, ...},
            stamps={"completed": "completed_at"},  # set to `now` on entering the status
        )

    deployment = transition(deployment, Deployment.Status.PAUSED, actor=user, reason="…")

`transition` re-reads the row under `select_for_update` (a decision taken on a stale read
once gave a paid plan away for free), checks the move against the table, raises
`Conflict` (the API's 409, code `invalid_transition`) when it is not allowed, sets the status,
its timestamp and any other changes, and saves with the acting user and reason in the
history row. It returns the locked, saved instance; use that, not the one passed in.
"""

from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone

from opsplatform.errors import Conflict


class StatusMachine:
    def __init__(
        self,
        *,
        noun: str,
        table: Mapping[str, Iterable[str]],
        stamps: Mapping[str, str] | None = None,
        field: str = "status",
    ):
        self.noun = noun
        self.table = {state: frozenset(targets) for state, targets in table.items()}
        self.stamps = dict(stamps or {})
        self.field = field
        unknown = {t for targets in self.table.values() for t in targets} - set(self.table)
        if unknown:
            raise ValueError(f"{noun}: targets without a row in the table: {sorted(unknown)}")

    def allows(self, current: str, to: str) -> bool:
        return to in self.table.get(current, frozenset())

    def pairs(self) -> set[tuple[str, str]]:
        """Every allowed (from, to) pair; tests spell their own table out and compare."""
        return {(state, to) for state, targets in self.table.items() for to in targets}

    def check(self, obj, to: str) -> None:
        current = getattr(obj, self.field)
        if not self.allows(current, to):
            raise Conflict(
                f"A {_label(obj, self.field, current)} {self.noun} cannot become "
                f"{_label(obj, self.field, to)}.",
                code="invalid_transition",
            )


def _label(obj, field: str, value: str) -> str:
    choices = dict(type(obj)._meta.get_field(field).flatchoices)
    return str(choices.get(value, value)).lower()


def transition(
    obj,
    to: str,
    *,
    actor=None,
    reason: str | None = None,
    now=None,
    lock: bool = True,
    save: bool = True,
    **changes,
):
    """Apply one move of `obj`'s status machine (see the module docstring).

    `save=False` applies the checked move to `obj` in memory only (no re-read, no save): for
    a caller that already holds the row lock and writes the row itself — a batch sweep's
    `bulk_update` + `bulk_history_create`, or a service that saves once after more changes."""
    machine: StatusMachine = type(obj).STATUS_MACHINE
    with transaction.atomic():
        if lock and save:
            obj = type(obj)._default_manager.select_for_update().get(pk=obj.pk)
        machine.check(obj, to)
        setattr(obj, machine.field, to)
        stamp = machine.stamps.get(to)
        if stamp:
            setattr(obj, stamp, now or timezone.now())
        for name, value in changes.items():
            setattr(obj, name, value)
        if actor is not None and getattr(actor, "is_authenticated", False):
            obj._history_user = actor
        if reason:
            obj._change_reason = reason[:100]
        if save:
            obj.save()
    return obj
