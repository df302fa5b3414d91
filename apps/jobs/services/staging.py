"""Files staged for a job (`params["staged"]`: storage keys the request saved for the worker).

A job owns its staged files: they are removed when it succeeds or is cancelled (also while
still queued, whether or not a worker ever sees its message), and when it failed only after
`BAGGINTAG_JOB_KEEP_FAILED_FILES_HOURS`, so a retry can resume from them until then.
`Job.holds_files` marks jobs whose files are still there, so the sweeper finds them cheaply.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.jobs import conf
from apps.jobs.models import Job

logger = logging.getLogger(__name__)


def _finished(now: Any) -> Q:
    """Jobs whose staged files may go: succeeded, cancelled, or failed past the retry window."""
    kept_until = now - timedelta(hours=conf.job_keep_failed_files_hours())
    return Q(status__in=[Job.Status.SUCCEEDED, Job.Status.CANCELLED]) | Q(
        status=Job.Status.FAILED, finished_at__lt=kept_until
    )


def staged_delete(*, job_id: int, now: Any = None) -> bool:
    """Remove a finished job's staged files once; False when it held none, is not finished (a
    retry may have re-queued it meanwhile), or another call did it. The job row stays locked
    while its few files are deleted, so a retry committing meanwhile waits and then finds the
    files gone (`job_retry` refuses), and `holds_files` turns False only once they are gone."""
    now = now or timezone.now()
    with transaction.atomic():
        job = (
            Job.objects.select_for_update()
            .filter(_finished(now), pk=job_id, holds_files=True)
            .only("pk", "params")
            .first()
        )
        if job is None:
            return False
        for key in job.params.get("staged", []):
            try:
                default_storage.delete(key)
            except Exception:  # a storage hiccup: the sweeper tries again
                logger.warning("job %s: could not delete staged file %s", job_id, key, exc_info=True)
                return False
        Job.objects.filter(pk=job_id).update(holds_files=False)
    return True


def staged_sweep(*, now: Any) -> list[int]:
    """Remove staged files of finished jobs (failed ones after the retry window)."""
    done = Job.objects.filter(_finished(now), holds_files=True)
    return [job_id for job_id in done.values_list("pk", flat=True) if staged_delete(job_id=job_id, now=now)]
