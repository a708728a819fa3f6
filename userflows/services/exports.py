"""Data export requests: create (with limits), the background job, signed download links,
expiry. Every status change goes through `ExportRequest.STATUS_MACHINE` (`transition`) and
leaves a history row."""

import datetime as dt
import logging
import os
import secrets
import tempfile
import time
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from opsplatform import queueing, telemetry
from opsplatform import services as core_services
from opsplatform.errors import Conflict, DomainError, InvalidInput, NotFound, RateLimited
from opsplatform.exports import ExportType, registered_export_types
from opsplatform.models import Account
from opsplatform.transitions import transition
from userflows import selectors
from userflows.exporting import ExportArchive, make_workdir
from userflows.models import DeletionRequest, ExportRequest

logger = logging.getLogger(__name__)

EARLIEST_DATE = dt.date(2000, 1, 1)
PROGRESS_SECONDS = 0.5
STUCK_AFTER = dt.timedelta(hours=3)
TEMP_DIR = "exports/tmp"
SIGNING_SALT = "userflows.export-download"


def available_export_types() -> dict[str, ExportType]:
    """Every installed app's export types (`<app>/privacy.py: EXPORT_TYPES`), by name."""
    return registered_export_types()


# --- request ----------------------------------------------------------------------------------


def create_export_request(
    *,
    account: Account,
    requested_by,
    format: str,
    data_types: list[str],
    date_from: dt.date,
    date_to: dt.date,
) -> ExportRequest:
    """Queue an export of `data_types` over [date_from, date_to]. One active export per
    account (409) and EXPORT_DAILY_LIMIT per 24 hours (429)."""
    _validate(format=format, data_types=data_types, date_from=date_from, date_to=date_to)
    limit = settings.EXPORT_DAILY_LIMIT
    with transaction.atomic():
        # Serializes one account's concurrent requests, so the checks below hold.
        locked = Account.objects.select_for_update().select_related("user").get(pk=account.pk)
        if not locked.user.is_active:
            # A deletion that held the lock until now erased the account and closed its login.
            raise NotFound("Account not found.")
        core_services.require_customer_owner(locked)
        if ExportRequest.objects.filter(
            account=account, status__in=ExportRequest.ACTIVE_STATUSES
        ).exists():
            raise Conflict(
                "An export is already being prepared for this account; wait for it "
                "to finish before requesting another.",
                code="export_in_progress",
            )
        since = timezone.now() - dt.timedelta(days=1)
        recent = ExportRequest.objects.filter(account=account, created_at__gte=since)
        if recent.count() >= limit:
            oldest = recent.order_by("created_at").values_list("created_at", flat=True).first()
            retry = (oldest + dt.timedelta(days=1)).strftime("%Y-%m-%d %H:%M UTC")
            raise RateLimited(
                f"You can request at most {limit} exports in 24 hours; try again after {retry}.",
                code="export_limit",
            )
        export = ExportRequest(
            account=account,
            requested_by=requested_by,
            format=format,
            data_types=list(data_types),
            date_from=date_from,
            date_to=date_to,
        )
        export._history_user = requested_by
        export.full_clean()
        try:
            with transaction.atomic():
                export.save()
        except IntegrityError:
            raise Conflict(
                "An export is already being prepared for this account.", code="export_in_progress"
            ) from None
        transaction.on_commit(lambda: enqueue_export(export.pk))
    return export


def enqueue_export(export_id: int) -> None:
    """Queue the export's job; parked in the database while the broker is down
    (opsplatform.queueing), and queued again by `requeue_stalled_exports` if it is lost."""
    queueing.enqueue("userflows.tasks.run_export", export_id, task_name=f"export-{export_id}")


def requeue_stalled_exports(
    *, now: dt.datetime | None = None, stalled_after: dt.timedelta | None = None
) -> int:
    """Queue again every export that should have finished by now but has not: pending longer
    than `stalled_after` (its job was never queued, or the broker lost it) or processing
    longer than that (its worker died: django-q2's Redis broker removes a job from the queue
    when a worker takes it, so a killed worker's job is gone). `stalled_after` defaults to
    the cluster's retry (Q_TIMEOUT + 2 min): a live run would have been stopped by then. A
    second run of a job is harmless (process_export publishes once); one stuck for
    STUCK_AFTER is failed by expire_exports, so a job that kills its worker is not retried
    forever."""
    now = now or timezone.now()
    stalled_after = stalled_after or dt.timedelta(seconds=settings.Q_CLUSTER["retry"])
    cutoff = now - stalled_after
    stalled = list(
        ExportRequest.objects.filter(
            Q(status=ExportRequest.Status.PENDING, created_at__lt=cutoff)
            | Q(status=ExportRequest.Status.PROCESSING, started_at__lt=cutoff),
            created_at__gte=now - STUCK_AFTER,
        ).values_list("id", flat=True)[:500]
    )
    for export_id in stalled:
        async_task("userflows.tasks.run_export", export_id, task_name=f"export-{export_id}")
    return len(stalled)


