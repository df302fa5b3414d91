"""Export jobs: plan → lint → bundle into a temporary folder → rename (docs/training.md#exports).

`export_start` records a `TrainingExport` and queues its job; the job builds the plan of the
recorded session version (freezing snapshots where none is pinned), lints the settings, has
`apps/training/bundle/writer.write_bundle` write the bundle into a temporary folder beside its
destination and renames it into place, so a bundle folder is either whole or absent. A failure
removes the temporary folder and records the findings; the job fails. Zip downloads stream the
finished folder (`export_zip_stream`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core.exceptions import ConflictError, DomainError, NotFoundError
from apps.datasets.models import Snapshot
from apps.jobs import services as job_services
from apps.jobs.exceptions import JobSuperseded
from apps.jobs.models import Job
from apps.training import conf
from apps.training.bundle.writer import BundleError, write_bundle
from apps.training.bundle.zipstream import zip_stream
from apps.training.models import BaseModelProfile, TextualInversion, TrainingExport, TrainingSession
from apps.training.plan import Plan
from apps.training.services.checks import mapping_check
from apps.training.services.findings import as_json, capped, errors, finding
from apps.training.services.lint import settings_findings

logger = logging.getLogger(__name__)

JOB_KIND = "training.export"
TASK_NAME = "training.export"
REPORT_EXCERPT = 4000
PROGRESS_EVERY_S = 1.0


class _Cancelled(Exception):
    """The job was cancelled while the bundle was written."""


# --- folders ------------------------------------------------------------------------------------


def folder_resolve(folder: str) -> Path:
    """A server folder for a bundle: under BAGGINTAG_TRAINING_FOLDER_ROOT (400 otherwise), not
    the root itself, not an existing non-empty folder (409)."""
    root = conf.folder_root()
    if not root:
        raise DomainError(
            "Exports into server folders are off; set BAGGINTAG_TRAINING_FOLDER_ROOT or download a zip.",
            code="training.folder_exports_off",
        )
    base = Path(root).resolve()
    raw = (folder or "").strip()
    if not raw or "\x00" in raw:
        raise DomainError("folder: a folder under the export root is needed.", code="training.bad_folder")
    path = (base / raw).resolve()
    if path == base or not path.is_relative_to(base):
        raise DomainError(
            f"folder: {raw!r} is outside the allowed export root {base}; pick a folder below it.",
            code="training.folder_outside_root",
        )
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ConflictError(
            f"folder: {path} exists and is not empty; pick a new folder.", code="training.folder_exists"
        )
    return path


def _export_folder(export: TrainingExport) -> Path:
    owner = export.session or export.textual_inversion
    assert owner is not None
    return conf.export_dir() / f"{owner.slug}-v{export.session_version}-e{export.pk}"


def export_files_delete(path: str) -> None:
    """Remove a finished bundle folder if it is one of ours (under the export folder); folders
    exported into server folders belong to their owners and stay."""
    if not path:
        return
    target = Path(path).resolve()
    base = conf.export_dir().resolve()
    if target != base and target.is_relative_to(base):
        shutil.rmtree(target, ignore_errors=True)


def folder_size(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                total += os.path.getsize(full)
    return total


# --- start --------------------------------------------------------------------------------------


def _exportable(base: BaseModelProfile, session: TrainingSession | None = None) -> None:
    if session is None and base.kind != BaseModelProfile.Kind.CHECKPOINT:
        raise DomainError(
            f"{base.slug} is a tagger target; Textual Inversion needs a checkpoint.",
            code="training.bad_base_model",
        )
    if session is not None and (base.kind == BaseModelProfile.Kind.TAGGER) != (
        "wd-tagger" in session.targets
    ):
        # A base model swapped behind the services' back: the targets no longer fit it.
        raise DomainError(
            f"{base.slug} cannot be trained with {', '.join(session.targets)}; save the session again "
            "with targets its base model supports.",
            code="training.unsupported_target",
        )
    if session is not None:
        # The base model's vocabulary may have changed since the session was saved.
        mapping_check(session.mapping_profile, base)


@transaction.atomic
def export_start(
    *,
    session: TrainingSession | None = None,
    textual_inversion: TextualInversion | None = None,
    target: str = TrainingExport.Target.ZIP,
    folder: str = "",
    actor: Any = None,
) -> TrainingExport:
    """Record an export of the owner's current version and queue its job (202). One export per
    session or TI set at a time (409 while one is queued or running)."""
    owner: Any = session or textual_inversion
    if owner is None or (session is not None and textual_inversion is not None):
        raise DomainError("Export a training session or a Textual Inversion set.", code="training.invalid")
    if target not in TrainingExport.Target.values:
        raise DomainError("target: zip or folder.", code="training.invalid")
    folder_path = str(folder_resolve(folder)) if target == TrainingExport.Target.FOLDER else ""
    locked = type(owner).objects.select_for_update().select_related("base_model").get(pk=owner.pk)
    _exportable(locked.base_model, locked if session is not None else None)
    running = (
        TrainingExport.objects.filter(
            **({"session": locked} if session is not None else {"textual_inversion": locked}),
            status__in=(TrainingExport.Status.QUEUED, TrainingExport.Status.RUNNING),
        )
        .select_related("job")
        .first()
    )
    if running is not None and running.job is not None and running.job.is_finished:
        # Its job ended without reaching the export (cancelled while queued, worker lost).
        _fail(running, "training.job_ended", f"The export's job {running.job.status} before it finished.")
        running = None
    if running is not None:
        raise ConflictError(
            f"Export {running.pk} of {locked.name} is still {running.status}; wait for it or cancel its job.",
            code="training.export_running",
            details={"export": running.pk, "job": running.job_id},
        )
    export = TrainingExport.objects.create(
        session=session and locked,
        textual_inversion=textual_inversion and locked,
        session_version=locked.version,
        target=target,
        folder_path=folder_path,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    kind = "training session" if session is not None else "Textual Inversion set"
    job = job_services.job_start(
        kind=JOB_KIND,
        task=TASK_NAME,
        params={"export": export.pk, "subject": {"label": f"{kind} {locked.name} v{locked.version}"}},
        created_by=actor,
        title=f"Export {locked.name}",
    )
    export.job = job
    export.save(update_fields=["job"])
    return export


# --- run ----------------------------------------------------------------------------------------


def build_plan(export: TrainingExport, actor: Any = None, frozen: list[int] | None = None) -> Plan:
    """The export's plan; snapshots frozen for it are added to `frozen`."""
    from apps.training.services.plan import plan_build
    from apps.training.services.textual_inversions import ti_plan_build

    if export.session is not None:
        return plan_build(
            export.session, version=export.session_version, freeze=True, actor=actor, frozen=frozen
        )
    assert export.textual_inversion is not None
    return ti_plan_build(export.textual_inversion, freeze=True, actor=actor, frozen=frozen)


