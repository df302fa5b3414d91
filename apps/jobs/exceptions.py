"""Errors of the job machinery (not of the work a job does)."""

from __future__ import annotations


class JobSuperseded(Exception):
    """This worker's attempt is no longer the job's current one (the job was re-queued and
    claimed again, finished, or cancelled): stop at once and write nothing more.

    Not a DomainError: it is nobody's input that is wrong, and it must never be recorded as an
    input's failure. Job runners let it propagate; the task ends quietly.
    """

    def __init__(self, job_id: int, attempt: int) -> None:
        self.job_id = job_id
        self.attempt = attempt
        super().__init__(f"Attempt {attempt} of job {job_id} is no longer current; stopped.")