def _long(day: dt.date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def _validate(*, format, data_types, date_from, date_to) -> None:
    if format not in ExportRequest.Format.values:
        raise InvalidInput(
            f"Unknown format {format!r}; choose one of: {', '.join(ExportRequest.Format.values)}.",
            field="format",
        )
    known = available_export_types()
    if not data_types:
        raise InvalidInput("Choose at least one data type.", field="data_types")
    unknown = [t for t in data_types if t not in known]
    if unknown:
        raise InvalidInput(
            f"Unknown data type(s): {', '.join(map(repr, unknown))}; choose from: "
            f"{', '.join(known)}.",
            field="data_types",
        )
    if len(set(data_types)) != len(data_types):
        raise InvalidInput("Each data type may be listed once.", field="data_types")
    if date_to < date_from:
        raise InvalidInput("The end date must be on or after the start date.", field="date_to")
    if date_from < EARLIEST_DATE:
        raise InvalidInput(
            f"The start date must be on or after {_long(EARLIEST_DATE)}.", field="date_from"
        )
    latest = timezone.localdate() + dt.timedelta(days=366)
    if date_to > latest:
        raise InvalidInput(f"The end date must be on or before {_long(latest)}.", field="date_to")
    span = (date_to - date_from).days + 1
    if span > settings.EXPORT_MAX_SPAN_DAYS:
        raise InvalidInput(
            f"The range covers {span} days; at most "
            f"{settings.EXPORT_MAX_SPAN_DAYS} are allowed per export.",
            field="date_from",
        )


def get_export(*, user, export_id: int) -> ExportRequest:
    """One export the user may see (their account's; staff with permission); else 404."""
    return selectors.export_get(user=user, export_id=export_id)


# --- signed download links --------------------------------------------------------------------


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SIGNING_SALT)


def _link_value(export: ExportRequest) -> str:
    # Bound to this file's checksum, so a link never serves a different file.
    return f"{export.pk}:{export.sha256[:16]}"


def export_file_url(export: ExportRequest, *, request=None) -> str | None:
    """A download link valid for EXPORT_LINK_MINUTES, or None unless the file is ready."""
    if export.status != ExportRequest.Status.COMPLETED or not export.file:
        return None
    token = _signer().sign(_link_value(export))
    path = reverse("api:export_download", kwargs={"export_id": export.pk})
    path = f"{path}?{urlencode({'token': token})}"
    return request.build_absolute_uri(path) if request is not None else settings.SITE_URL + path


def export_for_download(*, user, export_id: int, token: str) -> ExportRequest:
    """The export behind a download link, if the link is genuine and fresh and the user is
    the owning account's or staff; anything else is a 404."""
    export = selectors.export_get(user=user, export_id=export_id)
    try:
        value = _signer().unsign(token, max_age=dt.timedelta(minutes=settings.EXPORT_LINK_MINUTES))
    except signing.SignatureExpired:
        raise NotFound(
            "This download link has expired; open the export again for a fresh one.",
            code="link_expired",
        ) from None
    except signing.BadSignature:
        raise NotFound("Not found.") from None
    if value != _link_value(export):
        raise NotFound("Not found.")
    if (
        export.status != ExportRequest.Status.COMPLETED
        or not export.file
        or not export.file.storage.exists(export.file.name)
    ):
        raise NotFound(
            "This export is no longer available; request a new one.", code="export_unavailable"
        )
    return export


# --- the job ----------------------------------------------------------------------------------


class _Progress:
    """Writes rows_done at most every PROGRESS_SECONDS. On PostgreSQL through a connection of
    its own, because the job's connection is busy streaming (COPY) while it runs."""

    def __init__(self, export_id: int):
        self.export_id = export_id
        self.done = 0
        self.written_at = time.monotonic()
        self.side = None
        if connection.vendor == "postgresql":
            self.side = connections.create_connection("default")

    def __call__(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self.written_at >= PROGRESS_SECONDS:
            self.write()

    def write(self) -> None:
        self.written_at = time.monotonic()
        if self.side is None:
            ExportRequest.objects.filter(
                pk=self.export_id, status=ExportRequest.Status.PROCESSING
            ).update(rows_done=self.done)
            return
        with self.side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {ExportRequest._meta.db_table} SET rows_done = %s "  # noqa: S608
                "WHERE id = %s AND status = %s",
                [self.done, self.export_id, ExportRequest.Status.PROCESSING],
            )

    def close(self) -> None:
        if self.side is not None:
            self.side.close()