def _unfreeze(frozen: list[int]) -> None:
    """A failed export leaves no snapshot behind that was frozen only for it."""
    if frozen:
        Snapshot.objects.filter(pk__in=frozen).delete()
        frozen.clear()


def _progress(job: Job | None, report: Callable[[int, int], None] | None) -> Callable[..., None]:
    """The writer's progress callback: job progress at most once a second, cancel checks."""
    last = [0.0]

    def progress(*args: Any, **kwargs: Any) -> None:
        done = int(kwargs.get("done", args[0] if args else 0))
        total = kwargs.get("total", args[1] if len(args) > 1 else None)
        if report is not None:
            report(done, int(total or 0))
        now = time.monotonic()
        if job is None or now - last[0] < PROGRESS_EVERY_S:
            return
        last[0] = now
        job_services.job_progress(job=job, done=done, total=int(total) if total is not None else None)
        if job.cancel_requested:
            raise _Cancelled

    return progress


def bundle_write(
    export: TrainingExport,
    plan: Plan,
    *,
    job: Job | None = None,
    report: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Lint the settings, write the bundle into a temporary folder beside its destination and
    rename it into place; the temporary folder never outlives a failure. Returns the outcome
    fields of the export row. Raises DomainError with `details.findings` on lint errors."""
    found = settings_findings(plan, plan.kohya_extra_args)
    limit = conf.findings_max()
    if errors(found):
        rows, total = capped(found, limit)
        raise DomainError(
            f"The export has {len(errors(found))} lint error(s); fix them first.",
            code="training.lint_failed",
            details={"findings": rows, "total": total},
        )
    final = Path(export.folder_path) if export.folder_path else _export_folder(export)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".{final.name}.tmp-{export.pk}-{os.getpid()}"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        result = write_bundle(plan, temp, progress=_progress(job, report), lint=found)
        if final.exists():
            final.rmdir()  # an empty folder someone made meanwhile (folder_resolve refused others)
        os.replace(temp, final)
    except BundleError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        rows, total = capped([*found, *exc.findings], limit)
        raise DomainError(
            f"The bundle failed lint with {len(errors(rows))} error(s); fix them first.",
            code="training.lint_failed",
            details={"findings": rows, "total": total},
        ) from exc
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    warnings = [*found, *(as_json(f) for f in result.findings)]
    rows, _total = capped(warnings, limit)
    report_text = ""
    if (final / "EXPORT_REPORT.md").exists():
        report_text = (final / "EXPORT_REPORT.md").read_text(encoding="utf-8", errors="replace")
    return {
        "bundle_path": str(final),
        "bundle_size": folder_size(final),
        "item_count": result.images,
        "findings": rows,
        "report_excerpt": report_text[:REPORT_EXCERPT],
    }


def _fail(
    export: TrainingExport, code: str, message: str, findings_rows: list[dict[str, Any]] | None = None
) -> None:
    TrainingExport.objects.filter(pk=export.pk).update(
        status=TrainingExport.Status.FAILED,
        error_code=code[:64],
        error_message=message,
        findings=findings_rows or [],
        finished_at=timezone.now(),
    )


def export_run(*, job_id: int) -> None:
    """Job body: build, lint and write one export (docs/training.md#exports)."""
    from django.contrib.auth import get_user_model

    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return
    export = (
        TrainingExport.objects.select_related("session", "textual_inversion")
        .filter(pk=job.params.get("export"))
        .first()
    )
    if export is None or (export.session is None and export.textual_inversion is None):
        job_services.job_fail(
            job=job, code="training.not_found", message="The export or what it exports was deleted."
        )
        return
    TrainingExport.objects.filter(pk=export.pk).update(status=TrainingExport.Status.RUNNING)
    user = get_user_model().objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
    frozen: list[int] = []
    try:
        plan = build_plan(export, user, frozen)
        job_services.job_progress(job=job, done=0, total=plan.item_count)
        outcome = bundle_write(export, plan, job=job)
    except JobSuperseded:
        _unfreeze(frozen)
        raise
    except _Cancelled:
        _unfreeze(frozen)
        _fail(export, "training.cancelled", "The export was cancelled.")
        job_services.job_finish(job=job, result={"export": export.pk})
        return
    except DomainError as exc:
        _unfreeze(frozen)
        _fail(export, exc.code, exc.message, exc.details.get("findings"))
        job_services.job_fail(job=job, code=exc.code, message=exc.message)
        return
    except Exception:
        _unfreeze(frozen)
        logger.exception("training export %s failed", export.pk)
        message = "An internal error stopped this export; it was logged."
        _fail(export, "training.internal_error", message)
        job_services.job_fail(job=job, code="training.internal_error", message=message)
        return
    TrainingExport.objects.filter(pk=export.pk).update(
        status=TrainingExport.Status.SUCCEEDED, finished_at=timezone.now(), **outcome
    )
    job_services.job_progress(job=job, done=outcome["item_count"], total=outcome["item_count"])
    job_services.job_finish(
        job=job,
        result={
            "export": export.pk,
            "item_count": outcome["item_count"],
            "bundle_size": outcome["bundle_size"],
        },
    )


def export_sync(
    *,
    session: TrainingSession | None = None,
    textual_inversion: TextualInversion | None = None,
    folder: str = "",
    report: Callable[[int, int], None] | None = None,
    actor: Any = None,
) -> TrainingExport:
    """The same export in this process, without a job (the `export_session` command). `folder`:
    a server folder under the allowed root; else the export folder."""
    owner: Any = session or textual_inversion
    if owner is None:
        raise DomainError("Export a training session or a Textual Inversion set.", code="training.invalid")
    _exportable(BaseModelProfile.objects.get(pk=owner.base_model_id), session)  # as saved now
    export = TrainingExport.objects.create(
        session=session,
        textual_inversion=textual_inversion,
        session_version=owner.version,
        target=TrainingExport.Target.FOLDER if folder else TrainingExport.Target.ZIP,
        folder_path=str(folder_resolve(folder)) if folder else "",
        status=TrainingExport.Status.RUNNING,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    frozen: list[int] = []
    try:
        plan = build_plan(export, actor, frozen)
        outcome = bundle_write(export, plan, report=report)
    except DomainError as exc:
        _unfreeze(frozen)
        _fail(export, exc.code, exc.message, exc.details.get("findings"))
        raise
    except BaseException:
        _unfreeze(frozen)
        _fail(export, "training.internal_error", "The export stopped with an internal error.")
        raise
    TrainingExport.objects.filter(pk=export.pk).update(
        status=TrainingExport.Status.SUCCEEDED, finished_at=timezone.now(), **outcome
    )
    export.refresh_from_db()
    return export


# --- download -----------------------------------------------------------------------------------


def _zip_chunks(folder: Path) -> Iterator[bytes]:
    return zip_stream(folder)


def export_zip_stream(export: TrainingExport) -> tuple[str, Iterator[bytes]]:
    """(file name, zip byte chunks) of a finished export; 409 while it is not finished, 410-ish
    404 once its folder is gone."""
    if export.status != TrainingExport.Status.SUCCEEDED:
        raise ConflictError(
            f"Export {export.pk} is {export.status}; only finished exports download.",
            code="training.export_not_ready",
        )
    folder = Path(export.bundle_path)
    if not export.bundle_path or not folder.is_dir():
        raise NotFoundError(
            f"The bundle of export {export.pk} is no longer on the server; export again.",
            code="training.bundle_gone",
        )
    return f"{folder.name}.zip", _zip_chunks(folder)


def export_delete(*, export: TrainingExport) -> None:
    if export.status in (TrainingExport.Status.QUEUED, TrainingExport.Status.RUNNING):
        raise ConflictError(
            "The export is still running; cancel its job first.", code="training.export_running"
        )
    path = export.bundle_path
    export.delete()
    export_files_delete(path)


__all__ = ["finding"]