class _Spool:
    """Where the archive is written before it is published: a temporary name in the storage
    (on local disk, replaced atomically into place) or a local temp file copied to a remote
    storage on publish."""

    def __init__(self, export: ExportRequest):
        self.storage = default_storage
        self.final_name = (
            f"exports/{export.account_id}/export-{export.pk}-{secrets.token_urlsafe(12)}.zip"
        )
        self.local = isinstance(self.storage, FileSystemStorage)
        if self.local:
            self.temp_path = self.storage.path(f"{TEMP_DIR}/{export.pk}-{uuid.uuid4().hex}.part")
        else:
            handle, self.temp_path = tempfile.mkstemp(suffix=".part", prefix="export-")
            os.close(handle)
        os.makedirs(os.path.dirname(self.temp_path), exist_ok=True)

    def open(self):
        return open(self.temp_path, "wb")

    def publish(self) -> str:
        if self.local:
            final_path = self.storage.path(self.final_name)
            os.makedirs(os.path.dirname(final_path), exist_ok=True)
            os.replace(self.temp_path, final_path)
            return self.final_name
        with open(self.temp_path, "rb") as source:
            name = self.storage.save(self.final_name, File(source))
        os.remove(self.temp_path)
        return name

    def discard(self) -> None:
        if os.path.exists(self.temp_path):
            os.remove(self.temp_path)


def process_export(*, export_id: int) -> ExportRequest | None:
    """The export job: stream every data type into a ZIP, then publish it. Safe to run twice:
    a finished export is left alone, and a second concurrent run loses the publish race."""
    with transaction.atomic():
        export = (
            ExportRequest.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(pk=export_id)
            .first()
        )
        if export is None or export.status not in ExportRequest.ACTIVE_STATUSES:
            return export
        if export.status == ExportRequest.Status.PENDING:
            export = transition(export, ExportRequest.Status.PROCESSING, lock=False)  # locked above
    telemetry.TASKS_RUN.labels("run_export").inc()
    spool = _Spool(export)
    progress = _Progress(export.pk)
    try:
        row_counts, size, sha256 = _write_archive(export, spool, progress)
        return _publish(export=export, spool=spool, row_counts=row_counts, size=size, sha256=sha256)
    except Exception as exc:
        spool.discard()
        return fail_export(export_id=export.pk, reason=_readable(exc, export))
    finally:
        progress.close()


def _write_archive(export: ExportRequest, spool: _Spool, progress: _Progress):
    types = available_export_types()
    missing = [t for t in export.data_types if t not in types]
    if missing:
        raise InvalidInput(f"The data type(s) {', '.join(missing)} can no longer be exported.")
    account, date_from, date_to = export.account, export.date_from, export.date_to
    counters = [types[t].count for t in export.data_types]
    if all(count is not None for count in counters):
        total = sum(count(account, date_from, date_to) for count in counters)
        ExportRequest.objects.filter(pk=export.pk).update(rows_total=total, rows_done=0)
    use_copy = export.format == ExportRequest.Format.CSV and connection.vendor == "postgresql"
    generated_at = timezone.now()
    with make_workdir() as workdir, spool.open() as raw:
        archive = ExportArchive(
            raw,
            fmt=export.format,
            progress=progress,
            workdir=workdir,
            generated_at=generated_at,
        )
        try:
            size, sha256 = _write_types(archive, export, types, use_copy, generated_at)
        except BaseException:
            archive.abort()
            raise
    row_counts = {f.data_type: f.rows for f in archive.files}
    return row_counts, size, sha256


def _write_types(archive, export, types, use_copy, generated_at) -> tuple[int, str]:
    account, date_from, date_to = export.account, export.date_from, export.date_to
    for name in export.data_types:
        export_type = types[name]
        if use_copy and export_type.csv_chunks is not None:
            query = export_type.csv_chunks(account, date_from, date_to)
            # A server-side cursor streams only inside a transaction (read-only here).
            with transaction.atomic():
                cursor = connection.chunked_cursor()
                try:
                    archive.add_csv_chunks(name, export_type.header, cursor, *query)
                finally:
                    cursor.close()
        elif use_copy and export_type.copy_sql is not None:
            query = export_type.copy_sql(account, date_from, date_to)
            with connection.cursor() as cursor:
                archive.add_copy(name, export_type.header, cursor.cursor, *query)
        else:
            rows = export_type.rows(account, date_from, date_to)
            archive.add_rows(name, export_type.header, rows)
    return archive.finish(
        {
            "export_id": export.pk,
            "account_id": export.account_id,
            "format": export.format,
            "data_types": export.data_types,
            "period": {"from": date_from.isoformat(), "to": date_to.isoformat()},
            "generated_at": generated_at.isoformat(),
            "counts": {f.data_type: f.rows for f in archive.files},
            "formula_escaping": "Text cells starting with = + - @ tab or carriage return are "
            "prefixed with a single quote (').",
        }
    )


def _publish(*, export, spool: _Spool, row_counts, size, sha256) -> ExportRequest | None:
    """Move the finished file into place, under the account's row lock: an account deletion
    holds that lock while it cancels exports and removes their files, so a file is either
    published before the deletion (which then removes it) or never published."""
    with transaction.atomic():
        Account.objects.select_for_update().filter(pk=export.account_id).first()
        current = ExportRequest.objects.select_for_update().filter(pk=export.pk).first()
        deleted = DeletionRequest.objects.filter(
            account_id=export.account_id, status=DeletionRequest.Status.COMPLETED
        ).exists()
        if current is None or current.status != ExportRequest.Status.PROCESSING:
            spool.discard()
            return current
        if deleted:  # the account was erased while this ran: no file, and not left running
            spool.discard()
            return transition(
                current,
                ExportRequest.Status.CANCELED,
                lock=False,  # locked above, with the account
                error="Canceled: the account was deleted.",
            )
        name = spool.publish()
        try:
            now = timezone.now()
            current.file.name = name
            current.rows_done = current.rows_total = sum(row_counts.values())
            current = transition(
                current,
                ExportRequest.Status.COMPLETED,
                now=now,
                lock=False,  # locked above, with the account
                size_bytes=size,
                sha256=sha256,
                row_counts=row_counts,
                expires_at=now + dt.timedelta(days=settings.EXPORT_RETENTION_DAYS),
                error="",
            )
            telemetry.count_on_commit(telemetry.EXPORTS_FINISHED, "completed")
        except Exception:
            default_storage.delete(name)
            raise
    return current


def _readable(exc: Exception, export: ExportRequest) -> str:
    if isinstance(exc, DomainError):
        return exc.detail
    logger.exception("export %s failed", export.pk)
    if isinstance(exc, OSError):
        return (
            "The export file could not be written (a storage problem on our side). "
            "Please request the export again later."
        )
    return (
        f"The export stopped because of an unexpected error on our side. Please request it "
        f"again; if it keeps failing, contact support and quote export #{export.pk}."
    )


def fail_export(*, export_id: int, reason: str) -> ExportRequest | None:
    with transaction.atomic():
        export = ExportRequest.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status not in ExportRequest.ACTIVE_STATUSES:
            return export
        export = transition(
            export, ExportRequest.Status.FAILED, lock=False, error=reason[:2000]
        )  # locked above
        telemetry.count_on_commit(telemetry.EXPORTS_FINISHED, "failed")
    return export


# --- retention --------------------------------------------------------------------------------


def expire_exports(*, now: dt.datetime | None = None, batch_size: int = 500) -> dict:
    """The schedule's sweep: delete files past their retention (the request turns expired),
    fail exports stuck for hours so they never vanish silently, and remove stale temp files."""
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic():
            batch = list(
                ExportRequest.objects.select_for_update(skip_locked=True)
                .filter(status=ExportRequest.Status.COMPLETED, expires_at__lte=now)
                .order_by("expires_at")[:batch_size]
            )
            if not batch:
                break
            names = [e.file.name for e in batch if e.file]
            for export in batch:
                transition(export, ExportRequest.Status.EXPIRED, save=False)  # saved in bulk below
                export.file.name = ""
            ExportRequest.objects.bulk_update(batch, ["status", "file"])
            ExportRequest.history.bulk_history_create(
                batch, update=True, default_change_reason="expired: retention period over"
            )
            transaction.on_commit(lambda names=names: _delete_files(names))
        expired += len(batch)
    stuck = 0
    stale = ExportRequest.objects.filter(
        status__in=ExportRequest.ACTIVE_STATUSES, created_at__lt=now - STUCK_AFTER
    ).values_list("id", flat=True)
    for export_id in list(stale[:batch_size]):
        fail_export(
            export_id=export_id,
            reason=("The export did not finish in time and was stopped. Please request it again."),
        )
        stuck += 1
    return {"expired": expired, "stuck_failed": stuck, "temp_removed": _remove_stale_temp(now)}


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def _remove_stale_temp(now: dt.datetime) -> int:
    """Partial files of jobs that died mid-way (a finished or failed job removes its own)."""
    try:
        _, files = default_storage.listdir(TEMP_DIR)
    except (FileNotFoundError, NotImplementedError):
        # No temp folder yet (no export ever started), or a storage that cannot list.
        return 0
    removed = 0
    for name in files:
        path = f"{TEMP_DIR}/{name}"
        if default_storage.get_modified_time(path) < now - STUCK_AFTER:
            default_storage.delete(path)
            removed += 1
    return removed
